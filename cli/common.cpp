#include "common.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>

#include "api/model_source.h"
#include "core/error.h"
#include "kernels/parallel.h"

namespace tritter::cli {

std::unique_ptr<Context> make_context(const GlobalOptions& options) {
  auto ctx = std::make_unique<Context>();
  ctx->threads = options.threads > 0 ? options.threads : default_thread_count();
  set_default_threads(ctx->threads);
  ctx->kernels = kernel_tier_from_name(options.kernels);
  ctx->log_level = options.quiet ? LogLevel::Quiet : (options.verbose ? LogLevel::Verbose : LogLevel::Info);
  return ctx;
}

// libgomp's default lets an idle worker spin ~300k iterations before it sleeps; with another process on the
// core, the spinning worker and the one it waits for share a time slice, and 2-thread decode of the shipped model
// fell to 4-17 tokens/s against ~70-100 on one thread. Sleeping at once (passive) fixes that but makes every
// parallel region of a decode step wake its worker (25-35 % of 2-thread decode on an idle machine). A spin of 300
// (a few microseconds) finds the worker awake between the regions of one step, and a busy core loses about as
// much to it as to passive waits, where spins of 1000 and more lose more (docs/inference.md, "Threads").
constexpr const char* kSpinCount = "300";
constexpr const char* kSetByTritter = "TRITTER_SET_OMP_WAIT_POLICY";  // marks our own setting after the exec

void apply_openmp_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;  // the user's choice, or done
  if (setenv("GOMP_SPINCOUNT", kSpinCount, 1) != 0 || setenv(kSetByTritter, "1", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: run on with the runtime's default
  unsetenv("GOMP_SPINCOUNT");
  unsetenv(kSetByTritter);
}

std::string openmp_wait_policy() {
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (spin && !policy && std::getenv(kSetByTritter)) return std::string("GOMP_SPINCOUNT=") + spin + " (set by tritter)";
  std::string s;
  if (policy) s += std::string("OMP_WAIT_POLICY=") + policy;
  if (spin) s += (s.empty() ? "" : ", ") + std::string("GOMP_SPINCOUNT=") + spin;
  return s.empty() ? "the OpenMP runtime's default" : s + " (from the environment)";
}

std::string kv_cache_name(const std::string& name) {
  if (name == "q8_0") return "int8";
  if (name == "q4_0") return "int4";
  return name;  // f32, f16, int8, int4 (and a bad name, which the cache's parser names)
}

void add_head_option(CLI::App* cmd, std::string* head) {
  cmd->add_option("--head", *head,
                  "LM head of a converted model: auto (int8 when a GGUF stores it in 8 bits or fewer, else as the "
                  "file), i8 (per-row int8: a quarter of f32's bytes per token, logits within int8 rounding), i4 "
                  "(4-bit groups of 32 quantized at load, for any model: about half of i8's bytes) or f32")
      ->check(CLI::IsMember({"auto", "f32", "i8", "i4"}))
      ->capture_default_str();
}

void add_ternary_layout_option(CLI::App* cmd, std::string* layout) {
  cmd->add_option("--ternary-layout", *layout,
                  "Layout the ternary weights run in: t16 (2 bits per weight) or t20 (1.6 bits: 20% fewer bytes per "
                  "token; with AVX-512 VNNI one-stream decode up to 1.3x faster on 2+ threads, prompt processing 0-7% "
                  "slower), re-laid out at load when the file stores the other; auto: t20 on a CPU with AVX-512 "
                  "VNNI, else t16. The logits are the same bits")
      ->check(CLI::IsMember({"auto", "t16", "t20"}))
      ->capture_default_str();
}

void add_stored_layout_option(CLI::App* cmd, std::string* layout) {
  cmd->add_option("--ternary-layout", *layout,
                  "Layout the file stores the ternary weights in: t16 (2 bits per weight) or t20 (1.6 bits: 20% "
                  "smaller, mapped and decoded as stored with AVX-512 VNNI, re-laid out to t16 at load elsewhere)")
      ->check(CLI::IsMember({"t16", "t20"}))
      ->capture_default_str();
}

TernaryLayout stored_layout_from_name(const std::string& name) {
  return name == "t20" ? TernaryLayout::T20 : TernaryLayout::T16;
}

std::string effective_ternary_layout(const std::string& layout, const std::string& kernels) {
  return layout == "auto" && kernels != "auto" && kernels != "avx512-vnni" ? "t16" : layout;
}

uint64_t parse_seed(const std::string& text, const std::string& flag) {
  if (text == "-1" || text == "random") {
    std::random_device rd;
    return rd();  // 32 bits: short enough to read back from -v or --json and type again
  }
  const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = digits ? std::strtoull(text.c_str(), &end, 10) : 0;
  if (!digits || errno == ERANGE || *end != '\0') {
    throw_error(flag, ": found '", text, "', expected -1 (random) or an integer in 0 .. 18446744073709551615");
  }
  return v;
}

std::string describe_model_path(const std::string& path) { return resolve_model_source(path).describe(); }

std::string fmt(const char* format, double v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string grouped(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::vector<int> parse_count_list(const std::string& text, const char* flag, const char* what, int max) {
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    int n = 0;
    try {
      n = std::stoi(item);
    } catch (...) {
      throw_error(flag, ": '", item, "': expected a comma-separated list of ", what);
    }
    if (n < 1 || n > max) {
      if (max == std::numeric_limits<int>::max()) throw_error(flag, ": found ", n, ", expected counts >= 1");
      throw_error(flag, ": found ", n, ", expected counts 1 .. ", max);
    }
    out.push_back(n);
  }
  if (out.empty()) throw_error(flag, ": empty, expected a comma-separated list of ", what);
  return out;
}

}  // namespace tritter::cli
