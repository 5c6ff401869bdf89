// Data parallelism over the batch for the CPU trainer: W = min(threads, B) workers, each a single-threaded
// TrainModel on its share of the B sequences (worker 0 owns the parameters, the others are replicas reading them),
// one OpenMP region per forward+backward instead of one per op, then the replicas' gradients are summed into the
// primary's. Why: on a 2-core machine the per-op regions (hundreds per step, OpenBLAS's included) spend their
// time in barriers as soon as another process competes for a core; one region per step does not.
// The loss and gradients are those of the whole batch: each shard's mean CE is weighted by its share of the valid
// targets (sums in another order, so equal up to fp32 rounding; exactly the single-model result when W = 1).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/context.h"
#include "model/config.h"
#include "train/model.h"

namespace tritter::train {

class ParallelTrainModel {
 public:
  // workers = 0: ctx.threads. With one worker the model runs on ctx itself (per-op threading).
  ParallelTrainModel(const TritterConfig& config, Context& ctx, int workers = 0);

  TrainModel& primary() { return *models_.front(); }
  int workers() const { return static_cast<int>(models_.size()); }
  // Sizes every worker's arena for its share of B.
  void reserve(int64_t B, int64_t T, bool recompute);
  // inputs, targets (B, T). Mean loss of the batch; with backward, adds grad_scale · ∂loss/∂θ into
  // primary().grads() (the caller zeroes them once per optimizer step).
  double step(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale, bool backward);
  // The cosine head's auxiliary weight β on every worker (TrainModel::set_embed_pred_beta).
  void set_embed_pred_beta(double beta) {
    for (auto& m : models_) m->set_embed_pred_beta(beta);
  }
  // The attention mask of every worker (TrainModel::set_mask; one prefix length for all sequences).
  void set_mask(const AttnMask& mask) {
    for (auto& m : models_) m->set_mask(mask);
  }
  // Accounted peak bytes of every worker's context together.
  int64_t accounted_peak() const;
  OpTimes op_times_sum();

 private:
  Context& ctx_;
  std::vector<std::unique_ptr<Context>> contexts_;  // per worker (threads = 1) when W > 1
  std::vector<std::unique_ptr<TrainModel>> models_;
  std::vector<int64_t> rows_;  // sequences per worker
  bool recompute_ = false;
  int64_t B_ = 0, T_ = 0;
};

}  // namespace tritter::train
