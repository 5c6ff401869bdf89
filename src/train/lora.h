// LoRA / QLoRA on the frozen ternary base (training-spec §9, issue 6). The base is the inference engine's packed
// model (model/packed_model.h: 2-bit T16 tiles + σ per BitLinear, fp32 gains/embedding/head), read-only: no fp32
// latent copy, no gradient and no optimizer state for it. Only the adapters A (r, I) and B (O, r) of the targeted
// BitLinears are parameters, in one flat fp32 buffer with gradients beside it (AdamW from train/optim.h runs on it).
//
//   fwd:  y  = x̃ W̃ᵀ + (α/r)·(x Aᵀ) Bᵀ         x̃ = int8 per-token quantized x (the base's BitLinear, §4.2)
//   bwd:  dB += (α/r)·dyᵀ (x Aᵀ) ;  dA += (α/r)·(dy B)ᵀ x ;  dx = dy W̃ + (α/r)·(dy B) A
//
// Choice (documented in docs/lora.md): the LoRA branch reads the normalized, UN-quantized input x (fp32), as the
// issue asks: the adapter learns in full precision and its gradient is not blurred by the int8 rounding of x. The
// cost is one saved fp32 copy of each distinct targeted input (a for q/k/v, o, m for gate/up, s for down).
// Dropout (PEFT semantics: on the adapter's input, inverted scaling) draws one mask per distinct input per step,
// shared by the modules that read it (q, k and v share a mask; PEFT draws one per module).
// Non-goals: recompute (activation checkpointing), data parallelism, training norms/embeddings (PEFT's
// modules_to_save), rsLoRA.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"
#include "model/block.h"

namespace tritter::train {

struct LoraConfig {
  int64_t rank = 16;
  double alpha = 16.0;   // scaling α/r
  double dropout = 0.0;  // [0, 1)
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};  // BitLinear kinds (name suffixes)
  // "kaiming": A ~ U(±1/√I) — PEFT's kaiming_uniform_(a=√5) on A (r, I), fan_in = I (NOT the original's U(±1/√r),
  // whose fan_in was r because it stored A transposed). "gaussian": A ~ N(0, 1/r). B = 0 either way.
  std::string init = "kaiming";

  float scale() const { return static_cast<float>(alpha / static_cast<double>(rank)); }
  bool targets_kind(const std::string& kind) const;
  // Error naming the field: rank ≥ 1, alpha > 0 and finite, dropout in [0, 1), targets known and not empty, init.
  void validate() const;
};
// "q_proj,k_proj" → {"q_proj", "k_proj"}; also accepts "all" (every BitLinear kind) and "attn" (q, k, v, o).
std::vector<std::string> parse_lora_targets(const std::string& list);

// One adapter pair per targeted BitLinear of the base.
struct LoraTensor {
  std::string base_name;  // "model.layers.3.self_attn.q_proj.weight"
  std::string kind;       // "q_proj"
  int layer = 0;
  int64_t O = 0, I = 0;
  int64_t a_offset = 0;   // A (r, I) in the flat adapter buffer
  int64_t b_offset = 0;   // B (O, r), right after A
};
// In tensor-table order (layer by layer, q k v o gate up down), only the kinds the config targets.
std::vector<LoraTensor> lora_table(const TritterConfig& config, const LoraConfig& lora);
int64_t lora_num_params(const std::vector<LoraTensor>& table, int64_t rank);
// PEFT's tensor name: "base_model.model." + base name without ".weight" + ".lora_A.weight" (which = 'A' or 'B').
std::string peft_tensor_name(const std::string& base_name, char which);
// The adapters as TensorInfo (PEFT names, 2-D shapes, offsets): AdamW's weight-decay table and the file writer's.
std::vector<TensorInfo> lora_tensor_infos(const std::vector<LoraTensor>& table, int64_t rank);
// A per cfg.init, B = 0 (deterministic in seed).
void lora_init(std::span<float> params, const std::vector<LoraTensor>& table, const LoraConfig& cfg, uint64_t seed);

// The trainable model: frozen packed base + adapters. Forward/backward are training-spec §5–7 composed from
// train/ops.h with the base BitLinear through kernels' ternary_matmul (forward) and ternary_matmul_t (dx).
class LoraModel {
 public:
  // `base` must outlive the model and be quant=true (packed). An int8 LM head is dequantized once into fp32
  // (the backward needs dz·W_head).
  LoraModel(const ModelWeights& base, const LoraConfig& lora, Context& ctx);
  ~LoraModel();

  const TritterConfig& config() const { return base_.config; }
  const LoraConfig& lora() const { return lora_; }
  const std::vector<LoraTensor>& adapters() const { return table_; }
  const std::vector<TensorInfo>& infos() const { return infos_; }
  int64_t num_params() const { return num_params_; }
  std::span<float> params() { return params_.as<float>(); }
  std::span<const float> params() const { return params_.as<float>(); }
  std::span<float> grads() { return grads_.as<float>(); }
  std::span<const float> grads() const { return grads_.as<float>(); }
  void init_adapters(uint64_t seed) { lora_init(params(), table_, lora_, seed); }
  void zero_grad();

  // Sizes the activation arena for (B, T) (lora_activation_bytes). Throws on T > max positions. recompute: keep
  // one layer's saved set; backward re-runs each layer's forward from its kept input (the residual streams are
  // kept anyway) with the dropout generator rewound, so gradients are bitwise those without recompute.
  void reserve(int64_t B, int64_t T, bool recompute = false);
  // inputs, targets (B, T) i32 (targets may be null: logits only). `train` enables dropout. Returns the mean loss
  // and prepares dz scaled by grad_scale for backward().
  double forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale = 1.0f,
                 bool train = true);
  // Accumulates into grads() the adapter gradient of grad_scale · loss of the last forward (train=true).
  void backward();
  const float* logits() const { return logits_; }  // (B, T, V)
  int64_t arena_bytes() const { return arena_.bytes(); }
  void set_dropout_seed(uint64_t seed) { drop_rng_ = Rng(seed); }
  struct Views;  // the arena carve (opaque; lora.cpp)
  class Hook;    // the adapters as model/block's LoraHook

 private:
  BlockRun block_run(int layer) const;
  void layer_forward(int i, float* x_out, bool train);
  void layer_backward(int i, float* dres);

  const ModelWeights& base_;
  LoraConfig lora_;
  Context& ctx_;
  std::vector<LoraTensor> table_;
  std::vector<TensorInfo> infos_;
  int64_t num_params_ = 0;
  Buffer params_, grads_, head_f32_;
  const float* head_ = nullptr;  // (V, D)
  // Per layer, per kind (q k v o gate up down): index into table_ or -1.
  std::vector<std::array<int, 7>> slot_;
  std::vector<BlockWeights> weights_;  // the base's layers as the block reads them
  Buffer arena_, attn_scratch_, rope_;
  int64_t B_ = 0, T_ = 0;
  float *rope_cos_ = nullptr, *rope_sin_ = nullptr;
  const float* logits_ = nullptr;
  bool recompute_ = false, last_train_ = false;
  std::vector<std::array<uint64_t, 4>> layer_rng_;  // dropout generator state at each layer's forward
  std::vector<int32_t> ids_;
  Rng drop_rng_{0x10a};
  std::unique_ptr<Views> v_;
  std::unique_ptr<Hook> hook_;
  AttnShape attn_;
  bool have_backward_state_ = false;
};

// Bytes of LoraModel's activation arena for (B, T): the same carve that allocates it. Not included: attention's
// per-thread scratch, the base, adapters/grads/moments.
int64_t lora_activation_bytes(const TritterConfig& config, const LoraConfig& lora, int64_t B, int64_t T,
                              bool recompute = false);

}  // namespace tritter::train
