// Model specs and the memory planner (original.md §3.2–3.4, training-spec §5/§6/§9). Formulas in docs/memory.md.
#include "model/specs.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "model/tensor_table.h"

namespace tritter {

namespace {

double gib(double bytes) { return bytes / kGiB; }

bool is_ternary(const TritterConfig& c, const TensorInfo& t) { return c.quant && t.role == TensorRole::BitLinear; }

// 2 bits per weight, four to a byte, plus the tensor's fp32 β (weight_scale).
int64_t packed_tensor_bytes(int64_t numel) { return (numel + 3) / 4 + 4; }

std::string group_of(const TensorInfo& t) {
  switch (t.role) {
    case TensorRole::Embedding: return "embedding";
    case TensorRole::LmHead: return "lm_head";
    case TensorRole::Norm: return "norm";
    case TensorRole::BitLinear: break;
  }
  return (t.kind == "gate_proj" || t.kind == "up_proj" || t.kind == "down_proj") ? "mlp" : "attention";
}

// The original's act constants by layer count (rtx5080_feasibility).
double original_act(int64_t layers, double small, double mid, double big) {
  return layers <= 26 ? small : (layers <= 40 ? mid : big);
}

double original_kv32k_int4_gib(const TritterConfig& c) { return gib(original_kv_bytes(c, 1, 32768, 0.5)); }

// Finishes an rtx5080_feasibility line: base + kv(2048) + 0.5, falling back to kv(512) when over 15.5 GiB.
OriginalFeasibility original_fit(const TritterConfig& c, double base) {
  constexpr double kUsable = 15.5, kCudaOverhead = 0.5;
  const double kv32k = original_kv32k_int4_gib(c);
  OriginalFeasibility f{base + kv32k * 2048.0 / 32768.0 + kCudaOverhead, 2048, false};
  if (f.gib > kUsable) f = {base + kv32k * 512.0 / 32768.0 + kCudaOverhead, 512, false};
  f.fits = kUsable - f.gib >= 0;
  return f;
}

void require_positive(const char* where, const char* what, int64_t v) {
  if (v <= 0) throw_error(where, ": ", what, " ", v, " must be positive");
}

}  // namespace

// ---- The original's formulas ----------------------------------------------------------------------------------

int64_t original_param_count(const TritterConfig& c) {
  const int64_t H = c.hidden_size, L = c.num_hidden_layers, I = c.intermediate_size, V = c.vocab_size;
  const int64_t kvd = c.kv_dim();
  return V * H + L * (2 * H * H + 2 * H * kvd + 3 * H * I + 4 * H) + 2 * H + H * V;
}

int64_t original_packed_bytes(const TritterConfig& c) {
  const double P = static_cast<double>(original_param_count(c));
  return static_cast<int64_t>(P * 0.25 + (P / 4096.0) * 4.0);
}

int64_t original_kv_bytes(const TritterConfig& c, int64_t batch, int64_t seq, double bytes_per_value) {
  const double per_layer = 2.0 * static_cast<double>(batch) * static_cast<double>(seq) *
                           static_cast<double>(c.num_key_value_heads) * static_cast<double>(c.head_dim) *
                           bytes_per_value;
  return c.num_hidden_layers * static_cast<int64_t>(per_layer);
}

int64_t original_lora_params(const TritterConfig& c, int64_t rank, bool attention_only) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, r = rank;
  int64_t per_layer = 4 * (H * r + r * H);  // q, k, v, o, all taken as H → H
  if (!attention_only) per_layer += 2 * (H * r + r * I) + (I * r + r * H);  // gate, up, down
  return c.num_hidden_layers * per_layer;
}

OriginalFeasibility original_full_training(const TritterConfig& c) {
  const double P = static_cast<double>(original_param_count(c));
  const double act = original_act(c.num_hidden_layers, 1.5, 2.5, 4.0);
  return original_fit(c, 2 * P / kGiB + 2 * (4 * P / kGiB) + act);
}

OriginalFeasibility original_qlora(const TritterConfig& c, int64_t rank) {
  const double lora = static_cast<double>(original_lora_params(c, rank));
  const double lora_gib = lora * 2 / kGiB + lora * 2 / kGiB + lora * 8 / kGiB;  // fp16 w, fp16 grad, fp32 m, v
  const double act = original_act(c.num_hidden_layers, 1.0, 1.5, 2.5);
  return original_fit(c, gib(static_cast<double>(original_packed_bytes(c))) + lora_gib + act);
}

double original_check_kv128k_gib(const TritterConfig& c) {
  return 8.0 * gib(static_cast<double>(original_packed_bytes(c)));
}

// ---- Tritter's counts -----------------------------------------------------------------------------------------

std::vector<ComponentParams> component_params(const TritterConfig& c) {
  std::vector<ComponentParams> out;
  std::map<std::string, size_t> index;
  for (const auto& t : tensor_table(c)) {
    auto [it, inserted] = index.try_emplace(t.kind, out.size());
    if (inserted) out.push_back({t.kind, group_of(t), 0, 0});
    ComponentParams& p = out[it->second];
    p.total += t.numel();
    if (t.layer == 0) p.per_layer += t.numel();
  }
  return out;
}

int64_t ternary_param_count(const TritterConfig& c) {
  int64_t n = 0;
  for (const auto& t : tensor_table(c)) n += is_ternary(c, t) ? t.numel() : 0;
  return n;
}

int64_t fp_param_count(const TritterConfig& c) { return parameter_count(c) - ternary_param_count(c); }

int64_t weight_bytes(const TritterConfig& c, WeightStorage storage, int fp_bytes) {
  int64_t bytes = 0;
  for (const auto& t : tensor_table(c)) {
    const int64_t n = t.numel();
    switch (storage) {
      case WeightStorage::F32: bytes += 4 * n; break;
      case WeightStorage::F16: bytes += 2 * n; break;
      case WeightStorage::AllPacked: bytes += packed_tensor_bytes(n); break;
      case WeightStorage::Packed:
        if (is_ternary(c, t)) bytes += packed_tensor_bytes(n);
        else if (t.role == TensorRole::Norm) bytes += 4 * n;
        else bytes += fp_bytes * n;
        break;
    }
  }
  return bytes;
}

int64_t layer_packed_bytes(const TritterConfig& c, int layer) {
  int64_t bytes = 0;
  for (const auto& t : layer_tensors(c, layer)) bytes += is_ternary(c, t) ? packed_tensor_bytes(t.numel()) : 4 * t.numel();
  return bytes;
}

// ---- KV cache -------------------------------------------------------------------------------------------------

KvDtype kv_dtype_from_name(const std::string& name) {
  if (name == "f32" || name == "fp32") return KvDtype::F32;
  if (name == "f16" || name == "fp16") return KvDtype::F16;
  if (name == "int8") return KvDtype::Int8;
  if (name == "int4") return KvDtype::Int4;
  throw_error("kv cache dtype '", name, "' is unknown; expected one of f32, f16, int8, int4");
}

const char* kv_dtype_name(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::F32: return "f32";
    case KvDtype::F16: return "f16";
    case KvDtype::Int8: return "int8";
    case KvDtype::Int4: return "int4";
  }
  return "?";
}

int64_t kv_bytes_per_head_token(const TritterConfig& c, KvDtype dtype) {
  const int64_t d = c.head_dim;
  switch (dtype) {
    case KvDtype::F32: return 4 * d;
    case KvDtype::F16: return 2 * d;
    case KvDtype::Int8: return d + 4;                                          // one fp32 scale
    case KvDtype::Int4: return (d + 1) / 2 + 4 * ((d + kKvInt4Group - 1) / kKvInt4Group);  // fp16 scale + zero
  }
  return 0;
}

int64_t kv_cache_bytes(const TritterConfig& c, KvDtype dtype, int64_t batch, int64_t tokens) {
  const int64_t kept = c.sliding_window ? std::min(tokens, *c.sliding_window) : tokens;
  return 2 * c.num_hidden_layers * batch * kept * c.num_key_value_heads * kv_bytes_per_head_token(c, dtype);
}

// ---- Activations ----------------------------------------------------------------------------------------------

int64_t total_bytes(const std::vector<MemoryItem>& items) {
  int64_t n = 0;
  for (const auto& i : items) n += i.bytes;
  return n;
}

namespace {

// Bytes one layer keeps per token for its backward (training-spec §5 "saved for the backward").
// `frozen`: a LoRA run on a frozen base — BitLinear inputs are kept only where a LoRA target needs them (fp).
struct LayerSaves {
  int64_t fp32 = 0;  // fp32 values per token
  int64_t int8 = 0;  // int8 values per token
};

LayerSaves layer_saves(const TritterConfig& c, bool frozen, int64_t rank, const std::vector<std::string>& targets) {
  const int64_t D = c.hidden_size, F = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads;
  auto targeted = [&](const char* kind) { return std::find(targets.begin(), targets.end(), kind) != targets.end(); };
  LayerSaves s;
  // A BitLinear input shared by `kinds`: int8 levels + one fp32 scale (full QAT), or the fp input and x·Aᵀ per
  // LoRA target (frozen base; the LoRA branch sees the un-quantized input, training-spec §9).
  auto linear_input = [&](int64_t width, std::initializer_list<const char*> kinds, bool fp_already_saved) {
    if (!frozen) {
      s.int8 += width;
      s.fp32 += 1;
      return;
    }
    bool any = false;
    for (const char* k : kinds) {
      if (targeted(k)) {
        any = true;
        s.fp32 += rank;
      }
    }
    if (any && !fp_already_saved) s.fp32 += width;
  };
  s.fp32 += D + 1;                                                    // x, r of input_layernorm
  linear_input(D, {"q_proj", "k_proj", "v_proj"}, false);             // a
  if (c.qk_norm) s.fp32 += q + kv + H + K;                            // pre-norm q, k and their r per head
  s.fp32 += q + 2 * kv;                                               // post-RoPE q, k; v
  s.fp32 += H;                                                        // attention logsumexp per row
  s.fp32 += q + (c.sub_norm ? 1 : 0);                                 // o (attention output), its r
  linear_input(q, {"o_proj"}, true);                                  // õ
  if (c.post_norm == "both") s.fp32 += D + 1;                         // y, r of post_attention_layernorm
  s.fp32 += D + 1;                                                    // h, r of pre_feedforward_layernorm
  linear_input(D, {"gate_proj", "up_proj"}, false);                   // m
  s.fp32 += F * (c.gated_mlp() ? 2 : 1);                              // u (and the gate)
  if (c.sub_norm) s.fp32 += F + 1;                                    // s before ffn_sub_norm, its r
  linear_input(F, {"down_proj"}, c.sub_norm);                         // s̃
  if (c.post_norm != "none") s.fp32 += D + 1;                         // f, r of post_feedforward_layernorm
  return s;
}

std::vector<MemoryItem> activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute,
                                             bool frozen, int64_t rank, const std::vector<std::string>& targets) {
  require_positive("training activations", "batch", B);
  require_positive("training activations", "sequence length", T);
  const int64_t N = B * T, D = c.hidden_size, L = c.num_hidden_layers;
  const LayerSaves s = layer_saves(c, frozen, rank, targets);
  const int64_t layer = N * (4 * s.fp32 + s.int8);
  std::vector<MemoryItem> items;
  if (recompute) {
    items.push_back({"layer inputs (checkpoints)", L * N * D * 4, "L·N·D·4: each layer's input x, fp32"});
    items.push_back({"one layer's saved tensors (rebuilt in backward)", layer,
                     "N·(4·fp32 + int8) per token for one layer, training-spec §5"});
  } else {
    items.push_back({"saved tensors, all layers", L * layer, "L·N·(4·fp32 + int8) per token, training-spec §5"});
  }
  items.push_back({"final norm input and output", N * (2 * D + 1) * 4, "x_L, r, ĥ: N·(2D+1)·4"});
  items.push_back({"logits and their gradient", N * c.vocab_size * 4, "N·V·4 (softmax in place becomes dz)"});
  const int64_t wide = std::max(c.intermediate_size * (c.gated_mlp() ? 2 : 1), c.q_dim() + 2 * c.kv_dim());
  items.push_back({"backward scratch", N * (2 * D + 2 * wide) * 4,
                   "N·(2D + 2·max((1|2)·F, H·d + 2·K·d))·4: one layer's live gradients"});
  return items;
}

}  // namespace

std::vector<MemoryItem> training_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute) {
  return activation_breakdown(c, B, T, recompute, false, 0, {});
}

int64_t training_activation_bytes(const TritterConfig& c, int64_t B, int64_t T, bool recompute) {
  return total_bytes(training_activation_breakdown(c, B, T, recompute));
}

std::vector<MemoryItem> lora_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute,
                                                  int64_t rank, const std::vector<std::string>& targets) {
  return activation_breakdown(c, B, T, recompute, true, rank, targets);
}

int64_t inference_activation_bytes(const TritterConfig& c, int64_t batch, int64_t chunk) {
  require_positive("inference activations", "batch", batch);
  require_positive("inference activations", "prefill chunk", chunk);
  const int64_t D = c.hidden_size, F = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  const int64_t fp32 = 5 * D + 2 * q + 2 * kv + F * (c.gated_mlp() ? 3 : 2);  // x a q k v o h m f, u (gate) s
  const int64_t int8 = 2 * D + q + F;                                         // ã õ m̃ s̃
  const int64_t tiles = c.num_attention_heads * kAttnTile;                    // one score tile per head
  return batch * chunk * (4 * fp32 + int8 + 4 * tiles) + batch * c.vocab_size * 4;
}

// ---- LoRA -----------------------------------------------------------------------------------------------------

int64_t lora_param_count(const TritterConfig& c, int64_t rank, const std::vector<std::string>& targets) {
  require_positive("lora", "rank", rank);
  static const char* const kLinearKinds[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  for (const auto& target : targets) {
    if (std::find_if(std::begin(kLinearKinds), std::end(kLinearKinds), [&](const char* k) { return target == k; }) ==
        std::end(kLinearKinds)) {
      throw_error("lora: target '", target, "' is not a BitLinear; expected q_proj, k_proj, v_proj, o_proj, ",
                  "gate_proj, up_proj or down_proj");
    }
  }
  int64_t n = 0;
  for (const auto& t : tensor_table(c)) {
    if (t.role == TensorRole::BitLinear && std::find(targets.begin(), targets.end(), t.kind) != targets.end()) {
      n += rank * (t.shape[0] + t.shape[1]);  // A (r, I) + B (O, r)
    }
  }
  return n;
}

// ---- The planner ----------------------------------------------------------------------------------------------

PlanMode plan_mode_from_name(const std::string& name) {
  if (name == "infer") return PlanMode::Infer;
  if (name == "qlora") return PlanMode::Qlora;
  if (name == "train") return PlanMode::Train;
  throw_error("mode '", name, "' is unknown; expected one of infer, qlora, train");
}

const char* plan_mode_name(PlanMode mode) {
  switch (mode) {
    case PlanMode::Infer: return "infer";
    case PlanMode::Qlora: return "qlora";
    case PlanMode::Train: return "train";
  }
  return "?";
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }

std::vector<MemoryItem> plan_infer(const TritterConfig& c, const PlanOptions& o) {
  std::vector<MemoryItem> items;
  int64_t ternary = 0, embed_head = 0, norms = 0;
  for (const auto& t : tensor_table(c)) {
    if (is_ternary(c, t)) ternary += packed_tensor_bytes(t.numel());
    else if (t.role == TensorRole::Norm) norms += 4 * t.numel();
    else embed_head += o.infer_fp_bytes * t.numel();
  }
  const int64_t L = c.num_hidden_layers;
  if (o.stream_group > 0 && 2 * o.stream_group < L) {
    int64_t resident = 0;
    for (int i = 0; i < 2 * o.stream_group; ++i) resident += layer_packed_bytes(c, i);
    items.push_back({"streamed layers resident (2 groups of " + str(o.stream_group) + ")", resident,
                     "active + prefetched group; the other layers wait in host memory"});
    int64_t layer_norms = 0;
    for (const auto& t : tensor_table(c)) layer_norms += (t.layer < 0 && t.role == TensorRole::Norm) ? 4 * t.numel() : 0;
    norms = layer_norms;
  } else {
    items.push_back({"ternary weights (2-bit + β)", ternary, "⌈n/4⌉ + 4 bytes per BitLinear tensor"});
  }
  items.push_back({"embedding + lm_head (" + std::string(o.infer_fp_bytes == 2 ? "fp16" : "fp32") + ")", embed_head,
                   "fp tensors, " + str(o.infer_fp_bytes) + " bytes each"});
  if (norms > 0) items.push_back({"norm gains (fp32)", norms, "4 bytes per gain"});
  items.push_back({std::string("KV cache (") + kv_dtype_name(o.kv) + ", " + str(o.context) + " positions)",
                   kv_cache_bytes(c, o.kv, o.batch, o.context), "2·L·B·T·K·bytes(d), scales included"});
  items.push_back({"working set (prefill chunk " + str(o.prefill_chunk) + ")",
                   inference_activation_bytes(c, o.batch, std::min(o.prefill_chunk, o.context)),
                   "one layer's transients + last-token logits"});
  return items;
}

std::string targets_name(const std::vector<std::string>& targets) {
  std::string s;
  for (const auto& t : targets) {
    if (!s.empty()) s += ',';
    s += t.substr(0, t.find('_'));
  }
  return s;
}

}  // namespace

std::vector<MemoryItem> plan_memory(const TritterConfig& c, const PlanOptions& o) {
  require_positive("plan", "context", o.context);
  require_positive("plan", "batch", o.batch);
  require_positive("plan", "prefill chunk", o.prefill_chunk);
  if (o.stream_group < 0) throw_error("plan: stream group ", o.stream_group, " must be >= 0 (0 = no streaming)");
  if (o.mode == PlanMode::Infer) return plan_infer(c, o);
  const std::string act_name = "activations (B=" + str(o.batch) + ", T=" + str(o.context) + ", recompute " +
                               (o.recompute ? "on" : "off") + ")";
  const int64_t P = parameter_count(c);
  std::vector<MemoryItem> items;
  if (o.mode == PlanMode::Train) {
    items.push_back({"weights (fp32 master)", 4 * P, "4·P"});
    items.push_back({"gradients (fp32)", 4 * P, "4·P"});
    items.push_back({"AdamW m, v (fp32)", 8 * P, "8·P"});
    items.push_back({"ternary weights of the step (int8)", ternary_param_count(c), "1 byte per BitLinear weight"});
    items.push_back({act_name, training_activation_bytes(c, o.batch, o.context, o.recompute), "docs/memory.md"});
    return items;
  }
  const int64_t adapters = lora_param_count(c, o.lora_rank, o.lora_targets);
  int64_t frozen_fp = 0, base = 0;
  for (const auto& t : tensor_table(c)) {
    if (is_ternary(c, t)) base += packed_tensor_bytes(t.numel());
    else frozen_fp += 4 * t.numel();
  }
  items.push_back({"ternary base, frozen (2-bit + β)", base, "⌈n/4⌉ + 4 bytes per BitLinear tensor"});
  items.push_back({"embedding + lm_head + gains, frozen (fp32)", frozen_fp, "4 bytes each"});
  items.push_back({"LoRA r=" + str(o.lora_rank) + " " + targets_name(o.lora_targets) + ": weights, grads, m, v (fp32)",
                   16 * adapters, "16 bytes × " + str(adapters) + " adapter parameters"});
  items.push_back({act_name,
                   total_bytes(lora_activation_breakdown(c, o.batch, o.context, o.recompute, o.lora_rank, o.lora_targets)),
                   "docs/memory.md"});
  return items;
}

}  // namespace tritter
