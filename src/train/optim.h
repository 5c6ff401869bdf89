// AdamW with PyTorch semantics, global-norm clipping and the learning-rate / weight-decay schedules of
// training-spec §8. The moments are two flat fp32 buffers mirroring the parameter buffer (tensor-table order);
// weight decay applies to 2-D tensors only. Non-goals: other optimizers, per-tensor learning rates.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "model/tensor_table.h"

namespace tritter::train {

struct AdamWParams {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  // Weight decay on the embedding table. A cosine head reads E's rows normalized, so decay would only shrink row
  // norms (raising the step size of their directions) without regularizing what the model computes: the trainer
  // turns it off for head_type cosine_tied. Not written to checkpoints: it follows from the config.
  bool decay_embedding = true;
};

class AdamW {
 public:
  // The moments cover parameters [shard_lo, shard_hi) (shard_hi = -1: num_params): ZeRO-1 gives each rank of a
  // data-parallel run its shard (docs/distributed.md); a single process holds them all.
  AdamW(int64_t num_params, Context& ctx, AdamWParams hp = {}, int64_t shard_lo = 0, int64_t shard_hi = -1);
  // One update with step t = ++steps(): p ← p(1 − lr·wd) on 2-D tensors; m, v moments; p ← p − lr·m̂/(√v̂ + ε),
  // computed as torch.optim.AdamW does: denom = √v/√(1−β2ᵗ) + ε, p −= (lr/(1−β1ᵗ))·m/denom. params and grads
  // are the whole flat vectors; only the shard's elements are read and updated (elementwise, so a sharded update
  // has the bits of the whole one).
  void step(std::span<float> params, std::span<const float> grads, const std::vector<TensorInfo>& table, double lr,
            double wd);
  int64_t shard_lo() const { return lo_; }
  int64_t shard_hi() const { return hi_; }
  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }
  std::span<float> m() { return m_.as<float>(); }
  std::span<float> v() { return v_.as<float>(); }
  std::span<const float> m() const { return m_.as<float>(); }
  std::span<const float> v() const { return v_.as<float>(); }
  const AdamWParams& hyper() const { return hp_; }

 private:
  Context& ctx_;
  AdamWParams hp_;
  int64_t lo_ = 0, hi_ = 0;
  Buffer m_, v_;  // (shard_hi − shard_lo) each
  int64_t t_ = 0;
};

// √Σ g² accumulated in double (fixed order: deterministic). NaN/Inf propagate.
double grad_global_norm(std::span<const float> grads);
// start + Σ g² in double, in order: grad_global_norm is √grad_sum_squares(g, 0); a sharded run continues the
// running sum rank after rank (Communicator::chain) and gets the same bits.
double grad_sum_squares(std::span<const float> grads, double start);
// The clip of clip_grad_norm for a norm computed elsewhere (over all ranks' shards).
void clip_grads_to(std::span<float> grads, double norm, double clip);
// torch clip_grad_norm_: with n = grad_global_norm, if clip/(n + 1e-6) < 1 then g ← g·clip/(n + 1e-6).
// Returns n (before clipping). clip ≤ 0 disables clipping.
double clip_grad_norm(std::span<float> grads, double clip);

// Learning rate and weight decay per optimizer step (§8). Steps count from 0; warmup is linear from lr/warmup.
//   bitnet   : warmup, stage 1 (first stage1_frac of steps) cosine peak → peak·stage1_end_ratio with wd;
//              stage 2 cosine peak·stage2_ratio → 0 with wd = 0 (the BitNet b1.58 two-stage recipe).
//   cosine   : warmup, cosine peak → peak·min_ratio, constant wd (the FP baseline).
//   wsd      : warmup, constant peak, the last decay_frac of steps linear → peak·min_ratio, constant wd.
//   constant : warmup, then peak.
struct Schedule {
  std::string kind = "bitnet";
  int64_t total_steps = 1;
  int64_t warmup = -1;  // -1: max(100, 1 % of steps), at most 10 % of steps
  double peak_lr = 1.5e-3;
  double wd = 0.1;
  double min_ratio = 0.1;
  double stage1_frac = 0.5, stage1_end_ratio = 8.0 / 15.0, stage2_ratio = 1.0 / 3.0;  // 1.5e-3→8e-4, 5e-4→0
  double decay_frac = 0.2;

  void validate() const;  // Error naming the field on a bad kind or value
  int64_t warmup_steps() const;
  double lr(int64_t step) const;
  double weight_decay(int64_t step) const;
};

}  // namespace tritter::train
