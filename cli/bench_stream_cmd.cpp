// `tritter bench stream --model FILE --memory-budget 512M`: layer streaming (docs/streaming.md) measured on a packed
// file: prefill (pp) and decode (tg) tokens/s with and without prefetch, the time compute waited for I/O against
// the time the loader spent reading (the overlap), the budget's peak by category, the process's peak RSS and the
// file's bytes left in the page cache; with --resident, the same run on the mmap'd resident engine last (its RSS
// would mask the streamed peak, which is a process high-water mark).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "infer/kv_cache.h"
#include "infer/streaming_engine.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {

struct BenchStreamOptions {
  std::string model, budget = "512M", kv = "f16";
  int64_t pp = 16, tg = 4, ctx = 256;
  int group = 0;
  bool resident = false;
};

using Clock = std::chrono::steady_clock;

struct Speeds {
  double pp_s = 0, tg_s = 0;
};

Speeds time_run(Engine& e, const std::vector<int32_t>& prompt, int64_t tg) {
  std::vector<float> logits(e.weights().config.vocab_size);
  Speeds s;
  auto t0 = Clock::now();
  e.forward(prompt, logits.data(), false);
  s.pp_s = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  for (int64_t i = 0; i < tg; ++i) {
    const int32_t id = prompt[i % prompt.size()];
    e.forward(std::span<const int32_t>(&id, 1), logits.data(), false);
  }
  s.tg_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return s;
}

double overlap(const LoaderStats& a, const LoaderStats& b) {  // over the interval a → b
  const double read = b.read_s - a.read_s, wait = b.wait_s - a.wait_s;
  return read > 0 ? std::max(0.0, 1.0 - wait / read) : 0.0;
}

void run_bench(const BenchStreamOptions& o, const GlobalOptions& global) {
  if (o.pp < 1 || o.tg < 1) throw_error("bench stream: --pp and --tg must be >= 1");
  const ProcessMemory start = process_memory();
  const int64_t budget = parse_bytes(o.budget, "--memory-budget");
  std::printf("file %s: %s, %s of it in the page cache at start; RSS at start %s (the fixed overhead below)\n",
              o.model.c_str(), format_bytes(static_cast<double>(std::filesystem::file_size(o.model))).c_str(),
              format_bytes(static_cast<double>(file_cached_bytes(o.model))).c_str(),
              format_bytes(static_cast<double>(start.rss_bytes)).c_str());
  std::vector<int32_t> prompt(o.pp);
  int64_t budgeted_peak = 0;
  for (const bool prefetch : {true, false}) {
    auto ctx = make_context(global);
    StreamingOptions so;
    so.engine.context = o.ctx;
    so.engine.kv_dtype = kv_dtype_from_name(kv_cache_name(o.kv));
    so.memory_budget = budget;
    so.layer_group_size = o.group;
    so.prefetch = prefetch;
    StreamingEngine streaming(*ctx, o.model, so);
    Engine& e = streaming.engine();
    Rng rng(1);
    for (auto& id : prompt) id = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(e.weights().config.vocab_size)));
    const LoaderStats s0 = streaming.loader_stats();
    std::vector<float> logits(e.weights().config.vocab_size);
    auto t0 = Clock::now();
    e.forward(prompt, logits.data(), false);
    const double pp_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const LoaderStats s1 = streaming.loader_stats();
    t0 = Clock::now();
    for (int64_t i = 0; i < o.tg; ++i) {
      const int32_t id = prompt[i % prompt.size()];
      e.forward(std::span<const int32_t>(&id, 1), logits.data(), false);
    }
    const double tg_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const LoaderStats s2 = streaming.loader_stats();
    budgeted_peak = std::max(budgeted_peak, ctx->memory.total_peak());
    std::printf("\nstreamed, prefetch %s, %d threads:\n%s", prefetch ? "on" : "off", ctx->threads,
                streaming.report().c_str());
    std::printf("pp%lld: %.2f t/s (read %.2f s, waited %.2f s, overlap %.0f%%)\n", static_cast<long long>(o.pp),
                o.pp / pp_s, s1.read_s - s0.read_s, s1.wait_s - s0.wait_s, 100 * overlap(s0, s1));
    std::printf("tg%lld: %.3f t/s, %.2f s/token (read %.2f s, waited %.2f s, overlap %.0f%%, %s read per token)\n",
                static_cast<long long>(o.tg), o.tg / tg_s, tg_s / o.tg, s2.read_s - s1.read_s, s2.wait_s - s1.wait_s,
                100 * overlap(s1, s2), format_bytes(static_cast<double>(s2.bytes_read - s1.bytes_read) / o.tg).c_str());
  }
  const ProcessMemory streamed = process_memory();
  std::printf("\npeak RSS over the streamed runs %s, budget %s: budgeted buffers peaked at %s, the rest %s is the "
              "fixed overhead (code, libraries, thread stacks; RSS at start %s); file in page cache now %s\n",
              format_bytes(static_cast<double>(streamed.peak_rss_bytes)).c_str(),
              format_bytes(static_cast<double>(budget)).c_str(), format_bytes(static_cast<double>(budgeted_peak)).c_str(),
              format_bytes(static_cast<double>(streamed.peak_rss_bytes - budgeted_peak)).c_str(),
              format_bytes(static_cast<double>(start.rss_bytes)).c_str(),
              format_bytes(static_cast<double>(file_cached_bytes(o.model))).c_str());
  if (!o.resident) return;
  auto ctx = make_context(global);
  const PackedModel m = PackedModel::open(o.model);
  EngineOptions eo;
  eo.context = o.ctx;
  eo.kv_dtype = kv_dtype_from_name(kv_cache_name(o.kv));
  Engine e(*ctx, m.weights(), eo);
  std::vector<float> logits(m.config().vocab_size);
  const int32_t warm = prompt[0];
  e.forward(std::span<const int32_t>(&warm, 1), logits.data(), false);  // untimed: pulls the file into the cache
  e.reset();
  const Speeds s = time_run(e, prompt, o.tg);
  std::printf("\nresident (mmap, warm page cache), %d threads: pp%lld %.2f t/s, tg%lld %.3f t/s; peak RSS %s\n",
              ctx->threads, static_cast<long long>(o.pp), o.pp / s.pp_s, static_cast<long long>(o.tg), o.tg / s.tg_s,
              format_bytes(static_cast<double>(process_memory().peak_rss_bytes)).c_str());
}

}  // namespace

void add_bench_stream_command(CLI::App& app, GlobalOptions& global) {
  auto o = std::make_shared<BenchStreamOptions>();
  auto* cmd = bench_command(app).add_subcommand("stream", "Layer streaming: tokens/s, overlap and RSS under a budget");
  cmd->add_option("-m,--model", o->model, "Packed model file (e.g. tritter init --size 7B --packed)")->required();
  cmd->add_option("--memory-budget", o->budget, "Budget (512M, 2G)")->capture_default_str();
  cmd->add_option("--pp", o->pp, "Prompt tokens (one forward)")->capture_default_str();
  cmd->add_option("--tg", o->tg, "Decoded tokens")->capture_default_str();
  cmd->add_option("-c,--ctx", o->ctx, "Context (KV cache positions)")->capture_default_str();
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8, int4")->capture_default_str();
  cmd->add_option("--layer-group-size", o->group, "Layers per group (0 = from the budget)")->capture_default_str();
  cmd->add_flag("--resident", o->resident, "Also run the resident engine (last; needs the whole file in RAM)");
  cmd->callback([o, &global] { run_bench(*o, global); });
}

}  // namespace tritter::cli
