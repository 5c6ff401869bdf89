// The trainable model: one flat fp32 parameter buffer in checkpoint order (model/tensor_table), gradients
// mirroring it, BitLinear weights quantized once per optimizer step, and one activation arena sized once per (B, T)
// by train_activation_bytes. The layers are model/block's (the same layer inference runs).
// --recompute keeps only the layer inputs and re-runs each layer's forward inside the backward.
// Not here: the optimizer (train/optim.h), the loop and checkpoints (train/trainer.h).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "model/config.h"
#include "model/tensor_table.h"
#include "model/block.h"

namespace tritter::train {

// Bytes of the activation arena for a (B, T) step: the saved activations of every layer (or, with recompute, the
// L+1 layer inputs plus one layer's worth), the logits and their gradient, and the backward's scratch. The same
// function carves the arena, so it is exact. Not included: attention's per-thread scratch
// (attention_scratch_floats, 2·64·T floats per thread) and the parameter/gradient/optimizer buffers.
int64_t train_activation_bytes(const TritterConfig& config, int64_t B, int64_t T, bool recompute);

// The arena carved into views (train_activation_bytes walks the same carve with a null base).
struct ArenaViews {
  std::vector<BlockActs> acts;  // L sets, or 1 with recompute
  std::vector<float*> xs;       // L+1 residual streams x_0..x_L (N, D)
  float *r_final = nullptr, *hhat = nullptr, *logits = nullptr, *dz = nullptr;  // (N), (N, D), (N, V), (N, V)
  float *tmp_big = nullptr, *tmp_d = nullptr;  // forward temporaries (N, max(D, H·d, F)), (N, D)
  // Backward scratch: running residual gradient and per-shape temporaries.
  float *dres = nullptr, *d_d1 = nullptr, *d_d2 = nullptr, *d_hd1 = nullptr, *d_hd2 = nullptr;
  float *d_f1 = nullptr, *d_f2 = nullptr, *d_f3 = nullptr, *d_q = nullptr, *d_k = nullptr, *d_v = nullptr;
  float *d_q2 = nullptr, *d_k2 = nullptr, *xt = nullptr;  // xt (N, max(D, H·d, F)): x̃ and dx scratch
  // The cosine head only: ĥ (N, D) and 1/‖·‖ (N) of the final norm's output, the unit table Ê (V, D) and its
  // 1/‖E_v‖ (V), and the gradients of ĥ (N, D) and Ê (V, D).
  float *hunit = nullptr, *r_hunit = nullptr, *eunit = nullptr, *r_eunit = nullptr, *d_hunit = nullptr,
        *d_eunit = nullptr;
};

// targets (B, T) of next-token pairs: −100 wherever the predicted token lies inside its sequence's prefix
// (position t predicts t+1: ignored while t + 1 < P_b), so a prefix-LM is trained only on what follows the prefix.
void mask_prefix_targets(int32_t* targets, int64_t B, int64_t T, std::span<const int64_t> prefix);

class TrainModel {
 public:
  TrainModel(const TritterConfig& config, Context& ctx);
  // A data-parallel replica: reads `primary`'s parameters and quantized weights (which must not change while the
  // replica runs), owns its gradients and arena. params() of a replica is the primary's.
  TrainModel(TrainModel& primary, Context& ctx);

  const TritterConfig& config() const { return config_; }
  const std::vector<TensorInfo>& table() const { return table_; }
  int64_t num_params() const { return num_params_; }
  // Mutable access marks the quantized weight cache stale (it is rebuilt at the next forward).
  std::span<float> params() {
    if (primary_) return primary_->params();
    weights_stale_ = true;
    return params_.as<float>();
  }
  std::span<const float> params() const { return primary_ ? std::as_const(*primary_).params() : params_.as<float>(); }
  std::span<float> grads() { return grads_.as<float>(); }
  std::span<const float> grads() const { return grads_.as<float>(); }

  // §8 init through model/init (N(0, init_std), o/down scaled by 1/√(2L), gains 1).
  void init_weights(uint64_t seed);
  void zero_grad();

  // Sizes the arena once for (B, T); later calls with the same shape are free. Throws on T > max positions.
  void reserve(int64_t B, int64_t T, bool recompute);
  // inputs, targets (B, T) i32; targets may be null (logits only). Returns the mean loss (§4.7; 0 without
  // targets). Computes dz scaled by grad_scale (1/accumulation steps) for the following backward().
  double forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale = 1.0f);
  // Accumulates into grads() the gradient of grad_scale · loss of the last forward.
  void backward();
  const float* logits() const { return v_.logits; }  // (B, T, V) of the last forward
  // The cosine head (head_type cosine_tied): the auxiliary term's weight β for the following forwards (the trainer
  // sets it from embed_pred_weight at each step's progress; 0 until set). forward() returns the cross-entropy
  // alone (bits per byte stay comparable); the gradient is that of CE + β·aux. After a forward with targets:
  // the β-weighted auxiliary loss, the mean cos(h, E_y) over valid targets, and the scale s in use.
  void set_embed_pred_beta(double beta) { beta_ = beta; }
  // The attention mask of later forwards (default: causal with the config's window): bidirectional (each
  // sequence one document), or prefix_lm with one prefix length per sequence (`prefix`, B entries; an empty
  // vector uses mask.prefix for all). Loss only after the prefix is the targets' business: mask_prefix_targets.
  void set_mask(const AttnMask& mask, std::vector<int64_t> prefix = {});
  double embed_pred_loss() const { return aux_loss_; }
  double mean_target_cos() const { return mean_cos_; }
  float cos_scale() const;
  int64_t arena_bytes() const { return arena_.bytes(); }
  OpTimes& op_times() { return times_; }
  // dx of BitLinear (quant=true): true = kernels' ternary_matmul_t on the packed levels; false (default) = sgemm
  // with W̃ cached per optimizer step (one more fp32 copy of the BitLinear weights). Same maths (§4.2).
  void set_dx_kernel(bool kernel);
  // Quantizes the BitLinear weights if the parameters changed (forward() calls it; a data-parallel step calls it
  // on the primary before the replicas run).
  void prepare_weights();

 private:
  const float* pdata() const { return params().data(); }
  BlockRun block_run(int layer);
  BlockScratch block_scratch() const;

  TritterConfig config_;
  Context& ctx_;
  TrainModel* primary_ = nullptr;
  std::vector<TensorInfo> table_;
  int64_t num_params_ = 0;
  Buffer params_, grads_;
  // Per layer: gains into params_, projections (latent pointer, packed kernel layout in wcache_, σ, W̃).
  std::vector<BlockWeights> bits_;
  std::vector<BlockGrads> grad_views_;  // per layer, into grads_
  Buffer wcache_, wscratch_, wtilde_;
  bool weights_stale_ = true;

  // Arena state for the reserved (B, T).
  int64_t B_ = 0, T_ = 0;
  bool recompute_ = false;
  Buffer arena_, attn_scratch_, rope_;
  ArenaViews v_;
  float *rope_cos_ = nullptr, *rope_sin_ = nullptr;
  std::vector<int32_t> ids_;  // inputs of the last forward (embedding backward)
  AttnShape attn_;
  OpTimes times_;
  double beta_ = 0.0, aux_loss_ = 0.0, mean_cos_ = 0.0;
  std::optional<AttnMask> mask_;  // set_mask's; null = causal(config window)
  std::vector<int64_t> prefix_;
};

}  // namespace tritter::train
