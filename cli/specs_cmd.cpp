// `tritter specs`: the size table 1B–70B (the original's formulas beside Tritter's tensor-table counts) and, with
// --model, one size in detail: parameters per component, weight sizes, KV cache, activations, training memory.
// All figures come from plan/specs; this file only prints. Units: params in B (10⁹), memory in MiB/GiB (2²⁰/2³⁰).
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "model/config.h"
#include "model/tensor_table.h"
#include "plan/specs.h"
#include "train/model.h"
#include "infer/engine_sizes.h"

namespace tritter::cli {

namespace {

using json = nlohmann::json;

std::string gib(double bytes) { return fmt("%.2f GiB", bytes / kGiB); }
// MiB below 1 GiB, GiB above: "261.05 MiB", "1.45 GiB" (the original's table, with the right unit names).
std::string mib_or_gib(double bytes) {
  if (bytes < kMiB) return fmt("%.2f KiB", bytes / 1024);
  return bytes < kGiB ? fmt("%.2f MiB", bytes / kMiB) : gib(bytes);
}
// Parameter counts in decimal units: "6.21 B", "10.8 M".
std::string billions(double n) {
  if (n >= 1e9) return fmt("%.2f B", n / 1e9);
  return n >= 1e6 ? fmt("%.2f M", n / 1e6) : fmt("%.2f K", n / 1e3);
}
std::string gqa(const TritterConfig& c) {
  return c.num_key_value_heads == c.num_attention_heads ? "MHA" : std::to_string(c.gqa_group()) + ":1";
}

struct SpecRow {
  std::string size;
  TritterConfig c;
  int64_t spec_params, params, spec_packed, packed;
};

SpecRow make_row(const std::string& size) {
  const TritterConfig c = preset_config(size);
  return {size, c, original_param_count(c), parameter_count(c), original_packed_bytes(c),
          weight_bytes(c, WeightStorage::Packed)};
}

json row_json(const SpecRow& r) {
  return {{"size", r.size},
          {"hidden_size", r.c.hidden_size},
          {"num_hidden_layers", r.c.num_hidden_layers},
          {"num_attention_heads", r.c.num_attention_heads},
          {"num_key_value_heads", r.c.num_key_value_heads},
          {"intermediate_size", r.c.intermediate_size},
          {"params_nominal", r.spec_params},
          {"params_tritter", r.params},
          {"packed_bytes_nominal", r.spec_packed},
          {"packed_bytes_tritter", r.packed}};
}

void print_table(bool as_json) {
  std::vector<SpecRow> rows;
  for (const auto& s : spec_size_names()) rows.push_back(make_row(s));
  if (as_json) {
    json j = json::array();
    for (const auto& r : rows) j.push_back(row_json(r));
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("Tritter model sizes (head_dim 128, gated squared-ReLU MLP, vocab 65536)\n\n");
  std::printf("%-5s %11s %11s %7s %6s %9s %5s %7s %13s %13s\n", "size", "params", "Tritter", "hidden", "layers",
              "heads/kv", "GQA", "FFN", "packed", "Tritter");
  std::printf("%-5s %11s %11s %7s %6s %9s %5s %7s %13s %13s\n", "", "(nominal)", "(table)", "", "", "", "", "",
              "(nominal)", "(file)");
  for (const auto& r : rows) {
    const std::string heads = std::to_string(r.c.num_attention_heads) + "/" + std::to_string(r.c.num_key_value_heads);
    std::printf("%-5s %11s %11s %7lld %6lld %9s %5s %7lld %13s %13s\n", r.size.c_str(),
                billions(static_cast<double>(r.spec_params)).c_str(), billions(static_cast<double>(r.params)).c_str(),
                static_cast<long long>(r.c.hidden_size), static_cast<long long>(r.c.num_hidden_layers), heads.c_str(),
                gqa(r.c).c_str(), static_cast<long long>(r.c.intermediate_size),
                mib_or_gib(static_cast<double>(r.spec_packed)).c_str(), mib_or_gib(static_cast<double>(r.packed)).c_str());
  }
  std::printf(
      "\nparams (nominal): the size names' formula (no QK-Norm or sub-norm gains, 4·D norm terms per layer).\n"
      "Tritter (table): the parameters Tritter allocates, summed over its tensor table.\n"
      "packed (nominal): int(P/4 + P/1024) bytes, every tensor at 2 bits (binary units: MiB/GiB).\n"
      "Tritter (file): the packed inference file (model/packed_model.h) — ternary tiles at 2 bits + one fp32 scale per BitLinear;\n"
      "embedding, lm_head and gains stay fp32 (about 2·V·D·4 bytes of it: 1 GiB per table at 7B).\n"
      "30B uses 4 kv heads and FFN 18176: 52 heads over 8 kv heads would not be a whole GQA group\n"
      "(docs/specs.md). `tritter specs --model 7B` shows one size in detail.\n");
}

void print_detail(const TritterConfig& c, bool as_json, int64_t train_seq) {
  const auto components = component_params(c);
  const int64_t P = parameter_count(c), P_spec = original_param_count(c);
  const int64_t weights[] = {original_packed_bytes(c), weight_bytes(c, WeightStorage::Packed),
                             weight_bytes(c, WeightStorage::AllPacked), weight_bytes(c, WeightStorage::F16),
                             weight_bytes(c, WeightStorage::F32)};
  const char* weight_names[] = {"packed, nominal formula (all 2-bit + P/1024 B)",
                                "packed file, Tritter (2-bit ternary tiles + β; embedding, head, gains fp32)",
                                "packed, every Tritter tensor at 2 bits (the nominal accounting)",
                                "fp16, every tensor", "fp32, every tensor (training master weights)"};
  const KvDtype kvs[] = {KvDtype::F32, KvDtype::F16, KvDtype::I8, KvDtype::I4};
  // Bytes of the cache at `t` positions (64-token chunks, as the engine writes), or -1 beyond the model's context.
  auto kv_at = [&](KvDtype kv, int64_t t) {
    return t <= c.max_position_embeddings ? static_cast<int64_t>(kv_cache_bytes(c, t, kv, std::min<int64_t>(64, t))) : -1;
  };
  auto orig_kv_at = [&](int64_t t) { return t <= c.max_position_embeddings ? original_kv_bytes(c, 1, t, 0.5) : -1; };
  auto show = [](int64_t bytes, bool small) {
    return bytes < 0 ? std::string("-") : (small ? mib_or_gib((double)bytes) : gib((double)bytes));
  };
  const int64_t infer_ctx = std::min<int64_t>(32768, c.max_position_embeddings);
  const int64_t kv_tokens[] = {1024, 32768, 131072};
  const int64_t act_on = train::train_activation_bytes(c, 1, train_seq, true);
  const int64_t act_off = train::train_activation_bytes(c, 1, train_seq, false);
  const int64_t act_scratch = training_scratch_bytes(c, 1, train_seq, 1);
  EngineOptions engine;
  engine.context = infer_ctx;
  engine.max_batch = 64;
  const int64_t engine_bytes = static_cast<int64_t>(engine_buffer_bytes(c, resolve_engine_options(c, engine)));
  const int64_t ranks[] = {8, 16, 32, 64};
  PlanOptions train_opts;
  train_opts.mode = PlanMode::Train;
  train_opts.context = train_seq;
  const int64_t train_total = total_bytes(plan_memory(c, train_opts));
  const OriginalFeasibility orig_full = original_full_training(c);
  // QLoRA needs the packed base: none for a quant=false config (-1, printed "-"), nor a rank above the smallest
  // side of a targeted projection (q, k, v, o), which a small config's K/V projections can be.
  const int64_t max_rank = std::min({c.hidden_size, c.kv_dim(), c.num_attention_heads * c.head_dim});
  auto qlora_bytes = [&](int64_t r) -> int64_t {
    if (!c.quant || r > max_rank) return -1;
    PlanOptions q = train_opts;
    q.mode = PlanMode::Qlora;
    q.lora_rank = r;
    return total_bytes(plan_memory(c, q));
  };

  if (as_json) {
    json j;
    j["config"] = config_to_json(c);
    j["params_tritter"] = P;
    j["params_nominal"] = P_spec;
    j["params_ternary"] = ternary_param_count(c);
    j["params_fp"] = fp_param_count(c);
    for (const auto& p : components) {
      j["components"].push_back({{"kind", p.kind}, {"group", p.group}, {"per_layer", p.per_layer}, {"total", p.total}});
    }
    j["weights_bytes"] = {{"packed_nominal", weights[0]}, {"packed_tritter", weights[1]}, {"packed_all_tensors", weights[2]},
                          {"fp16", weights[3]}, {"fp32", weights[4]}};
    for (KvDtype d : kvs) {
      json k = {{"dtype", kv_dtype_name(d)}};
      for (int64_t t : kv_tokens) {
        if (t <= c.max_position_embeddings) k["bytes_at_" + std::to_string(t)] = kv_at(d, t);
      }
      j["kv_cache"].push_back(k);
    }
    j["kv_cache_quick_int4"] = {{"bytes_at_32768", orig_kv_at(32768)},
                                   {"bytes_at_131072", orig_kv_at(131072)},
                                   {"quick_packed_x8_128k_gib", original_check_kv128k_gib(c)}};
    j["activations"] = {{"quick_bytes_per_token", original_activation_bytes_per_token(c)},
                        {"inference_engine_buffers_bytes", engine_bytes},
                        {"inference_context", infer_ctx},
                        {"training_seq", train_seq},
                        {"training_recompute_bytes", act_on},
                        {"training_no_recompute_bytes", act_off},
                        {"training_attention_scratch_and_rope_bytes", act_scratch}};
    j["training"]["full_qat"] = {{"bytes", train_total}, {"quick_gib", orig_full.gib},
                                 {"quick_context", orig_full.context}};
    for (int64_t r : ranks) {
      if (r > max_rank) continue;  // no adapter of that rank fits this config
      const OriginalFeasibility oq = original_qlora(c, r);
      j["training"]["qlora"].push_back({{"rank", r},
                                        {"lora_params", lora_param_count(c, r, default_lora_targets())},
                                        {"lora_params_quick", original_lora_params(c, r)},
                                        {"bytes", qlora_bytes(r)},
                                        {"quick_gib", oq.gib},
                                        {"quick_context", oq.context}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }

  std::printf("%s: hidden %lld, %lld layers, %lld heads / %lld kv heads (%s), head_dim %lld, FFN %lld (%s), vocab %lld, "
              "context %lld\n\n",
              c.model_size.c_str(), (long long)c.hidden_size, (long long)c.num_hidden_layers,
              (long long)c.num_attention_heads, (long long)c.num_key_value_heads, gqa(c).c_str(), (long long)c.head_dim,
              (long long)c.intermediate_size, mlp_act_name(c.mlp_act), (long long)c.vocab_size,
              (long long)c.max_position_embeddings);
  std::printf("Parameters (from the tensor table)  %16s %17s\n", "per layer", "total");
  for (const auto& p : components) {
    std::printf("  %-32s %16s %17s\n", (p.kind + " (" + p.group + ")").c_str(),
                p.per_layer ? grouped(p.per_layer).c_str() : "-", grouped(p.total).c_str());
  }
  std::printf("  %-32s %16s %17s  = %s\n", "Tritter total", "", grouped(P).c_str(), billions((double)P).c_str());
  std::printf("  %-32s %16s %17s  = %s (%+.3f %% vs Tritter)\n", "nominal formula", "", grouped(P_spec).c_str(),
              billions((double)P_spec).c_str(), 100.0 * (double)(P_spec - P) / (double)P);
  std::printf("  ternary (BitLinear) %s, full precision (embedding, head, gains) %s\n\n",
              billions((double)ternary_param_count(c)).c_str(), billions((double)fp_param_count(c)).c_str());

  std::printf("Weights\n");
  for (int i = 0; i < 5; ++i) {
    std::printf("  %-80s %12s  (%s bytes)\n", weight_names[i], mib_or_gib((double)weights[i]).c_str(),
                grouped(weights[i]).c_str());
  }

  std::printf("\nKV cache, batch 1 (K and V, all layers)  %12s %12s %12s\n", "per 1K tok", "32K tokens", "128K tokens");
  const char* kv_notes[] = {"f32", "f16", "int8 (+ fp32 min, scale per group)", "int4 (+ fp32 min, scale per group)"};
  for (int i = 0; i < 4; ++i) {
    std::printf("  %-38s %12s %12s %12s\n", kv_notes[i], show(kv_at(kvs[i], 1024), true).c_str(),
                show(kv_at(kvs[i], 32768), false).c_str(), show(kv_at(kvs[i], 131072), false).c_str());
  }
  std::printf("  %-38s %12s %12s %12s\n", "int4, quick formula (data only)", show(orig_kv_at(1024), true).c_str(),
              show(orig_kv_at(32768), false).c_str(), show(orig_kv_at(131072), false).c_str());
  std::printf("  (Tritter's int8/int4 caches are KIVI: keys per channel over 32-token groups, values per token over\n"
              "   32-channel groups, fp32 min and scale, an fp32 residual of 32 keys; docs/memory.md)\n");
  std::printf("  (a quick estimate of packed weights × 8 gives %.1f GiB for 128K INT4: not a KV-cache formula)\n",
              original_check_kv128k_gib(c));
  if (c.sliding_window) std::printf("  sliding window %lld: at most that many positions are kept\n", (long long)*c.sliding_window);

  std::printf("\nActivations\n");
  std::printf("  %-62s %12s\n", "quick estimate, 12·D·2 bytes per token",
              fmt("%.1f KiB", (double)original_activation_bytes_per_token(c) / 1024).c_str());
  std::printf("  %-62s %12s\n",
              ("inference engine buffers (RoPE for " + std::to_string(infer_ctx) + ", 64-token chunk)").c_str(),
              mib_or_gib((double)engine_bytes).c_str());
  for (const int64_t* act : {&act_on, &act_off}) {
    std::printf("  training, B=1, T=%lld, recompute %-3s %27s %12s\n", (long long)train_seq, act == &act_on ? "on" : "off",
                "", gib((double)*act).c_str());
  }
  std::printf("    (the trainer's arena: the L+1 residual streams, the saved tensors of every layer or, with recompute,\n"
              "     of one, the final norm, logits and their gradient, forward temporaries, backward scratch)\n");
  std::printf("  %-62s %12s\n", "attention scratch (1 thread) and RoPE tables", mib_or_gib((double)act_scratch).c_str());

  std::printf("\nTraining memory (B=1, T=%lld, recompute on)       %12s   %s\n", (long long)train_seq, "Tritter",
              "quick RTX 5080 estimate (T)");
  std::printf("  %-50s %12s   %.2f GiB (%lld)\n", "full QAT: fp32 weights, grads, AdamW m, v + int8 Wq", gib((double)train_total).c_str(),
              orig_full.gib, (long long)orig_full.context);
  for (int64_t r : ranks) {
    if (r > max_rank) continue;  // no adapter of that rank fits this config
    const OriginalFeasibility oq = original_qlora(c, r);
    const std::string label = "QLoRA r=" + std::to_string(r) + " q,k,v,o: " +
                              grouped(lora_param_count(c, r, default_lora_targets())) + " adapter params";
    std::printf("  %-50s %12s   %.2f GiB (%lld), counting %s params\n", label.c_str(),
                show(qlora_bytes(r), false).c_str(), oq.gib, (long long)oq.context,
                grouped(original_lora_params(c, r)).c_str());
  }
  std::printf("  The QLoRA estimate counts K/V adapters as D wide (GQA ignored), adds a KV cache to training and\n"
              "  uses fixed activation constants; Tritter's figures use the tensor table and docs/memory.md.\n");
}

}  // namespace

void add_specs_command(CLI::App& app, GlobalOptions&) {
  auto* cmd = app.add_subcommand("specs", "Model sizes 1B-70B, or one size in detail (--size): params, weights, "
                                          "KV cache, activations, training memory");
  struct Opts {
    std::string model, config;
    bool json = false;
    int64_t seq = 2048;
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--size,-m,--model", opts->model, "A preset: 1B ... 70B, or test, tiny, small, 700M-shape, 2B-shape");
  cmd->add_option("--config", opts->config, "A config JSON file instead of a preset");
  auto* seq = cmd->add_option("--seq", opts->seq,
                               "Training sequence length T for the training figures (default 2048, at most the "
                               "model's context)");
  cmd->add_flag("--json", opts->json, "Machine-readable output");
  cmd->callback([opts, seq] {
    if (opts->seq <= 0) throw_error("specs: --seq ", opts->seq, " must be positive");
    if (opts->seq > kMaxPositions) throw_error("specs: --seq: found ", opts->seq, ", expected 1 .. ", kMaxPositions);
    if (!opts->model.empty() && !opts->config.empty()) throw_error("specs: give --model or --config, not both");
    if (opts->model.empty() && opts->config.empty()) return print_table(opts->json);
    const TritterConfig c = opts->config.empty() ? preset_config(opts->model) : load_config_file(opts->config);
    print_detail(c, opts->json, seq->count() > 0 ? opts->seq : std::min<int64_t>(opts->seq, c.max_position_embeddings));
  });
}

}  // namespace tritter::cli
