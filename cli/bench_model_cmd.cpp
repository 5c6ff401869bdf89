// `tritter bench model --size 700M-shape|2B-shape [--vocab 128256]`: prompt processing (pp128) and generation
// (tg64) tokens/s of a random packed model held in memory, on each thread count, next to the DRAM bandwidth
// measured in the same run: decode as a share of the roof (bytes read per token ÷ bandwidth). llama-bench's
// conventions: pp = one forward of N prompt tokens, tg = N single-token forwards from an empty cache.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/memory.h"
#include "core/rng.h"
#include "inference_commands.h"
#include "infer/engine.h"
#include "kernels/bench.h"
#include "kernels/parallel.h"
#include "kernels/ternary_matmul.h"
#include "model/init.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "model/model_files.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {

struct BenchModelOptions {
  std::string size = "2B-shape", head = "i8", kv = "f32", threads_list = "1,2";
  std::string model, write;  // --model: run a file instead of a random model; --write: save the random one
  int64_t vocab = 0, pp = 128, tg = 64;
  int reps = 3;
};

using Clock = std::chrono::steady_clock;

std::vector<int> parse_threads(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    int n = 0;
    try {
      n = std::stoi(item);
    } catch (...) {
      throw_error("--threads-list: '", item, "': expected a comma-separated list of thread counts");
    }
    if (n < 1) throw_error("--threads-list: found ", n, ", expected counts >= 1");
    out.push_back(n);
  }
  return out;
}

// Random weights with the spec's standard deviations, drawn uniformly (fast; only the ternary levels matter).
void fast_random(float* out, const TritterConfig& c, const TensorInfo& info, size_t index) {
  const int64_t n = info.numel();
  if (info.role == TensorRole::Norm) {
    std::fill(out, out + n, 1.0f);
    return;
  }
  const float a = static_cast<float>(init_std_for(c, info) * std::sqrt(3.0));
  Rng rng(index * 7919 + 1);
  for (int64_t i = 0; i < n; ++i) out[i] = a * (2.0f * rng.uniform() - 1.0f);
}

}  // namespace

void add_bench_model_command(CLI::App& bench, GlobalOptions& global) {
  auto o = std::make_shared<BenchModelOptions>();
  auto* cmd = bench.add_subcommand("model", "Whole-model prompt (pp) and generation (tg) speed vs the DRAM roof");
  cmd->add_option("--size", o->size, "Preset: 700M-shape, 2B-shape, test, tiny, small, ...")->capture_default_str();
  cmd->add_option("--vocab", o->vocab, "Override vocab_size (e.g. 128256)");
  cmd->add_option("--head", o->head, "LM head: f32 or i8")->capture_default_str();
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8, int4")->capture_default_str();
  cmd->add_option("--threads-list", o->threads_list, "Thread counts to run")->capture_default_str();
  cmd->add_option("--pp", o->pp, "Prompt tokens")->capture_default_str();
  cmd->add_option("--tg", o->tg, "Generated tokens")->capture_default_str();
  cmd->add_option("--reps", o->reps, "Repetitions (best is reported)")->capture_default_str();
  cmd->add_option("--model", o->model, "Run this model file (packed, checkpoint, HF folder, GGUF) instead of a random one");
  cmd->add_option("--write", o->write, "Write the random model to FILE.gguf, FILE.safetensors or a HF folder");
  cmd->callback([o, &global] {
    auto ctx = make_context(global);
    ConfigOverrides co;
    co.model_size = o->size;
    if (o->vocab) co.vocab_size = o->vocab;
    std::optional<LoadedModel> loaded;
    if (!o->model.empty()) {
      loaded.emplace(load_any_model(o->model, &ctx->memory));
      std::printf("loaded %s (%s) in %.2f s\n", o->model.c_str(), model_file_kind_name(loaded->kind), loaded->load_seconds);
    }
    const TritterConfig c = loaded ? loaded->model.config() : resolve_config(co);
    if (o->pp < 1 || o->tg < 1 || o->reps < 1) throw_error("bench model: --pp, --tg and --reps must be >= 1");
    const auto threads = parse_threads(o->threads_list);

    auto t0 = Clock::now();
    const PackedModel model = loaded ? std::move(loaded->model) : PackedModel::in_memory(
        c, [&](float* out, const TensorInfo& info, size_t i) { fast_random(out, c, info, i); },
        {head_format_from_name(o->head)}, &ctx->memory);
    const ModelWeights& w = model.weights();
    if (!o->write.empty()) {
      const std::filesystem::path out = o->write;
      if (out.extension() == ".gguf") write_gguf_model(out, w, GgufWriteOptions{});
      else if (out.extension() == ".safetensors") write_packed_weights(out, w, false);
      else write_hf_folder(out, w, HfWriteOptions{});
      std::printf("wrote %s\n", o->write.c_str());
    }
    std::printf("model: %s (D %lld, L %lld, H %lld/%lld, F %lld, V %lld, %s), %lld parameters, head %s, kv %s; "
                "built in %.1f s\n",
                o->size.c_str(), (long long)c.hidden_size, (long long)c.num_hidden_layers,
                (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.intermediate_size,
                (long long)c.vocab_size, mlp_act_name(c.mlp_act), (long long)parameter_count(c), o->head.c_str(),
                o->kv.c_str(), std::chrono::duration<double>(Clock::now() - t0).count());
    std::printf("bytes read per decoded token: %.1f MB; kernel tier %s\n", w.bytes_per_token / 1e6,
                kernel_tier_name(ternary_kernel_tier(*ctx)));
    std::printf("%-4s %10s %10s %11s %11s %9s %8s\n", "thr", "pp t/s", "tg t/s", "read GB/s", "roof t/s", "%roof",
                "ms/tok");
    std::vector<int32_t> prompt(o->pp);
    Rng rng(1);
    for (auto& id : prompt) id = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(c.vocab_size)));
    std::vector<float> logits(c.vocab_size);
    for (int t : threads) {
      ctx->threads = t;
      set_default_threads(t);
      const kbench::StreamResult bw = kbench::measure_stream(t, size_t{256} << 20, 3);
      EngineOptions eo;
      eo.context = std::min<int64_t>(c.max_position_embeddings, std::max(o->pp, o->tg) + 1);
      eo.kv_dtype = kv_dtype_from_name(o->kv);
      eo.max_batch = o->pp;
      Engine engine(*ctx, w, eo);
      engine.forward(std::span<const int32_t>(prompt.data(), std::min<int64_t>(8, o->pp)), logits.data(), false);
      double pp_best = 1e30, tg_best = 1e30;
      for (int r = 0; r < o->reps; ++r) {
        engine.reset();
        auto a = Clock::now();
        engine.forward(prompt, logits.data(), false);
        pp_best = std::min(pp_best, std::chrono::duration<double>(Clock::now() - a).count());
        engine.reset();
        a = Clock::now();
        for (int64_t i = 0; i < o->tg; ++i) engine.forward(std::span<const int32_t>(&prompt[i % o->pp], 1), logits.data(), false);
        tg_best = std::min(tg_best, std::chrono::duration<double>(Clock::now() - a).count());
      }
      const double pp = o->pp / pp_best, tg = o->tg / tg_best;
      const double roof = bw.read_gbs * 1e9 / static_cast<double>(w.bytes_per_token);
      std::printf("%-4d %10.1f %10.2f %11.1f %11.2f %8.1f%% %8.2f\n", t, pp, tg, bw.read_gbs, roof, 100 * tg / roof,
                  1e3 * tg_best / o->tg);
      std::fflush(stdout);
      if (global.verbose) {
        const EngineTimings& et = engine.timings();
        const double all = et.matmul_s + et.attention_s + et.head_s + et.other_s;
        std::printf("     phases over all runs: matmul %.0f%%, attention %.0f%%, head %.0f%%, other %.0f%%\n",
                    100 * et.matmul_s / all, 100 * et.attention_s / all, 100 * et.head_s / all, 100 * et.other_s / all);
      }
    }
    if (!global.quiet) {
      std::printf("peers at 2 threads on this machine type: 2B-shape ik_llama.cpp IQ2_BN_R4 pp128 120-134, "
                  "tg64 31-35; llama.cpp TQ2_0 44-47 / 19-25; 700M-shape ik_llama 368 / 94, TQ2_0 155 / 71\n");
      std::printf("peak RSS %s\n", format_bytes(static_cast<double>(process_memory().peak_rss_bytes)).c_str());
    }
  });
}

}  // namespace tritter::cli
