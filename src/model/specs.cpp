// Model specs and the memory planner (original.md §3.2–3.4, training-spec §5/§6/§9). Formulas in docs/memory.md.
#include "model/specs.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "core/error.h"
#include "kernels/ternary_matmul.h"
#include "model/projections.h"
#include "model/tensor_table.h"

namespace tritter {

namespace {

double gib(double bytes) { return bytes / kGiB; }

bool is_ternary(const TritterConfig& c, const TensorInfo& t) { return c.quant && t.role == TensorRole::BitLinear; }

// A BitLinear in the packed file: T16 tiles (2 bits per weight, padded to 16 × 16) plus its fp32 β (weight_scale).
int64_t packed_linear_bytes(const TensorInfo& t) {
  return static_cast<int64_t>(ternary_matrix_bytes(t.shape[0], t.shape[1])) + 4;
}
// The original's accounting for any tensor: 2 bits per value, one fp32 scale.
int64_t all_packed_tensor_bytes(int64_t numel) { return (numel + 3) / 4 + 4; }
int64_t align64(int64_t n) { return (n + 63) / 64 * 64; }

std::string group_of(const TensorInfo& t) {
  switch (t.role) {
    case TensorRole::Embedding: return "embedding";
    case TensorRole::LmHead: return "lm_head";
    case TensorRole::Norm: return "norm";
    case TensorRole::BitLinear: break;
  }
  const auto p = proj_from_name(t.kind);
  return p && std::string_view(proj_block(*p)) == "mlp" ? "mlp" : "attention";
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

int64_t weight_bytes(const TritterConfig& c, WeightStorage storage, bool head_i8) {
  int64_t bytes = 0;
  for (const auto& t : tensor_table(c)) {
    const int64_t n = t.numel();
    switch (storage) {
      case WeightStorage::F32: bytes += 4 * n; break;
      case WeightStorage::F16: bytes += 2 * n; break;
      case WeightStorage::AllPacked: bytes += all_packed_tensor_bytes(n); break;
      case WeightStorage::Packed:
        if (is_ternary(c, t)) bytes += packed_linear_bytes(t);
        else if (t.role == TensorRole::LmHead && head_i8) bytes += n + 4 * t.shape[0];  // i8 (V, D) + row scales (V)
        else bytes += 4 * n;
        break;
    }
  }
  if (storage == WeightStorage::Packed && head_i8 && c.tie_word_embeddings) {
    bytes += c.vocab_size * c.hidden_size + 4 * c.vocab_size;  // the int8 head beside the tied embedding
  }
  return bytes;
}

int64_t layer_packed_bytes(const TritterConfig& c, int layer) {
  int64_t bytes = 0;
  for (const auto& t : layer_tensors(c, layer)) bytes += is_ternary(c, t) ? packed_linear_bytes(t) : 4 * t.numel();
  return bytes;
}

// ---- KV cache -------------------------------------------------------------------------------------------------

KvStorage kv_storage_from_name(const std::string& name) {
  if (name == "f32") return KvStorage::F32;
  if (name == "f16") return KvStorage::F16;
  if (name == "int8") return KvStorage::Int8;
  if (name == "int4") return KvStorage::Int4;
  throw_error("kv cache dtype '", name, "' is unknown; expected one of f32, f16, int8, int4");
}

const char* kv_storage_name(KvStorage kv) {
  switch (kv) {
    case KvStorage::F32: return "f32";
    case KvStorage::F16: return "f16";
    case KvStorage::Int8: return "int8";
    case KvStorage::Int4: return "int4";
  }
  return "?";
}

int64_t kv_cache_plan_bytes(const TritterConfig& c, KvStorage kv, int64_t sequences, int64_t context, int64_t chunk) {
  require_positive("kv cache", "sequences", sequences);
  require_positive("kv cache", "context", context);
  require_positive("kv cache", "chunk", chunk);
  if (context > c.max_position_embeddings) {
    throw_error("kv cache: context ", context, " exceeds max_position_embeddings ", c.max_position_embeddings,
                "; expected at most ", c.max_position_embeddings);
  }
  constexpr int64_t kGroup = 32;  // infer/kv_cache.h kKvKeyGroup
  const int64_t d = c.head_dim;
  const bool quantized = kv == KvStorage::Int8 || kv == KvStorage::Int4;
  const int64_t held = c.sliding_window ? std::min(context, *c.sliding_window + chunk - 1) : context;
  const int64_t C = quantized ? (held + kGroup - 1) / kGroup * kGroup : held;
  const int64_t row = kv == KvStorage::F32 ? 4 * d : kv == KvStorage::F16 ? 2 * d : kv == KvStorage::Int8 ? d : d / 2;
  int64_t per_head = 2 * align64(C * row);  // K and V data
  if (quantized) {
    const int64_t value_group = d % 32 == 0 ? 32 : d;
    per_head += align64((C / kGroup) * 2 * d * 4);            // keys: (min, scale) per channel per token group
    per_head += align64(C * (d / value_group) * 2 * 4);       // values: (min, scale) per channel group per token
    per_head += align64(kGroup * d * 4);                      // the fp32 residual of the open key group
  }
  return sequences * c.num_hidden_layers * c.num_key_value_heads * per_head;
}

// ---- Activations ----------------------------------------------------------------------------------------------

int64_t total_bytes(const std::vector<MemoryItem>& items) {
  int64_t n = 0;
  for (const auto& i : items) n += i.bytes;
  return n;
}

namespace {

// Sums 64-byte-aligned blocks, as the trainer's arena carves them.
struct Blocks {
  int64_t bytes = 0;
  void f32(int64_t n) { bytes += align64(4 * n); }
  void i8(int64_t n) { bytes += align64(n); }
  void input(const TritterConfig& c, int64_t N, int64_t I) {  // a BitLinear input: int8 levels + fp32 scale per row
    if (c.quant) {
      i8(N * I);
      f32(N);
    } else {
      f32(N * I);
    }
  }
};

// One layer's saved tensors (training-spec §5, in the order train/model.cpp carves them).
int64_t layer_saved_bytes(const TritterConfig& c, int64_t B, int64_t T) {
  const int64_t N = B * T, D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads;
  Blocks b;
  b.f32(N);                   // r of input_layernorm
  b.input(c, N, D);           // a: input of q, k, v
  if (c.qk_norm) {
    b.f32(N * Hd); b.f32(N * H);  // q before QK-Norm, its r per head
    b.f32(N * Kd); b.f32(N * K);  // k before QK-Norm, its r per head
  }
  b.f32(N * Hd); b.f32(N * Kd); b.f32(N * Kd);  // post-RoPE q, k; v
  b.f32(N * Hd);              // attention output
  b.f32(B * H * T);           // logsumexp per row (flash-style; P is not kept)
  if (c.sub_norm) b.f32(N);   // r of attn_sub_norm
  b.input(c, N, Hd);          // õ: input of o_proj
  if (c.post_norm == "both") { b.f32(N * D); b.f32(N); }  // y and r of post_attention_layernorm
  b.f32(N * D); b.f32(N);     // h and r of pre_feedforward_layernorm
  b.input(c, N, D);           // m: input of up (and gate)
  b.f32(N * F);               // u
  if (c.gated_mlp()) b.f32(N * F);               // the gate
  if (c.sub_norm) { b.f32(N * F); b.f32(N); }    // s before ffn_sub_norm, its r
  b.input(c, N, F);           // s̃: input of down_proj
  if (c.post_norm != "none") { b.f32(N * D); b.f32(N); }  // f and r of post_feedforward_layernorm
  return b.bytes;
}

}  // namespace

std::vector<MemoryItem> training_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute) {
  require_positive("training activations", "batch", B);
  require_positive("training activations", "sequence length", T);
  if (T > c.max_position_embeddings) {
    throw_error("training activations: sequence length ", T, " exceeds max_position_embeddings ",
                c.max_position_embeddings);
  }
  const int64_t N = B * T, D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t L = c.num_hidden_layers, V = c.vocab_size, big = std::max({D, Hd, F});
  std::vector<MemoryItem> items;
  items.push_back({"residual streams x_0..x_L", (L + 1) * align64(4 * N * D), "(L+1)·N·D·4"});
  const int64_t layer = layer_saved_bytes(c, B, T);
  if (recompute) {
    items.push_back({"one layer's saved tensors (rebuilt in its backward)", layer, "training-spec §5 list, one layer"});
  } else {
    items.push_back({"saved tensors of all " + std::to_string(L) + " layers", L * layer, "training-spec §5 list × L"});
  }
  Blocks fin;
  fin.f32(N);
  fin.f32(N * D);
  items.push_back({"final norm (r, ĥ)", fin.bytes, "N·(1 + D)·4"});
  items.push_back({"logits and their gradient", 2 * align64(4 * N * V), "2·N·V·4"});
  Blocks tmp;
  tmp.f32(N * big);
  tmp.f32(N * D);
  items.push_back({"forward temporaries", tmp.bytes, "N·(max(D, H·d, F) + D)·4"});
  Blocks bw;
  for (int i = 0; i < 3; ++i) bw.f32(N * D);
  for (int i = 0; i < 2; ++i) bw.f32(N * Hd);
  for (int i = 0; i < 3; ++i) bw.f32(N * F);
  bw.f32(N * Hd);
  bw.f32(N * Kd);
  bw.f32(N * Kd);
  bw.f32(N * Hd);
  bw.f32(N * Kd);
  bw.f32(N * big);
  items.push_back({"backward scratch", bw.bytes, "N·(3D + 4·H·d + 3·K·d + 3F + max(D, H·d, F))·4"});
  return items;
}

int64_t training_activation_bytes(const TritterConfig& c, int64_t B, int64_t T, bool recompute) {
  return total_bytes(training_activation_breakdown(c, B, T, recompute));
}

std::vector<MemoryItem> lora_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute,
                                                  int64_t rank, const std::vector<std::string>& targets) {
  std::vector<MemoryItem> items = training_activation_breakdown(c, B, T, recompute);
  require_positive("lora activations", "rank", rank);
  const int64_t N = B * T;
  auto has = [&](const char* k) { return std::find(targets.begin(), targets.end(), k) != targets.end(); };
  int64_t per_layer = 0;  // fp32 values per token
  bool reads[kProjInputCount] = {};  // each distinct input a target reads is kept once, un-quantized
  for (Proj p : kProjs)
    if (has(proj_name(p))) reads[static_cast<int>(proj_input(p))] = true;
  const int64_t width[kProjInputCount] = {c.hidden_size, c.q_dim(), c.hidden_size, c.intermediate_size};
  for (int j = 0; j < kProjInputCount; ++j)
    if (reads[j]) per_layer += width[j];
  per_layer += rank * static_cast<int64_t>(targets.size());  // x·Aᵀ per target
  const int64_t layers = recompute ? 1 : c.num_hidden_layers;
  items.push_back({"LoRA inputs (fp32) and x·Aᵀ", layers * N * per_layer * 4,
                   "layers kept · N · (fp inputs of the targets + r per target) · 4"});
  return items;
}

int64_t inference_activation_bytes(const TritterConfig& c, int64_t context, int64_t chunk) {
  require_positive("inference activations", "context", context);
  require_positive("inference activations", "chunk", chunk);
  const int64_t D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t rope = context * c.head_dim * 4;  // cos, sin (context, d/2) fp32
  const int64_t scratch = chunk * (2 * D + 2 * Hd + 2 * Kd + 2 * F + 1) * 4 + chunk * std::max({D, Hd, F});
  return rope + scratch + c.vocab_size * 4;
}

// ---- LoRA -----------------------------------------------------------------------------------------------------

int64_t lora_param_count(const TritterConfig& c, int64_t rank, const std::vector<std::string>& targets) {
  require_positive("lora", "rank", rank);
  for (const auto& target : targets) {
    if (!proj_from_name(target)) {
      throw_error("lora: target '", target, "' is not a BitLinear; expected ", kProjNameList);
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
  if (!c.quant) throw_error("plan: quant=false models have no packed form to infer with");
  std::vector<MemoryItem> items;
  const int64_t L = c.num_hidden_layers;
  const int64_t all = weight_bytes(c, WeightStorage::Packed, o.head_i8);
  int64_t layers = 0;
  for (int i = 0; i < L; ++i) layers += layer_packed_bytes(c, i);
  if (o.stream_group > 0 && 2 * o.stream_group < L) {
    int64_t resident = 0;
    for (int i = 0; i < 2 * o.stream_group; ++i) resident += layer_packed_bytes(c, i);
    items.push_back({"streamed layers resident (2 groups of " + str(o.stream_group) + ")", resident,
                     "active + prefetched group; the other layers wait in host memory"});
  } else {
    items.push_back({"layers (ternary tiles + β, fp32 gains)", layers, "T16 tiles + 4 B per BitLinear, 4 B per gain"});
  }
  items.push_back({std::string("embedding, final norm, lm_head (") + (o.head_i8 ? "int8 head" : "fp32") + ")",
                   all - layers, "4 B per value; int8 head: V·D + 4·V"});
  items.push_back({std::string("KV cache (") + kv_storage_name(o.kv) + ", " + str(o.context) + " positions)",
                   kv_cache_plan_bytes(c, o.kv, o.batch, o.context, o.prefill_chunk), "infer/kv_cache.h layout"});
  items.push_back({"engine buffers (RoPE tables, chunk of " + str(o.prefill_chunk) + ", logits)",
                   o.batch * inference_activation_bytes(c, o.context, o.prefill_chunk), "infer/engine.cpp buffers"});
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
    if (c.quant) {
      // Mirrors train/model.cpp (tests/model/specs_test.cpp checks it against TrainModel's accounting): the
      // step's ternary weights as 64-aligned 2-bit tiles, their int8 levels, and W̃ in fp32 for the sgemm dx.
      int64_t tiles = 0, levels = 0;
      for (const auto& t : tensor_table(c)) {
        if (t.role != TensorRole::BitLinear) continue;
        tiles += align64(static_cast<int64_t>(ternary_matrix_bytes(t.shape[0], t.shape[1])));
        levels += t.numel();
      }
      items.push_back({"ternary weights of the step (2-bit tiles + int8 levels)", tiles + levels,
                       "Σ tiles, 64-aligned, + 1 byte per BitLinear weight"});
      items.push_back({"dequantized BitLinear weights W̃ for dx (fp32)", 4 * levels,
                       "4 bytes per BitLinear weight (train --dx-kernel drops it)"});
    }
    items.push_back({act_name, training_activation_bytes(c, o.batch, o.context, o.recompute), "docs/memory.md"});
    return items;
  }
  const int64_t adapters = lora_param_count(c, o.lora_rank, o.lora_targets);
  int64_t frozen_fp = 0, base = 0;
  for (const auto& t : tensor_table(c)) {
    if (is_ternary(c, t)) base += packed_linear_bytes(t);
    else frozen_fp += 4 * t.numel();
  }
  items.push_back({"ternary base, frozen (2-bit tiles + β)", base, "T16 tiles + 4 B per BitLinear"});
  items.push_back({"embedding + lm_head + gains, frozen (fp32)", frozen_fp, "4 bytes each"});
  items.push_back({"LoRA r=" + str(o.lora_rank) + " " + targets_name(o.lora_targets) + ": weights, grads, m, v (fp32)",
                   16 * adapters, "16 bytes × " + str(adapters) + " adapter parameters"});
  items.push_back({act_name,
                   total_bytes(lora_activation_breakdown(c, o.batch, o.context, o.recompute, o.lora_rank, o.lora_targets)),
                   "docs/memory.md"});
  return items;
}

}  // namespace tritter
