// Model specs and the memory planner: how many parameters a config has, what its weights, KV cache, activations
// and training state take, and the original project's formulas beside Tritter's own (original.md §3.2–3.4).
// Every Tritter figure comes from the tensor table (one size function, DESIGN.md principle 4); the original's
// formulas are kept, exactly, only to reproduce and compare its published numbers. docs/specs.md and
// docs/memory.md give every formula and unit. Non-goals: allocation itself, hardware budgets (model/hardware).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace tritter {

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kMiB = 1024.0 * 1024.0;

// ---- The original's formulas (original.md §3.2, §3.4), over the config's fields, reproduced exactly ----------

// P = V·D + L·[2D² + 2D·K·d + 3D·F + 4D] + 2D + D·V (no biases, scales or QK-Norm; always 3 MLP matrices).
int64_t original_param_count(const TritterConfig& c);
// int(P·0.25 + (P/4096)·4): 2 bits per parameter, embedding included, plus "one fp32 scale per 4096 params".
int64_t original_packed_bytes(const TritterConfig& c);
// L · int(2·B·seq·K·d·bytes_per_value): no scales or zero points (int4 = 0.5 bytes).
int64_t original_kv_bytes(const TritterConfig& c, int64_t batch, int64_t seq, double bytes_per_value);
// estimate_lora_memory's count: L·[n_attn·2·D·r + MLP terms], with K/V outputs taken as D wide (GQA ignored).
int64_t original_lora_params(const TritterConfig& c, int64_t rank, bool attention_only = true);

// One line of rtx5080_feasibility (§3.4), in GiB. `context` is 2048, or 512 after the fallback.
struct OriginalFeasibility {
  double gib = 0;
  int64_t context = 0;
  bool fits = false;  // 15.5 − gib ≥ 0
};
OriginalFeasibility original_full_training(const TritterConfig& c);
OriginalFeasibility original_qlora(const TritterConfig& c, int64_t rank);
// The `hardware_profile.py --check` KV line: packed·8 (bogus; the real INT4 128K figure is original_kv_bytes).
double original_check_kv128k_gib(const TritterConfig& c);

// ---- Tritter's own counts, from the tensor table -------------------------------------------------------------

// Parameters grouped by the table's `kind` ("q_proj", "input_layernorm", "embed_tokens", ...), in table order.
struct ComponentParams {
  std::string kind;
  std::string group;     // "embedding", "attention", "mlp", "norm", "lm_head"
  int64_t per_layer = 0; // numel in one layer (0 for embedding, final norm and head)
  int64_t total = 0;     // numel over the model
};
std::vector<ComponentParams> component_params(const TritterConfig& c);

// Σ numel of the BitLinear tensors (the ternary part) and of everything else (embedding, head, gains).
int64_t ternary_param_count(const TritterConfig& c);
int64_t fp_param_count(const TritterConfig& c);

// Weight bytes. F32/F16: every tensor at 4/2 bytes. Packed: BitLinear weights at 2 bits (⌈n/4⌉ bytes) plus one
// fp32 β per tensor (the export's weight_scale); embedding and head at `fp_bytes` each (2 = fp16 by default);
// gains fp32. AllPacked: the original's accounting on Tritter's table — every tensor at 2 bits, β per tensor.
enum class WeightStorage { F32, F16, Packed, AllPacked };
int64_t weight_bytes(const TritterConfig& c, WeightStorage storage, int fp_bytes = 2);
// One layer's packed bytes (BitLinears 2-bit + β, gains fp32): what layer streaming moves per layer.
int64_t layer_packed_bytes(const TritterConfig& c, int layer);

// ---- KV cache -------------------------------------------------------------------------------------------------
// K and V, per layer, per token, per kv head: d values. F32/F16: 4/2 bytes each. Int8: symmetric, one fp32 scale
// per (token, kv head) — d+4 bytes per d values. Int4: asymmetric, groups of 32 along d, fp16 scale + fp16
// zero point per group — d/2 + 4·d/32 bytes per d values (KIVI-style groups; the original counted no scales).
enum class KvDtype { F32, F16, Int8, Int4 };
KvDtype kv_dtype_from_name(const std::string& name);  // "f32", "f16"/"fp16", "int8", "int4"; throws listing them
const char* kv_dtype_name(KvDtype dtype);
inline constexpr int64_t kKvInt4Group = 32;
inline constexpr int64_t kAttnTile = 256;  // keys per flash-attention score tile (inference working set)
// Bytes for d values of one (token, kv head), scales included.
int64_t kv_bytes_per_head_token(const TritterConfig& c, KvDtype dtype);
// Whole cache for `batch` sequences of `tokens` positions; a sliding window caps the positions kept.
int64_t kv_cache_bytes(const TritterConfig& c, KvDtype dtype, int64_t batch, int64_t tokens);

// ---- Activations ----------------------------------------------------------------------------------------------

// One named term of an activation estimate.
struct MemoryItem {
  std::string name;
  int64_t bytes = 0;
  std::string note;  // the formula or assumption, for `--verbose` and docs
};
int64_t total_bytes(const std::vector<MemoryItem>& items);

// What the training backward keeps for (B, T), per training-spec §5/§6: fp32 tensors, int8 + one fp32 scale per
// token for each BitLinear input. recompute = activation checkpointing per layer: only each layer's input is kept,
// one layer's set is rebuilt during its backward. Flash-style attention: the per-row logsumexp, not P (T²).
std::vector<MemoryItem> training_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute);
int64_t training_activation_bytes(const TritterConfig& c, int64_t B, int64_t T, bool recompute);
// The same for LoRA on a frozen base: no int8 inputs for dW, but the fp input and x·Aᵀ (r) of every LoRA target.
std::vector<MemoryItem> lora_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute,
                                                  int64_t rank, const std::vector<std::string>& targets);
// Inference working set of one layer for a prefill chunk of `chunk` tokens per sequence (fp32 tensors, int8
// BitLinear inputs, flash-style score tiles of kAttnTile keys per head), plus the logits of each sequence's last token.
int64_t inference_activation_bytes(const TritterConfig& c, int64_t batch, int64_t chunk);
// The original's informational "12·D·2 bytes per token".
inline int64_t original_activation_bytes_per_token(const TritterConfig& c) { return 12 * c.hidden_size * 2; }

// ---- LoRA -----------------------------------------------------------------------------------------------------
inline const std::vector<std::string>& default_lora_targets() {
  static const std::vector<std::string> kTargets = {"q_proj", "k_proj", "v_proj", "o_proj"};
  return kTargets;
}
// Σ r·(I + O) over the BitLinear tensors whose kind is a target (GQA-correct: k/v have K·d outputs).
int64_t lora_param_count(const TritterConfig& c, int64_t rank, const std::vector<std::string>& targets);

// ---- The planner ----------------------------------------------------------------------------------------------
enum class PlanMode { Infer, Qlora, Train };
PlanMode plan_mode_from_name(const std::string& name);  // "infer", "qlora", "train"; throws listing them
const char* plan_mode_name(PlanMode mode);

struct PlanOptions {
  PlanMode mode = PlanMode::Infer;
  int64_t context = 32768;   // infer: cached positions; training modes: sequence length T
  int64_t batch = 1;
  KvDtype kv = KvDtype::F16; // infer only
  int64_t lora_rank = 16;
  std::vector<std::string> lora_targets = default_lora_targets();
  bool recompute = true;     // training modes: activation checkpointing
  int64_t stream_group = 0;  // infer: 0 = all layers resident, g > 0 = layer streaming, 2 groups of g resident
  int64_t prefill_chunk = 512;
  int infer_fp_bytes = 2;    // infer: bytes per embedding/head element (fp16)
};

// The memory a run needs, term by term. Infer: packed weights (or the resident groups and the always-resident
// embedding/head/norm when streaming), KV cache, working set. Train: fp32 weights, grads, AdamW m and v, the int8
// ternary weights of the step, activations. Qlora (LoRA on the frozen ternary base, training-spec §9): the base
// packed at 2 bits, frozen fp32 embedding/head/gains, adapters (weights, grads, m, v in fp32), activations.
std::vector<MemoryItem> plan_memory(const TritterConfig& c, const PlanOptions& options);

}  // namespace tritter
