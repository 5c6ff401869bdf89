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

// Weight bytes. F32/F16: every tensor at 4/2 bytes. Packed: the packed inference file of model/packed_model.h —
// each BitLinear as T16 tiles (ternary_matrix_bytes, 2 bits per weight, padded to 16×16) + its fp32 β, every
// other tensor fp32; with head_i8 an int8 LM head (V·D bytes + V fp32 row scales) replaces the fp32 one (and is
// added beside a tied embedding). AllPacked: the original's accounting on Tritter's table — every tensor 2-bit.
enum class WeightStorage { F32, F16, Packed, AllPacked };
int64_t weight_bytes(const TritterConfig& c, WeightStorage storage, bool head_i8 = false);
// One layer's packed bytes (BitLinear tiles + β, gains fp32): what layer streaming moves per layer.
int64_t layer_packed_bytes(const TritterConfig& c, int layer);

// ---- KV cache -------------------------------------------------------------------------------------------------
// The layout of infer/kv_cache.h (KIVI), mirrored here because model/ cannot include infer/ (tests/model compare
// the two): per (layer, kv head) K and V data of C positions (f32 4d, f16 2d, int8 d, int4 d/2 bytes each), and
// for int8/int4 fp32 (min, scale) per channel per 32-token key group, per 32-channel value group per token, plus
// a 32-token fp32 key residual; every block 64-byte aligned. C = the context (or, with a sliding window W,
// W + chunk − 1), rounded up to 32 for int8/int4. The original counted data only (original_kv_bytes).
enum class KvStorage { F32, F16, Int8, Int4 };
KvStorage kv_storage_from_name(const std::string& name);  // "f32", "f16", "int8", "int4"; throws listing them
const char* kv_storage_name(KvStorage kv);
// Bytes of the cache for `sequences` sequences of `context` positions written `chunk` positions at a time.
// Throws when context exceeds max_position_embeddings.
int64_t kv_cache_plan_bytes(const TritterConfig& c, KvStorage kv, int64_t sequences, int64_t context,
                            int64_t chunk = 64);

// ---- Activations ----------------------------------------------------------------------------------------------

// One named term of an activation estimate.
struct MemoryItem {
  std::string name;
  int64_t bytes = 0;
  std::string note;  // the formula or assumption, for `--verbose` and docs
};
int64_t total_bytes(const std::vector<MemoryItem>& items);

// The training activation arena for a (B, T) step — training-spec §5's saved tensors (fp32; each BitLinear
// input as int8 levels + one fp32 scale per token), the L+1 residual streams, the final norm, logits and their
// gradient, forward temporaries and the backward's scratch; each block 64-byte aligned (Buffer alignment).
// recompute: only one layer's saved set (rebuilt during its backward). The term list is docs/memory.md; tests
// compare it with train/model.h's allocator. Not counted: attention's per-thread scratch (2·64·T floats each).
std::vector<MemoryItem> training_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute);
int64_t training_activation_bytes(const TritterConfig& c, int64_t B, int64_t T, bool recompute);
// LoRA on a frozen base: the same arena plus, per layer kept, the fp input and x·Aᵀ (r values) of every target
// (the LoRA branch sees the un-quantized input, training-spec §9). An estimate until train/ has LoRA.
std::vector<MemoryItem> lora_activation_breakdown(const TritterConfig& c, int64_t B, int64_t T, bool recompute,
                                                  int64_t rank, const std::vector<std::string>& targets);
// The inference engine's buffers (infer/engine.cpp): RoPE tables for `context` positions, the scratch of one
// chunk of `chunk` tokens, and one row of logits.
int64_t inference_activation_bytes(const TritterConfig& c, int64_t context, int64_t chunk);
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
  KvStorage kv = KvStorage::F16;  // infer only
  int64_t lora_rank = 16;
  std::vector<std::string> lora_targets = default_lora_targets();
  bool recompute = true;     // training modes: activation checkpointing
  int64_t stream_group = 0;  // infer: 0 = all layers resident, g > 0 = layer streaming, 2 groups of g resident
  int64_t prefill_chunk = 64;  // infer: tokens per forward chunk (the engine's max_batch)
  bool head_i8 = false;        // infer: an int8 LM head (HeadFormat::I8 of model/packed_model.h)
};

// The memory a run needs, term by term. Infer: the packed file's tensors (or, streaming, two groups of layers and
// the always-resident embedding/head/final norm), KV cache, the engine's buffers. Throws on a context beyond
// max_position_embeddings. Train: fp32 weights, grads, AdamW m and v, the step's ternary weights (2-bit tiles,
// int8 levels and fp32 W̃, as train/model.cpp allocates them), activations. Qlora (LoRA on the frozen ternary
// base, training-spec §9): the base packed at 2 bits, frozen fp32 embedding/head/gains, adapters (weights, grads, m, v in fp32), activations.
std::vector<MemoryItem> plan_memory(const TritterConfig& c, const PlanOptions& options);

}  // namespace tritter
