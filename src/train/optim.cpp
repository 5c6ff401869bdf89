// AdamW, clipping and schedules (training-spec §8).
#include "train/optim.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/nn.h"

namespace tritter::train {

AdamW::AdamW(int64_t num_params, Context& ctx, AdamWParams hp, int64_t shard_lo, int64_t shard_hi)
    : ctx_(ctx),
      hp_(hp),
      lo_(shard_lo),
      hi_(shard_hi < 0 ? num_params : shard_hi),
      m_(static_cast<size_t>(hi_ - lo_) * sizeof(float), MemCategory::Optimizer, &ctx.memory),
      v_(static_cast<size_t>(hi_ - lo_) * sizeof(float), MemCategory::Optimizer, &ctx.memory) {
  TRITTER_CHECK(0 <= lo_ && lo_ <= hi_ && hi_ <= num_params, "AdamW shard [", lo_, ", ", hi_, ") of ", num_params);
}

void AdamW::step(std::span<float> params, std::span<const float> grads, const std::vector<TensorInfo>& table,
                 double lr, double wd) {
  ++t_;
  const double bc1 = 1.0 - std::pow(hp_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(hp_.beta2, static_cast<double>(t_));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float b1 = static_cast<float>(hp_.beta1), b2 = static_cast<float>(hp_.beta2);
  const float eps = static_cast<float>(hp_.eps);
  float* m = m_.as<float>().data();
  float* v = v_.as<float>().data();
  for (const auto& t : table) {
    const int64_t a = std::max(lo_, t.offset), b = std::min(hi_, t.offset + t.numel());
    if (a >= b) continue;  // outside this rank's shard
    const bool decayed = t.is_matrix() && (hp_.decay_embedding || t.role != TensorRole::Embedding);
    const float decay = decayed ? static_cast<float>(1.0 - lr * wd) : 1.0f;
    float* p = params.data() + a;
    const float* g = grads.data() + a;
    float* mt = m + (a - lo_);
    float* vt = v + (a - lo_);
    const int64_t n = b - a;
    adamw_update(ctx_, p, g, mt, vt, n, {decay, b1, b2, step_size, bc2_sqrt, eps});
  }
}

double grad_sum_squares(std::span<const float> grads, double start) {
  double s = start;
  for (float g : grads) s += static_cast<double>(g) * g;
  return s;
}

double grad_global_norm(std::span<const float> grads) { return std::sqrt(grad_sum_squares(grads, 0.0)); }

void clip_grads_to(std::span<float> grads, double n, double clip) {
  if (clip > 0 && std::isfinite(n)) {
    const double coef = clip / (n + 1e-6);
    if (coef < 1.0) {
      const float c = static_cast<float>(coef);
      for (float& g : grads) g *= c;
    }
  }
}

double clip_grad_norm(std::span<float> grads, double clip) {
  const double n = grad_global_norm(grads);
  clip_grads_to(grads, n, clip);
  return n;
}

void Schedule::validate() const {
  if (kind != "bitnet" && kind != "cosine" && kind != "wsd" && kind != "constant") {
    throw_error("schedule: kind: found '", kind, "', expected bitnet, cosine, wsd or constant");
  }
  if (total_steps < 1) throw_error("schedule: steps: found ", total_steps, ", expected >= 1");
  if (!(peak_lr > 0) || !std::isfinite(peak_lr)) throw_error("schedule: lr: found ", peak_lr, ", expected > 0");
  if (!(wd >= 0)) throw_error("schedule: weight decay: found ", wd, ", expected >= 0");
  if (warmup >= total_steps) throw_error("schedule: warmup: found ", warmup, ", expected < steps (", total_steps, ")");
}

int64_t Schedule::warmup_steps() const {
  if (warmup >= 0) return warmup;
  return std::min<int64_t>(std::max<int64_t>(100, total_steps / 100), total_steps / 10);
}

namespace {
double cosine(double from, double to, double progress) {
  progress = std::clamp(progress, 0.0, 1.0);
  return to + (from - to) * 0.5 * (1.0 + std::cos(M_PI * progress));
}
}  // namespace

double Schedule::lr(int64_t step) const {
  const int64_t w = warmup_steps();
  if (step < w) return peak_lr * static_cast<double>(step + 1) / static_cast<double>(w);
  if (kind == "constant") return peak_lr;
  if (kind == "cosine") {
    return cosine(peak_lr, peak_lr * min_ratio,
                  static_cast<double>(step - w) / static_cast<double>(std::max<int64_t>(1, total_steps - w)));
  }
  if (kind == "wsd") {
    const int64_t decay_start = total_steps - static_cast<int64_t>(decay_frac * static_cast<double>(total_steps));
    if (step < decay_start) return peak_lr;
    const double p = static_cast<double>(step - decay_start) /
                     static_cast<double>(std::max<int64_t>(1, total_steps - decay_start));
    return peak_lr + (peak_lr * min_ratio - peak_lr) * std::clamp(p, 0.0, 1.0);
  }
  // bitnet two-stage
  const int64_t s2 = std::max(w, static_cast<int64_t>(stage1_frac * static_cast<double>(total_steps)));
  if (step < s2) {
    return cosine(peak_lr, peak_lr * stage1_end_ratio,
                  static_cast<double>(step - w) / static_cast<double>(std::max<int64_t>(1, s2 - w)));
  }
  return cosine(peak_lr * stage2_ratio, 0.0,
                static_cast<double>(step - s2) / static_cast<double>(std::max<int64_t>(1, total_steps - s2)));
}

double Schedule::weight_decay(int64_t step) const {
  if (kind != "bitnet") return wd;
  const int64_t s2 = std::max(warmup_steps(), static_cast<int64_t>(stage1_frac * static_cast<double>(total_steps)));
  return step < s2 ? wd : 0.0;
}

}  // namespace tritter::train
