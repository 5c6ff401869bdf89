// `tritter bench long --size 700M-shape|2B-shape --kv-cache f16|int8|int4 --context N [--tg 8]`: decode tokens/s
// at a long context (docs/long-context.md). A random packed model is built in memory with max_position_embeddings
// raised to the context, the cache is filled with N positions of random keys and values (Engine::fill_cache: the
// attention reads what N real tokens would leave, without an O(N²) prefill), then --tg single-token forwards are
// timed. Prints one table row (or JSON): the cache's bytes, the process's resident and peak memory, tokens/s.
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
#include "kernels/parallel.h"
#include "kernels/ternary_matmul.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"

namespace tritter::cli {

namespace {

struct BenchLongOptions {
  std::string size = "2B-shape", kv = "int4", output = "md";
  int64_t context = 32768, tg = 8;
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

void run_bench_long(const BenchLongOptions& o, const GlobalOptions& global) {
  auto ctx = make_context(global);
  set_default_threads(ctx->threads);
  if (o.context < 1 || o.tg < 1) throw_error("bench long: --context and --tg must be >= 1");
  if (o.output != "md" && o.output != "json") throw_error("bench long: -o: found '", o.output, "', expected md or json");
  const KvDtype kv = kv_dtype_from_name(o.kv);
  TritterConfig c = preset_config(o.size);
  c.max_position_embeddings = std::max(c.max_position_embeddings, o.context + o.tg);
  c.validate();
  // Refuse what cannot fit rather than let the OOM killer decide (other processes share the machine).
  const double need = static_cast<double>(kv_cache_bytes(c, o.context + o.tg, kv, 64)) +
                      static_cast<double>(packed_model_bytes(c, {HeadFormat::I8}));
  const double avail = static_cast<double>(system_memory().available_bytes);
  if (need > 0.85 * avail) {
    throw_error("bench long: ", o.size, " with a ", kv_dtype_name(kv), " cache of ", o.context, " positions needs ",
                format_bytes_binary(need), ", but only ", format_bytes_binary(avail), " is available (85 % of it may be used)");
  }
  const auto t0 = Clock::now();
  PackedModel model = PackedModel::in_memory(
      c, [&](float* out, const TensorInfo& info, size_t i) { random_weights(out, c, info, i); },
      {HeadFormat::I8}, &ctx->memory);
  EngineOptions eo;
  eo.context = o.context + o.tg;
  eo.kv_dtype = kv;
  eo.max_batch = 64;
  Engine engine(*ctx, model.weights(), eo);
  engine.fill_cache(o.context, 1);
  const double setup_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<float> logits(c.vocab_size);
  const int32_t token = 65;
  engine.forward(std::span<const int32_t>(&token, 1), logits.data(), false);  // warm-up step
  const auto a = Clock::now();
  for (int64_t i = 1; i < o.tg; ++i) engine.forward(std::span<const int32_t>(&token, 1), logits.data(), false);
  const double s = std::chrono::duration<double>(Clock::now() - a).count();
  const double tps = o.tg > 1 ? static_cast<double>(o.tg - 1) / s : 0.0;
  const ProcessMemory pm = process_memory();
  const double cache = static_cast<double>(engine.cache().bytes());
  if (o.output == "json") {
    std::printf("%s\n", nlohmann::json{{"size", o.size}, {"kv", kv_dtype_name(kv)}, {"context", o.context},
                                       {"threads", ctx->threads}, {"tokens_per_s", tps}, {"timed_tokens", o.tg - 1},
                                       {"cache_bytes", engine.cache().bytes()}, {"rss_bytes", pm.rss_bytes},
                                       {"peak_rss_bytes", pm.peak_rss_bytes}, {"setup_s", setup_s},
                                       {"kernels", kernel_tier_name(ternary_kernel_tier(*ctx))}}
                                .dump()
                                .c_str());
    return;
  }
  std::printf("| %s | %s | %lld | %d | %.2f | %.1f | %s | %s | %s |\n", o.size.c_str(), kv_dtype_name(kv),
              static_cast<long long>(o.context), ctx->threads, tps, tps > 0 ? 1e3 / tps : 0.0,
              format_bytes_binary(cache).c_str(), format_bytes_binary(static_cast<double>(pm.rss_bytes)).c_str(),
              format_bytes_binary(static_cast<double>(pm.peak_rss_bytes)).c_str());
}

}  // namespace

void add_bench_long_command(CLI::App& app, GlobalOptions& global) {
  auto o = std::make_shared<BenchLongOptions>();
  CLI::App* cmd = bench_command(app).add_subcommand(
      "long", "Decode tokens/s and memory at a long context (random model, cache filled with random rows)");
  cmd->add_option("--size", o->size, "Preset: 700M-shape, 2B-shape, test, tiny, ...")->capture_default_str();
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8, int4")->capture_default_str();
  cmd->add_option("--context", o->context, "Positions in the cache before decoding")->capture_default_str();
  cmd->add_option("--tg", o->tg, "Decoded tokens (the first is a warm-up, not timed)")->capture_default_str();
  cmd->add_option("-o,--output", o->output, "md (a table row) or json")->capture_default_str();
  cmd->callback([o, &global] { run_bench_long(*o, global); });
}

}  // namespace tritter::cli
