// `tritter bench model --size 700M-shape|2B-shape [--vocab 128256]` or `-m FILE`: prompt processing (pp128) and
// generation (tg64) tokens/s of a random packed model held in memory (or the user's model), on each thread count,
// next to the DRAM bandwidth measured in the same run: decode as a share of the roof (bytes read per token ÷
// bandwidth). llama-bench's conventions: pp = one forward of N prompt tokens, tg = N single-token forwards from an
// empty cache, -r N repetitions reported as mean ± standard deviation, -o md|json|csv.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "api/model_source.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/rng.h"
#include "inference_commands.h"
#include "infer/engine.h"
#include "kernels/bench.h"
#include "kernels/parallel.h"
#include "kernels/ternary_matmul.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "model/init.h"
#include "model/lora.h"
#include "model/model_files.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {

struct BenchModelOptions {
  // --head: auto is i8 for the random preset, and for -m the loaders' choice (model/model_files.h)
  std::string size = "2B-shape", head = "auto", kv = "f16", threads_list = "1,2", model, output = "md";
  std::string write;  // --write: save the random model as GGUF, a packed file or a HF folder
  std::string layout = "auto";  // --ternary-layout
  int64_t vocab = 0, pp = 128, tg = 64;
  int reps = 3;
};

using Clock = std::chrono::steady_clock;

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

struct MeanSd {
  double mean = 0, sd = 0;
};

// Mean and sample standard deviation (0 for one value) of per-repetition rates.
MeanSd mean_sd(const std::vector<double>& v) {
  MeanSd r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - r.mean) * (x - r.mean);
    r.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return r;
}

struct ModelRow {
  int threads = 0;
  MeanSd pp, tg;
  double read_gbs = 0, roof = 0;
};

}  // namespace

void add_bench_model_command(CLI::App& bench, GlobalOptions& global) {
  auto o = std::make_shared<BenchModelOptions>();
  auto* cmd = bench.add_subcommand("model", "Whole-model prompt (pp) and generation (tg) speed vs the DRAM roof");
  auto* size = cmd->add_option("--size", o->size, "Preset of a random model: 700M-shape, 2B-shape, test, tiny, ...")
                   ->capture_default_str();
  cmd->add_option("-m,--model", o->model, "Your model instead: packed file, checkpoint, training run directory, HF folder or GGUF file")
      ->excludes(size);
  cmd->add_option("--vocab", o->vocab, "Override vocab_size of the preset (e.g. 128256)");
  cmd->add_option("--head", o->head,
                  "LM head: auto (the random preset: i8; -m: int8 when a GGUF stores it in 8 bits or fewer, else as "
                  "the file), i8, i4 (4-bit groups of 32, quantized at load) or f32")
      ->check(CLI::IsMember({"auto", "f32", "i8", "i4"}))
      ->capture_default_str();
  add_ternary_layout_option(cmd, &o->layout);
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8, int4 (or q8_0, q4_0)")->capture_default_str();
  cmd->add_option("--threads-list", o->threads_list, "Thread counts to run")->capture_default_str();
  cmd->add_option("--pp,-p,--n-prompt", o->pp, "Prompt tokens")->capture_default_str();
  cmd->add_option("--tg,-n,--n-gen", o->tg, "Generated tokens")->capture_default_str();
  cmd->add_option("-r,--repetitions,--reps", o->reps, "Repetitions (mean ± standard deviation)")->capture_default_str();
  cmd->add_option("-o,--output", o->output, "md (table), json or csv")->capture_default_str();
  cmd->add_option("--write", o->write, "Write the random model to FILE.gguf, FILE.safetensors or a HF folder")
      ->excludes("--model");
  cmd->callback([o, &global] {
    auto ctx = make_context(global);
    if (o->pp < 1 || o->tg < 1 || o->reps < 1) throw_error("bench model: --pp, --tg and --reps must be >= 1");
    if (o->output != "md" && o->output != "json" && o->output != "csv") {
      throw_error("bench model: -o: found '", o->output, "', expected md, json or csv");
    }
    const auto threads = parse_count_list(o->threads_list, "--threads-list", "thread counts");
    const bool table = o->output == "md";

    auto t0 = Clock::now();
    const std::string preset_head = o->head == "auto" ? "i8" : o->head;
    std::string name = o->size;
    PackedModel model = [&] {
      if (!o->model.empty()) {
        const ModelFileKind kind = detect_model_file(o->model);
        if (kind == ModelFileKind::HfFolder || kind == ModelFileKind::Gguf) {
          LoadedModel loaded = load_any_model(o->model, &ctx->memory, LoadOptions{head_choice_from_name(o->head)});
          if (table) {
            std::printf("loaded %s (%s) in %.2f s\n", o->model.c_str(), model_file_kind_name(kind), loaded.load_seconds);
          }
          name = o->model;
          return std::move(loaded.model);
        }
        const ModelSource src = resolve_model_source(o->model);
        if (global.verbose) std::fprintf(stderr, "model: %s\n", src.describe().c_str());
        name = src.file.string();
        PackedModel m = open_lora_base(src.file, &ctx->memory);  // mapped, or a checkpoint packed in memory
        apply_head_choice(m, head_choice_from_name(o->head), src.file, &ctx->memory);
        return m;
      }
      ConfigOverrides co;
      co.model_size = o->size;
      if (o->vocab) co.vocab_size = o->vocab;
      const TritterConfig rc = resolve_config(co);
      return PackedModel::in_memory(
          rc, [&](float* out, const TensorInfo& info, size_t i) { fast_random(out, rc, info, i); },
          {head_format_from_name(preset_head)}, &ctx->memory);
    }();
    const TernaryLayout layout = resolve_ternary_layout(
        layout_choice_from_name(effective_ternary_layout(o->layout, global.kernels)), ctx->cpu);
    model.use_ternary_layout(layout, &ctx->memory);
    const TritterConfig& c = model.config();
    const ModelWeights& w = model.weights();
    if (!o->write.empty()) {
      const std::filesystem::path out = o->write;
      if (out.extension() == ".gguf") write_gguf_model(out, w, GgufWriteOptions{});
      else if (out.extension() == ".safetensors") write_packed_weights(out, w, false);
      else write_hf_folder(out, w, HfWriteOptions{});
      std::printf("wrote %s\n", o->write.c_str());
    }
    const char* tier = kernel_tier_name(ternary_kernel_tier(*ctx));
    if (table) {
      std::printf("model: %s (D %lld, L %lld, H %lld/%lld, F %lld, V %lld, %s), %lld parameters, %s, kv %s; "
                  "ready in %.1f s\n",
                  name.c_str(), (long long)c.hidden_size, (long long)c.num_hidden_layers,
                  (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.intermediate_size,
                  (long long)c.vocab_size, mlp_act_name(c.mlp_act), (long long)parameter_count(c),
                  o->model.empty() ? ("random weights, head " + preset_head).c_str() : "its own weights", o->kv.c_str(),
                  std::chrono::duration<double>(Clock::now() - t0).count());
      std::printf("bytes read per decoded token: %.1f MB; ternary layout %s; kernel tier %s; %d repetition(s), "
                  "mean ± sd\n\n", w.bytes_per_token / 1e6, ternary_layout_name(layout), tier, o->reps);
      std::printf("| %3s | %18s | %18s | %9s | %9s | %6s | %7s |\n", "thr", "pp t/s", "tg t/s", "read GB/s",
                  "roof t/s", "%roof", "ms/tok");
      std::printf("|----:|-------------------:|-------------------:|----------:|----------:|-------:|--------:|\n");
    } else if (o->output == "csv") {
      std::printf("model,threads,n_prompt,n_gen,reps,pp_mean,pp_sd,tg_mean,tg_sd,read_gbs,roof_tps,kernels,kv,layout\n");
    }
    std::vector<int32_t> prompt(o->pp);
    Rng rng(1);
    for (auto& id : prompt) id = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(c.vocab_size)));
    std::vector<float> logits(c.vocab_size);
    std::vector<ModelRow> rows;
    for (int t : threads) {
      ctx->threads = t;
      set_default_threads(t);
      const kbench::StreamResult bw = kbench::measure_stream(t, size_t{256} << 20, 3);
      EngineOptions eo;
      eo.context = std::min<int64_t>(c.max_position_embeddings, std::max(o->pp, o->tg) + 1);
      eo.kv_dtype = kv_dtype_from_name(kv_cache_name(o->kv));
      eo.max_batch = std::min<int64_t>(o->pp, eo.context);
      Engine engine(*ctx, w, eo);
      engine.forward(std::span<const int32_t>(prompt.data(), std::min<int64_t>(8, o->pp)), logits.data(), false);
      std::vector<double> pp_rates, tg_rates;
      for (int r = 0; r < o->reps; ++r) {
        engine.reset();
        auto a = Clock::now();
        engine.forward(prompt, logits.data(), false);
        pp_rates.push_back(o->pp / std::chrono::duration<double>(Clock::now() - a).count());
        engine.reset();
        a = Clock::now();
        for (int64_t i = 0; i < o->tg; ++i) engine.forward(std::span<const int32_t>(&prompt[i % o->pp], 1), logits.data(), false);
        tg_rates.push_back(o->tg / std::chrono::duration<double>(Clock::now() - a).count());
      }
      ModelRow row{t, mean_sd(pp_rates), mean_sd(tg_rates), bw.read_gbs,
              bw.read_gbs * 1e9 / static_cast<double>(w.bytes_per_token)};
      rows.push_back(row);
      if (table) {
        char pp[32], tg[32];
        std::snprintf(pp, sizeof pp, "%.1f ± %.1f", row.pp.mean, row.pp.sd);
        std::snprintf(tg, sizeof tg, "%.2f ± %.2f", row.tg.mean, row.tg.sd);
        std::printf("| %3d | %19s | %19s | %9.1f | %9.2f | %5.1f%% | %7.2f |\n", t, pp, tg, row.read_gbs, row.roof,
                    100 * row.tg.mean / row.roof, 1e3 / row.tg.mean);
      } else if (o->output == "csv") {
        std::printf("\"%s\",%d,%lld,%lld,%d,%.3f,%.3f,%.3f,%.3f,%.2f,%.2f,%s,%s,%s\n", name.c_str(), t,
                    (long long)o->pp, (long long)o->tg, o->reps, row.pp.mean, row.pp.sd, row.tg.mean, row.tg.sd,
                    row.read_gbs, row.roof, tier, o->kv.c_str(), ternary_layout_name(layout));
      }
      std::fflush(stdout);
      if (global.verbose && table) {
        const EngineTimings& et = engine.timings();
        const double all = et.matmul_s + et.attention_s + et.head_s + et.other_s;
        std::printf("     phases over all runs: matmul %.0f%%, attention %.0f%%, head %.0f%%, other %.0f%%\n",
                    100 * et.matmul_s / all, 100 * et.attention_s / all, 100 * et.head_s / all, 100 * et.other_s / all);
      }
    }
    if (o->output == "json") {
      nlohmann::ordered_json j = nlohmann::ordered_json::array();
      for (const ModelRow& r : rows) {
        j.push_back({{"model", name}, {"threads", r.threads}, {"n_prompt", o->pp}, {"n_gen", o->tg},
                     {"repetitions", o->reps}, {"pp_tokens_per_second", {{"mean", r.pp.mean}, {"sd", r.pp.sd}}},
                     {"tg_tokens_per_second", {{"mean", r.tg.mean}, {"sd", r.tg.sd}}}, {"read_gbs", r.read_gbs},
                     {"roof_tokens_per_second", r.roof}, {"bytes_per_token", w.bytes_per_token},
                     {"kernels", tier}, {"kv_cache", o->kv}, {"ternary_layout", ternary_layout_name(layout)}});
      }
      std::printf("%s\n", j.dump(2).c_str());
    }
    if (table && !global.quiet) {
      std::printf("\n%%roof = tg ÷ roof, roof = read bandwidth (measured above, same run) ÷ bytes per token\n");
      // The same roof for each head format the engine runs: the head's bytes replaced, the rest as measured.
      const int64_t V = c.vocab_size, D = c.hidden_size;
      const double head_now = static_cast<double>(V * head_stored_row_bytes(w.head.format, D));
      std::printf("decode roof by LM head (--head), at each thread count's read bandwidth:");
      for (HeadFormat f : {HeadFormat::F32, HeadFormat::I8, HeadFormat::I4}) {
        const double bytes = static_cast<double>(w.bytes_per_token) - head_now + static_cast<double>(V * head_stored_row_bytes(f, D));
        std::printf(" %s %.0f MB/token:", head_format_name(f), bytes / 1e6);
        for (const ModelRow& r : rows) std::printf(" %.1f", r.read_gbs * 1e9 / bytes);
        std::printf(" t/s;");
      }
      std::printf("\n");
      std::printf("peak RSS %s\n", format_bytes(static_cast<double>(process_memory().peak_rss_bytes)).c_str());
    }
  });
}

}  // namespace tritter::cli
