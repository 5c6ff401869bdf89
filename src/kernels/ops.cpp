// Public entry of the float ops: RoPE tables (double precision, §4.4) and the tier dispatch of the Highway bodies
// (cpu/ops_hwy.cpp) or the references (ref/ref_ops.cpp).
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ref/ref.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

void rope_tables(float* cos, float* sin, int64_t T, int64_t d, double theta, int64_t pos0) {
  if (d <= 0 || d % 2 != 0) throw_error("rope_tables: head dim: found ", d, ", expected a positive even number");
  const int64_t h2 = d / 2;
  for (int64_t j = 0; j < h2; ++j) {
    const double inv = std::pow(theta, -2.0 * static_cast<double>(j) / static_cast<double>(d));
    for (int64_t t = 0; t < T; ++t) {
      const double phi = static_cast<double>(pos0 + t) * inv;
      cos[t * h2 + j] = static_cast<float>(std::cos(phi));
      sin[t * h2 + j] = static_cast<float>(std::sin(phi));
    }
  }
}

const char* rope_scaling_name(RopeScaling::Type t) {
  switch (t) {
    case RopeScaling::Type::None: return "default";
    case RopeScaling::Type::Linear: return "linear";
    case RopeScaling::Type::Dynamic: return "dynamic";
    case RopeScaling::Type::Yarn: return "yarn";
    case RopeScaling::Type::Llama3: return "llama3";
  }
  return "?";
}

namespace {
double yarn_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }
}  // namespace

RopeFrequencies rope_frequencies(int64_t d, double theta, const RopeScaling& s, int64_t max_positions,
                                 int64_t seq_len) {
  if (d <= 0 || d % 2 != 0) throw_error("rope: head dim: found ", d, ", expected a positive even number");
  const int64_t h2 = d / 2;
  const double D = static_cast<double>(d);
  const double original =
      static_cast<double>(s.original_max_position_embeddings > 0 ? s.original_max_position_embeddings : max_positions);
  RopeFrequencies f;
  f.inv_freq.resize(static_cast<size_t>(h2));
  double base = theta;
  if (s.type == RopeScaling::Type::Dynamic && static_cast<double>(seq_len) > original) {
    base = theta * std::pow(s.factor * static_cast<double>(seq_len) / original - (s.factor - 1.0), D / (D - 2.0));
  }
  for (int64_t j = 0; j < h2; ++j) f.inv_freq[j] = std::pow(base, -2.0 * static_cast<double>(j) / D);
  switch (s.type) {
    case RopeScaling::Type::None:
    case RopeScaling::Type::Dynamic: break;
    case RopeScaling::Type::Linear:
      for (double& v : f.inv_freq) v /= s.factor;
      break;
    case RopeScaling::Type::Yarn: {
      if (s.attention_factor) f.attention_factor = *s.attention_factor;
      else if (s.mscale != 0 && s.mscale_all_dim != 0)
        f.attention_factor = yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
      else f.attention_factor = yarn_mscale(s.factor, 1.0);
      // The dimension whose frequency turns `rotations` times over the original context.
      const auto correction_dim = [&](double rotations) {
        return D * std::log(original / (rotations * 2.0 * M_PI)) / (2.0 * std::log(theta));
      };
      double lo = correction_dim(s.beta_fast), hi = correction_dim(s.beta_slow);
      if (s.truncate) lo = std::floor(lo), hi = std::ceil(hi);
      lo = std::max(lo, 0.0);
      hi = std::min(hi, D - 1.0);
      if (lo == hi) hi += 0.001;  // a one-point range
      for (int64_t j = 0; j < h2; ++j) {
        const double ramp = std::clamp((static_cast<double>(j) - lo) / (hi - lo), 0.0, 1.0);  // 1: interpolate
        const double extrapolate = 1.0 - ramp;
        f.inv_freq[j] = f.inv_freq[j] / s.factor * (1.0 - extrapolate) + f.inv_freq[j] * extrapolate;
      }
      break;
    }
    case RopeScaling::Type::Llama3: {
      const double low_wavelen = original / s.low_freq_factor, high_wavelen = original / s.high_freq_factor;
      for (double& v : f.inv_freq) {
        const double wavelen = 2.0 * M_PI / v;
        if (wavelen > low_wavelen) {
          v /= s.factor;
        } else if (!(wavelen < high_wavelen)) {
          const double smooth = (original / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
          v = (1.0 - smooth) * v / s.factor + smooth * v;
        }
      }
      break;
    }
  }
  return f;
}

void rope_tables(float* cos, float* sin, int64_t T, int64_t d, double theta, int64_t pos0, const RopeScaling& s,
                 int64_t max_positions, int64_t seq_len) {
  if (s.type == RopeScaling::Type::None) return rope_tables(cos, sin, T, d, theta, pos0);
  const RopeFrequencies f = rope_frequencies(d, theta, s, max_positions, seq_len);
  const int64_t h2 = d / 2;
  for (int64_t j = 0; j < h2; ++j) {
    for (int64_t t = 0; t < T; ++t) {
      const double phi = static_cast<double>(pos0 + t) * f.inv_freq[j];
      cos[t * h2 + j] = static_cast<float>(std::cos(phi) * f.attention_factor);
      sin[t * h2 + j] = static_cast<float>(std::sin(phi) * f.attention_factor);
    }
  }
}

#define TRITTER_OP(NAME, REF_CALL, CPU_CALL)          \
  {                                                  \
    const KernelTier tier = ternary_kernel_tier(ctx); \
    if (tier == KernelTier::Reference) return REF_CALL; \
    return CPU_CALL;                                 \
  }

void rmsnorm(float* y, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  cpu::rmsnorm(KernelTier::Auto, y, x, g, N, n, eps);
}
void rmsnorm(const Context& ctx, float* y, const float* x, const float* g, int64_t N, int64_t n, float eps)
    TRITTER_OP(rmsnorm, ref::rmsnorm(y, x, g, N, n, eps), cpu::rmsnorm(tier, y, x, g, N, n, eps))

void rmsnorm_quantize(int8_t* xq, float* scale, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  cpu::rmsnorm_quantize(KernelTier::Auto, xq, scale, x, g, N, n, eps);
}
void rmsnorm_quantize(const Context& ctx, int8_t* xq, float* scale, const float* x, const float* g, int64_t N,
                      int64_t n, float eps)
    TRITTER_OP(rmsnorm_quantize, ref::rmsnorm_quantize(xq, scale, x, g, N, n, eps),
               cpu::rmsnorm_quantize(tier, xq, scale, x, g, N, n, eps))

void rope_apply(float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d) {
  cpu::rope_apply(KernelTier::Auto, x, cos, sin, T, heads, d);
}
void rope_apply(const Context& ctx, float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d)
    TRITTER_OP(rope_apply, ref::rope_apply(x, cos, sin, T, heads, d), cpu::rope_apply(tier, x, cos, sin, T, heads, d))

void relu2(float* y, const float* x, int64_t n) { cpu::relu2(KernelTier::Auto, y, x, n); }
void relu2(const Context& ctx, float* y, const float* x, int64_t n)
    TRITTER_OP(relu2, ref::relu2(y, x, n), cpu::relu2(tier, y, x, n))

void relu2_glu(float* y, const float* gate, const float* up, int64_t n) {
  cpu::relu2_glu(KernelTier::Auto, y, gate, up, n);
}
void relu2_glu(const Context& ctx, float* y, const float* gate, const float* up, int64_t n)
    TRITTER_OP(relu2_glu, ref::relu2_glu(y, gate, up, n), cpu::relu2_glu(tier, y, gate, up, n))

void softmax_rows(float* x, int64_t rows, int64_t n) { cpu::softmax_rows(KernelTier::Auto, x, rows, n); }
void softmax_rows(const Context& ctx, float* x, int64_t rows, int64_t n)
    TRITTER_OP(softmax_rows, ref::softmax_rows(x, rows, n), cpu::softmax_rows(tier, x, rows, n))

}  // namespace tritter
