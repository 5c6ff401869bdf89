// `tritter bench long --size 700M-shape|2B-shape --kv-cache f16,int8,int4 --context 4096,32768,131072 [--tg 8]`:
// decode tokens/s at long contexts (docs/long-context.md). A random packed model is built in memory once, with
// max_position_embeddings raised to the longest context; per cell an engine's cache is filled with N positions of
// random keys and values (Engine::fill_cache: the attention reads what N real tokens would leave, without an O(N²)
// prefill), then --tg single-token forwards are timed (the first is a warm-up). One table row (or JSON line) per
// cell: tokens/s, the cache's bytes, the process's resident memory with that engine alive and its peak so far (one
// cell per process, as bench/long_context.sh runs it, makes the peak that cell's own).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "infer/kv_cache.h"
#include "kernels/attention.h"
#include "kernels/bench.h"
#include "kernels/parallel.h"
#include "kernels/ternary_matmul.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"

namespace tritter::cli {

namespace {

struct BenchLongOptions {
  std::string size = "2B-shape", kv = "int4", context = "32768", output = "md";
  int64_t tg = 8;
  bool no_header = false;
  bool attention_only = false;
};

using Clock = std::chrono::steady_clock;

// Uniform weights with the init's standard deviation (only the ternary levels and their cost matter).
void random_weights(float* out, const TritterConfig& c, const TensorInfo& info, size_t index) {
  const int64_t n = info.numel();
  if (info.role == TensorRole::Norm) {
    std::fill(out, out + n, 1.0f);
    return;
  }
  const float a = static_cast<float>(init_std_for(c, info) * std::sqrt(3.0));
  Rng rng(index * 7919 + 1);
  for (int64_t i = 0; i < n; ++i) out[i] = a * (2.0f * rng.uniform() - 1.0f);
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    if (comma > at) out.push_back(text.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

// Refuses a cell whose cache cannot fit rather than let the OOM killer decide (other processes share the
// machine): prints its row, with `blank` empty columns after the message, and returns false.
bool cache_fits(const BenchLongOptions& o, KvDtype kv, int64_t n, int threads, size_t bytes, int blank) {
  const double need = static_cast<double>(bytes), avail = static_cast<double>(system_memory().available_bytes);
  if (need <= 0.8 * avail) return true;
  std::printf("| %s | %s | %lld | %d | not run: the cache needs %s, %s available |", o.size.c_str(), kv_dtype_name(kv),
              static_cast<long long>(n), threads, format_bytes_binary(need).c_str(), format_bytes_binary(avail).c_str());
  for (int i = 0; i < blank; ++i) std::printf(" |");
  std::printf("\n");
  std::fflush(stdout);
  return false;
}

// --attention-only: the decode attention alone, one query at position n over the n + 1 cached positions of every
// layer, against the read bandwidth measured just before and after each cell (the better of the two: a shared
// machine's bandwidth drifts): the kernel's share of the roof for each cache dtype. No model is built; the cache
// is filled as an engine's (KvCache::append_random).
void run_attention_only(const BenchLongOptions& o, const Context& ctx, const TritterConfig& c,
                        const std::vector<KvDtype>& kvs, const std::vector<int64_t>& contexts) {
  const auto read_roof = [&] { return kbench::measure_stream(ctx.threads, size_t{256} << 20, 3).read_gbs; };
  if (o.output == "md" && !o.no_header) {
    std::printf("attention alone, kernels %s; roof: a streaming read on the same threads before and after each cell\n",
                kernel_tier_name(ternary_kernel_tier(ctx)));
    std::printf("| shape | cache | context | threads | attention ms/token | bytes read/token | GB/s | read roof GB/s | %% of roof |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  }
  constexpr int64_t B = 64;  // the engine's default max batch, as bench long's full steps use
  for (const KvDtype kv : kvs) {
    for (const int64_t n : contexts) {
      if (!cache_fits(o, kv, n, ctx.threads, kv_cache_bytes(c, n + 1, kv, B), 4)) continue;
      KvCache cache(c, n + 1, kv, B, nullptr);
      cache.append_random(n + 1, 1);
      CachedAttnShape shape;
      shape.H = c.num_attention_heads;
      shape.K = c.num_key_value_heads;
      shape.d = c.head_dim;
      shape.mask = AttnMask(c.sliding_window);
      std::vector<float> q(static_cast<size_t>(shape.H * shape.d)), out(q.size());
      Rng rng(2);
      for (auto& x : q) x = rng.normal();
      const double roof_before = read_roof();
      double best = 1e300;
      for (int64_t rep = 0; rep < o.tg; ++rep) {  // the first is a warm-up
        const auto a = Clock::now();
        for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
          attention_cached(ctx, out.data(), q.data(), cache.rows(layer), n, 1, shape);
        }
        const double s = std::chrono::duration<double>(Clock::now() - a).count();
        if (rep > 0) best = std::min(best, s);
      }
      // What one step reads: every held position's stored row bytes and parameters (the cache's size for n + 1
      // positions at a batch of one, less what a cache of one position holds: the f32 residual of a key group).
      const int64_t seen = std::min(n + 1, kv_cache_capacity(c, n + 1, kv, 1));
      const double bytes = static_cast<double>(kv_cache_bytes(c, n + 1, kv, 1) - kv_cache_bytes(c, 1, kv, 1)) *
                           static_cast<double>(seen) / static_cast<double>(n);
      const double gbs = bytes / best / 1e9, roof = std::max(roof_before, read_roof());
      if (o.output == "json") {
        std::printf("%s\n", nlohmann::json{{"size", o.size}, {"kv", kv_dtype_name(kv)}, {"context", n},
                                           {"threads", ctx.threads}, {"attention_ms", best * 1e3},
                                           {"bytes_read", bytes}, {"gb_per_s", gbs}, {"read_roof_gb_per_s", roof},
                                           {"kernels", kernel_tier_name(ternary_kernel_tier(ctx))}}
                                    .dump()
                                    .c_str());
      } else {
        std::printf("| %s | %s | %lld | %d | %.2f | %s | %.1f | %.1f | %.0f %% |\n", o.size.c_str(), kv_dtype_name(kv),
                    static_cast<long long>(n), ctx.threads, best * 1e3, format_bytes_binary(bytes).c_str(), gbs, roof,
                    100.0 * gbs / roof);
      }
      std::fflush(stdout);
    }
  }
}

void run_bench_long(const BenchLongOptions& o, const GlobalOptions& global) {
  auto ctx = make_context(global);
  set_default_threads(ctx->threads);
  if (o.tg < 2) throw_error("bench long: --tg must be >= 2 (the first token is a warm-up)");
  if (o.output != "md" && o.output != "json") throw_error("bench long: -o: found '", o.output, "', expected md or json");
  std::vector<KvDtype> kvs;
  for (const auto& k : split_list(o.kv)) kvs.push_back(kv_dtype_from_name(k));
  std::vector<int64_t> contexts;
  for (const auto& t : split_list(o.context)) {
    int64_t n = 0;
    try {
      n = std::stoll(t);
    } catch (...) {
      throw_error("bench long: --context: '", t, "': expected positions, e.g. 4096,32768,131072");
    }
    if (n < 1) throw_error("bench long: --context: found ", n, ", expected >= 1");
    contexts.push_back(n);
  }
  if (kvs.empty() || contexts.empty()) throw_error("bench long: --kv-cache and --context need at least one value");
  TritterConfig c = preset_config(o.size);
  c.max_position_embeddings = std::max(c.max_position_embeddings, *std::max_element(contexts.begin(), contexts.end()) + o.tg);
  c.validate();
  if (o.attention_only) return run_attention_only(o, *ctx, c, kvs, contexts);
  const auto t0 = Clock::now();
  PackedModel model = PackedModel::in_memory(
      c, [&](float* out, const TensorInfo& info, size_t i) { random_weights(out, c, info, i); },
      {HeadFormat::I8}, &ctx->memory);
  if (o.output == "md" && global.verbose) {
    std::printf("model ready in %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
  }
  if (o.output == "md" && !o.no_header) {
    std::printf("| shape | cache | context | threads | tokens/s | ms/token | cache memory | RSS | peak RSS |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  }
  for (const KvDtype kv : kvs) {
    for (const int64_t n : contexts) {
      if (!cache_fits(o, kv, n, ctx->threads, kv_cache_bytes(c, n + o.tg, kv, 64), 4)) continue;
      EngineOptions eo;
      eo.context = n + o.tg;
      eo.kv_dtype = kv;
      eo.max_batch = 64;
      Engine engine(*ctx, model.weights(), eo);
      engine.fill_cache(n, 1);
      std::vector<float> logits(c.vocab_size);
      const int32_t token = 65;
      engine.forward(std::span<const int32_t>(&token, 1), logits.data(), false);  // warm-up step
      const auto a = Clock::now();
      for (int64_t i = 1; i < o.tg; ++i) engine.forward(std::span<const int32_t>(&token, 1), logits.data(), false);
      const double s = std::chrono::duration<double>(Clock::now() - a).count();
      const double tps = static_cast<double>(o.tg - 1) / s;
      const ProcessMemory pm = process_memory();
      const double cache = static_cast<double>(engine.cache().bytes());
      if (o.output == "json") {
        std::printf("%s\n", nlohmann::json{{"size", o.size}, {"kv", kv_dtype_name(kv)}, {"context", n},
                                           {"threads", ctx->threads}, {"tokens_per_s", tps},
                                           {"timed_tokens", o.tg - 1}, {"cache_bytes", engine.cache().bytes()},
                                           {"positions", engine.position()}, {"rss_bytes", pm.rss_bytes},
                                           {"peak_rss_bytes", pm.peak_rss_bytes},
                                           {"kernels", kernel_tier_name(ternary_kernel_tier(*ctx))}}
                                    .dump()
                                    .c_str());
      } else {
        std::printf("| %s | %s | %lld | %d | %.2f | %.0f | %s | %s | %s |\n", o.size.c_str(), kv_dtype_name(kv),
                    static_cast<long long>(n), ctx->threads, tps, 1e3 / tps, format_bytes_binary(cache).c_str(),
                    format_bytes_binary(static_cast<double>(pm.rss_bytes)).c_str(),
                    format_bytes_binary(static_cast<double>(pm.peak_rss_bytes)).c_str());
      }
      std::fflush(stdout);
    }
  }
}

}  // namespace

void add_bench_long_command(CLI::App& app, GlobalOptions& global) {
  auto o = std::make_shared<BenchLongOptions>();
  CLI::App* cmd = bench_command(app).add_subcommand(
      "long", "Decode tokens/s and memory at a long context (random model, cache filled with random rows)");
  cmd->add_option("--size", o->size, "Preset: 700M-shape, 2B-shape, test, tiny, ...")->capture_default_str();
  cmd->add_option("--kv-cache", o->kv, "KV cache dtypes, comma-separated: f32, f16, int8, int4")->capture_default_str();
  cmd->add_option("--context", o->context, "Positions in the cache before decoding, comma-separated")->capture_default_str();
  cmd->add_option("--tg", o->tg, "Decoded tokens (the first is a warm-up, not timed)")->capture_default_str();
  cmd->add_option("-o,--output", o->output, "md (table rows) or json (one object a line)")->capture_default_str();
  cmd->add_flag("--no-header", o->no_header, "md: rows only (bench/long_context.sh prints the header once)");
  cmd->add_flag("--attention-only", o->attention_only,
                "Time the decode attention alone (no model): one query over every layer's cache, the fastest of "
                "--tg - 1 steps, its bytes read and its share of the read bandwidth measured before and after it");
  cmd->callback([o, &global] { run_bench_long(*o, global); });
}

}  // namespace tritter::cli
