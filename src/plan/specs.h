// Model specs and the memory planner: how many parameters a config has, what its weights, KV cache, activations
// and training state take, and the original project's formulas beside Tritter's own (original.md §3.2–3.4).
// Every Tritter figure is the allocator's own size function (DESIGN.md principle 4): the packed file's plan
// (model/packed_model.h), kv_cache_bytes, the engine's, trainer's and LoRA model's buffers, the attention scratch;
// this layer sits above train/ and infer/ so that it can call them. The original's formulas are kept, exactly,
// only to reproduce and compare its published numbers. docs/specs.md and docs/memory.md give every formula and
// unit. Non-goals: allocation itself, hardware budgets (plan/hardware.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/hardware_profile.h"
#include "infer/kv_cache.h"
#include "kernels/head.h"
#include "model/config.h"

namespace tritter {

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

// Weight bytes. F32/F16: every tensor at 4/2 bytes. Packed: the packed inference file (packed_model_bytes of
// model/packed_model.h) — each BitLinear as T16 tiles (2 bits per weight, padded to 16×16) + its fp32 β, every
// other tensor fp32; with an int8 head (V·D bytes + V fp32 row scales) or a 4-bit one (kernels/head.h) in place of
// the fp32 one (and added beside a tied embedding); a quant=false config has no packed form and counts fp32.
// AllPacked: the original's accounting on Tritter's table — every tensor 2-bit.
enum class WeightStorage { F32, F16, Packed, AllPacked };
int64_t weight_bytes(const TritterConfig& c, WeightStorage storage, HeadFormat head = HeadFormat::F32);
// One layer's packed bytes (BitLinear tiles + β, gains fp32; packed_layer_bytes of model/packed_model.h).
int64_t layer_packed_bytes(const TritterConfig& c, int layer);

// ---- Memory items -------------------------------------------------------------------------------------------

// One named term of a plan.
struct MemoryItem {
  std::string name;
  int64_t bytes = 0;
  std::string note;  // the formula or the function that sizes it, for `--json` and docs
};
int64_t total_bytes(const std::vector<MemoryItem>& items);

// Beside a training step's activation arena (train::train_activation_bytes, train::lora_activation_bytes):
// attention's scratch (train::attention_scratch_floats, 2·64·T floats per worker) and the RoPE tables (T, d/2)
// fp32 cos and sin, as TrainModel and LoraModel allocate them in reserve().
int64_t training_scratch_bytes(const TritterConfig& c, int64_t B, int64_t T, int threads);

// The original's informational "12·D·2 bytes per token".
inline int64_t original_activation_bytes_per_token(const TritterConfig& c) { return 12 * c.hidden_size * 2; }

// ---- LoRA -----------------------------------------------------------------------------------------------------
inline const std::vector<std::string>& default_lora_targets() {
  static const std::vector<std::string> kTargets = {"q_proj", "k_proj", "v_proj", "o_proj"};
  return kTargets;
}
// Σ r·(I + O) over the BitLinear tensors whose kind is a target (GQA-correct: k/v have K·d outputs):
// lora_num_params of lora_table. Throws on rank < 1 or a target that is not a BitLinear.
int64_t lora_param_count(const TritterConfig& c, int64_t rank, const std::vector<std::string>& targets);

// ---- The planner ----------------------------------------------------------------------------------------------
enum class PlanMode { Infer, Qlora, Train };
PlanMode plan_mode_from_name(const std::string& name);  // "infer", "qlora", "train"; throws listing them
const char* plan_mode_name(PlanMode mode);

struct PlanOptions {
  PlanMode mode = PlanMode::Infer;
  int64_t context = 32768;   // infer: cached positions; training modes: sequence length T
  int64_t batch = 1;
  KvDtype kv = KvDtype::F16;  // infer only
  int64_t lora_rank = 16;
  std::vector<std::string> lora_targets = default_lora_targets();
  bool recompute = true;     // training modes: activation checkpointing
  int64_t stream_group = 0;  // infer: 0 = all layers resident, g > 0 (2g < L) = layer streaming in groups of g
  int64_t prefill_chunk = 64;  // infer: tokens per forward chunk (the engine's max_batch)
  HeadFormat head = HeadFormat::F32;  // infer: the LM head as packed (f32, int8 or 4-bit: kernels/head.h)
  int threads = 1;             // training modes: workers of the attention scratch (one slice each)
  int ranks = 1;               // train: data-parallel ranks (batch = the global batch; rank 0's share is planned)
  bool zero1 = true;           // train with ranks > 1: AdamW moments sharded across the ranks (ZeRO-1)
};

// The memory a run needs, term by term, each from the allocator's size function. Infer: the packed file's tensors
// (packed_model_bytes), the KV cache (kv_cache_bytes) and the engine's buffers (engine_buffer_bytes) per sequence;
// streaming: plan_streaming's buffers instead of the weights (the slots for two groups, the resident final norm and
// head input; the embedding is read a row per token from the file). Throws on a context beyond
// max_position_embeddings. Train: fp32 weights, grads, AdamW m and v, the step's ternary weights (2-bit tiles,
// int8 levels and fp32 W̃, as TrainModel allocates them), attention scratch and RoPE tables, the activation arena
// (train::train_activation_bytes). Qlora (LoRA on the frozen ternary base, training-spec §9): the packed base,
// adapters (weights, grads, m, v in fp32), attention scratch and RoPE, the arena (train::lora_activation_bytes).
std::vector<MemoryItem> plan_memory(const TritterConfig& c, const PlanOptions& options);

}  // namespace tritter
