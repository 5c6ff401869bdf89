// `tritter bench curate [DIR...] [--threads-list 1,2] [--reps 3]`: the whole curation pipeline (docs/curation.md)
// on real code, default the Python standard library: one untimed run, then --reps runs per thread count
// (interleaved) into temporary directories that are removed afterwards, the median shown. Prints MB per CPU-second for the whole run and per stage (thread CPU time), the secret-rule compile
// against loading the cached database, and the CPU's name: CPU time, not wall time, so a shared machine's load
// changes the figures less.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unistd.h>

#include "commands.h"
#include "core/error.h"
#include "data/pipeline.h"
#include "data/secrets.h"

namespace tritter::cli {

namespace {

struct BenchCurateOptions {
  std::vector<std::string> inputs{"/usr/lib/python3.11"};
  std::string threads_list = "1,2";
  bool no_rule_cache = false;
  int reps = 3;
};

double mb_per_s(uint64_t bytes, double seconds) { return seconds > 0 ? double(bytes) / 1e6 / seconds : 0.0; }

double seconds_to_build_scanner(const std::filesystem::path& cache_dir, bool* from_cache) {
  const auto t0 = std::chrono::steady_clock::now();
  const data::SecretScanner scanner(cache_dir);
  if (from_cache) *from_cache = scanner.loaded_from_cache();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_bench_curate(const GlobalOptions& global, const BenchCurateOptions& opt) {
  std::vector<int> threads;
  for (size_t b = 0; b <= opt.threads_list.size();) {
    const size_t e = std::min(opt.threads_list.find(',', b), opt.threads_list.size());
    const std::string item = opt.threads_list.substr(b, e - b);
    try {
      threads.push_back(std::stoi(item));
    } catch (const std::exception&) {
      throw_error("bench curate: --threads-list: found '", item, "', expected comma-separated thread counts");
    }
    if (threads.back() < 1) throw_error("bench curate: --threads-list: found ", threads.back(), ", expected >= 1");
    if (std::count(threads.begin(), threads.end(), threads.back()) > 1) threads.pop_back();  // --reps repeats
    b = e + 1;
  }
  if (opt.reps < 1) throw_error("bench curate: --reps: found ", opt.reps, ", expected >= 1");
  auto ctx0 = make_context(global);
  std::printf("tritter bench curate: CPU '%s', %d logical cores; input", ctx0->cpu.model_name.c_str(),
              ctx0->cpu.logical_cores);
  for (const auto& in : opt.inputs) std::printf(" %s", in.c_str());
  std::printf("\n");
  const std::filesystem::path cache = opt.no_rule_cache ? std::filesystem::path{} : curate_rule_cache_dir();
  if (!cache.empty()) {
    bool hit = false;
    seconds_to_build_scanner(cache, &hit);  // fills the cache when it is cold
    const double compile_s = seconds_to_build_scanner({}, nullptr);
    const double load_s = seconds_to_build_scanner(cache, &hit);
    std::printf("secret rules (%zu patterns): compile %.3f s, load from %s %.3f s%s\n", data::secret_rules().size(),
                compile_s, cache.string().c_str(), load_s, hit ? "" : " (cache not usable: compiled)");
  }
  // One run into a temporary directory that is removed afterwards.
  int run_index = 0;
  auto run_once = [&](int nthreads) {
    GlobalOptions g = global;
    g.threads = nthreads;
    g.quiet = true;
    auto ctx = make_context(g);
    data::CurateConfig config;
    config.rule_cache_dir = cache;
    const std::filesystem::path out =
        std::filesystem::temp_directory_path() /
        ("tritter-bench-curate-" + std::to_string(::getpid()) + "-" + std::to_string(run_index++));
    std::filesystem::remove_all(out);
    data::CurateReport rep;
    try {
      rep = data::curate(opt.inputs, out, config, *ctx);
    } catch (...) {
      std::filesystem::remove_all(out);
      throw;
    }
    std::filesystem::remove_all(out);
    return rep;
  };
  auto whole_rate = [](const data::CurateReport& r) { return mb_per_s(r.bytes_in, r.cpu_seconds); };
  // The first run reads the inputs into the page cache and builds what a process builds once; it is shown apart,
  // and the table is the steady state: for each thread count the median of --reps runs, interleaved over the
  // thread counts so that a change in the machine's load falls on all of them.
  const data::CurateReport cold = run_once(threads[0]);
  std::printf("first run (cold caches, %d thread(s), not in the table): %.1f MB per CPU-s\n", threads[0],
              whole_rate(cold));
  std::vector<std::vector<data::CurateReport>> runs(threads.size());
  for (int rep = 0; rep < opt.reps; ++rep)
    for (size_t i = 0; i < threads.size(); ++i) runs[i].push_back(run_once(threads[i]));
  std::vector<data::CurateReport> reports;  // per thread count: its median run by whole-run rate
  std::vector<std::pair<double, double>> spread;
  for (auto& v : runs) {
    std::sort(v.begin(), v.end(), [&](const auto& a, const auto& b) { return whole_rate(a) < whole_rate(b); });
    spread.emplace_back(whole_rate(v.front()), whole_rate(v.back()));
    reports.push_back(v[v.size() / 2]);
  }
  std::map<std::string, std::vector<double>> stage_rates;  // per stage: the median run's rate per thread count
  for (size_t i = 0; i < reports.size(); ++i) {
    for (const auto& [name, st] : reports[i].stages) {
      auto& v = stage_rates[name];
      v.resize(threads.size(), 0.0);
      v[i] = mb_per_s(st.bytes, st.seconds);
    }
  }
  std::printf("\nmedian of %d run(s) per thread count\n%-28s", opt.reps, "threads");
  for (int t : threads) std::printf(" %10d", t);
  std::printf("\n%-28s", "documents in / MB");
  for (const auto& r : reports) std::printf(" %4llu/%5.1f", (unsigned long long)r.docs_in, double(r.bytes_in) / 1e6);
  std::printf("\n%-28s", "wall s");
  for (const auto& r : reports) std::printf(" %10.3f", r.wall_seconds);
  std::printf("\n%-28s", "CPU s (process)");
  for (const auto& r : reports) std::printf(" %10.3f", r.cpu_seconds);
  std::printf("\n%-28s", "whole run, MB per CPU-s");
  for (const auto& r : reports) std::printf(" %10.1f", whole_rate(r));
  std::printf("\n%-28s", "  lowest - highest");
  for (const auto& [lo, hi] : spread) std::printf(" %4.0f - %3.0f", lo, hi);
  std::printf("\n%-28s", "whole run, MB/s wall");
  for (const auto& r : reports) std::printf(" %10.1f", mb_per_s(r.bytes_in, r.wall_seconds));
  std::printf("\nper stage, MB per thread-CPU-second:\n");
  for (const auto& [name, v] : stage_rates) {
    std::printf("  %-26s", name.c_str());
    for (double x : v) std::printf(" %10.1f", x);
    std::printf("\n");
  }
  std::printf("\n");
  for (size_t i = 0; i < threads.size(); ++i) {
    const double whole = whole_rate(reports[i]);
    const double secrets = stage_rates.count("secrets") ? stage_rates["secrets"][i] : 0.0;
    std::printf("targets at %d thread(s), medians: whole run >= 50 MB per CPU-s: %s (%.1f); secret scan >= 300: %s "
                "(%.1f)\n",
                threads[i], whole >= 50 ? "met" : "not met", whole, secrets >= 300 ? "met" : "not met", secrets);
  }
}

}  // namespace

void add_bench_curate_command(CLI::App& app, GlobalOptions& global) {
  auto opt = std::make_shared<BenchCurateOptions>();
  CLI::App* cmd = bench_command(app).add_subcommand(
      "curate", "Curation pipeline speed: whole run and per stage, MB per CPU-second, at each thread count");
  cmd->add_option("inputs", opt->inputs, "Directories or files to curate")->capture_default_str();
  cmd->add_option("--threads-list", opt->threads_list, "Thread counts to run, comma-separated")->capture_default_str();
  cmd->add_option("--reps", opt->reps, "Timed runs per thread count (the median is shown), after one untimed run")
      ->capture_default_str();
  cmd->add_flag("--no-rule-cache", opt->no_rule_cache, "Compile the secret rules in every run (no cache)");
  cmd->callback([&global, opt] { run_bench_curate(global, *opt); });
}

}  // namespace tritter::cli
