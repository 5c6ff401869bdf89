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
// The configuration, adapter table and init are model/lora.h (shared with inference and merging).
// Non-goals: data parallelism, training norms/embeddings (PEFT's modules_to_save), rsLoRA.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "model/lora.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"
#include "model/block.h"

namespace tritter::train {

// The trainable model: frozen packed base + adapters. The layers are model/block's, the adapters its LoraHook;
// the base BitLinear runs through kernels' ternary_matmul (forward) and ternary_matmul_t (dx).
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
  std::vector<std::array<int, kProjCount>> slot_;
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
