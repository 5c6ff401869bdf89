// Data-parallel training step (see parallel.h).
#include "train/parallel.h"


#include <algorithm>
#include <exception>

#include "core/error.h"
#include "kernels/parallel.h"

namespace tritter::train {

ParallelTrainModel::ParallelTrainModel(const TritterConfig& config, Context& ctx, int workers) : ctx_(ctx) {
  const int w = std::max(1, workers > 0 ? workers : ctx.threads);
  if (w == 1) {
    models_.push_back(std::make_unique<TrainModel>(config, ctx));
    return;
  }
  for (int i = 0; i < w; ++i) {
    auto c = std::make_unique<Context>();
    c->threads = 1;
    c->kernels = ctx.kernels;
    c->log_level = ctx.log_level;
    contexts_.push_back(std::move(c));
  }
  models_.push_back(std::make_unique<TrainModel>(config, *contexts_[0]));
  for (int i = 1; i < w; ++i) models_.push_back(std::make_unique<TrainModel>(*models_[0], *contexts_[i]));
}

void ParallelTrainModel::reserve(int64_t B, int64_t T, bool recompute) {
  if (B == B_ && T == T_ && recompute == recompute_) return;
  const int64_t W = std::min<int64_t>(static_cast<int64_t>(models_.size()), B);
  rows_.assign(models_.size(), 0);
  for (int64_t i = 0; i < W; ++i) rows_[static_cast<size_t>(i)] = B / W + (i < B % W ? 1 : 0);
  for (size_t i = 0; i < models_.size(); ++i) {
    if (rows_[i] > 0) models_[i]->reserve(rows_[i], T, recompute);
  }
  B_ = B;
  T_ = T;
  recompute_ = recompute;
}

double ParallelTrainModel::step(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                                float grad_scale, bool backward) {
  reserve(B, T, recompute_);
  if (models_.size() == 1) {
    const double loss = models_[0]->forward(inputs, targets, B, T, grad_scale);
    if (backward) models_[0]->backward();
    return loss;
  }
  primary().prepare_weights();  // once, before the replicas read the quantized weights
  const size_t W = models_.size();
  std::vector<int64_t> first(W, 0), valid(W, 0);
  int64_t total_valid = 0;
  for (size_t i = 0, row = 0; i < W; ++i) {
    first[i] = static_cast<int64_t>(row);
    for (int64_t n = static_cast<int64_t>(row) * T; n < (static_cast<int64_t>(row) + rows_[i]) * T; ++n) {
      valid[i] += targets[n] != -100;
    }
    total_valid += valid[i];
    row += static_cast<size_t>(rows_[i]);
  }
  std::vector<double> loss(W, 0.0);
  parallel_for(static_cast<int>(W), static_cast<int64_t>(W), [&](int64_t ii, int) {
    const size_t i = static_cast<size_t>(ii);
    if (rows_[i] == 0) return;
    TrainModel& m = *models_[i];
    const double share = total_valid > 0 ? static_cast<double>(valid[i]) / static_cast<double>(total_valid) : 0.0;
    if (backward && i > 0) m.zero_grad();
    loss[i] = share * m.forward(inputs + first[i] * T, targets + first[i] * T, rows_[i], T,
                                grad_scale * static_cast<float>(share));
    if (backward) m.backward();
  });
  if (backward) {
    // primary.grads += Σ replica grads, split across the workers by element range.
    float* g0 = primary().grads().data();
    parallel_ranges(static_cast<int>(W), primary().num_params(), [&](int64_t lo, int64_t hi, int) {
      for (size_t i = 1; i < W; ++i) {
        if (rows_[i] == 0) continue;
        const float* gi = models_[i]->grads().data();
        for (int64_t j = lo; j < hi; ++j) g0[j] += gi[j];
      }
    });
  }
  double total = 0;
  for (double l : loss) total += l;
  return total;
}

int64_t ParallelTrainModel::accounted_peak() const {
  if (contexts_.empty()) return ctx_.memory.total_peak();
  int64_t s = 0;
  for (const auto& c : contexts_) s += c->memory.total_peak();
  return s;
}

OpTimes ParallelTrainModel::op_times_sum() {
  OpTimes t;
  for (auto& m : models_)
    for (int i = 0; i < static_cast<int>(Op::Count); ++i) t.seconds[i] += m->op_times().seconds[i];
  return t;
}

}  // namespace tritter::train
