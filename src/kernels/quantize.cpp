// Weight quantizer (training-spec §3: absmean in double, fmaxf, 1/β, rne, clamp) and the activation quantizer's
// public entry (dispatch to the Highway body in cpu/ops_hwy.cpp or to kernels/ref).
#include "kernels/quantize.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ref/ref.h"

namespace tritter {

float ternary_sigma(const float* w, int64_t n) {
  if (n <= 0) throw_error("ternary_sigma: empty weight matrix: found n = ", n, ", expected n > 0");
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(w[i])) {
      throw_error("ternary_sigma: weight ", i, ": found ", w[i], ", expected a finite value");
    }
    sum += std::fabs(static_cast<double>(w[i]));
  }
  float beta = static_cast<float>(sum / static_cast<double>(n));
  beta = std::fmax(beta, kQuantEps);
  return 1.0f / beta;
}

void ternary_quantize(int8_t* q, const float* w, int64_t n, float sigma) {
  // clamp(rne(r), −1, 1) is +1 for r > 0.5, −1 for r < −0.5 and 0 between (rne(±0.5) = 0): two compares a
  // weight, which vectorize, where nearbyint/fmin/fmax were three library calls (a training step quantizes every
  // weight). The finiteness check is folded the same way and named after the loop.
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    const float r = w[i] * sigma;
    finite &= std::fabs(w[i]) <= std::numeric_limits<float>::max();  // false for NaN and ±inf
    q[i] = static_cast<int8_t>(static_cast<int>(r > 0.5f) - static_cast<int>(r < -0.5f));
  }
  if (!finite) {
    int64_t i = 0;
    while (std::isfinite(w[i])) ++i;
    throw_error("ternary_quantize: weight ", i, ": found ", w[i], ", expected a finite value");
  }
}

float ternary_quantize_absmean(int8_t* q, const float* w, int64_t n) {
  const float sigma = ternary_sigma(w, n);
  ternary_quantize(q, w, n, sigma);
  return sigma;
}

void quantize_activations(int8_t* xq, float* scale, const float* x, int64_t N, int64_t I) {
  cpu::quantize_activations(KernelTier::Auto, xq, scale, x, N, I);
}

void quantize_activations(const Context& ctx, int8_t* xq, float* scale, const float* x, int64_t N, int64_t I) {
  const KernelTier tier = ternary_kernel_tier(ctx);
  if (tier == KernelTier::Reference) return ref::quantize_activations(xq, scale, x, N, I);
  cpu::quantize_activations(tier, xq, scale, x, N, I);
}

void dequantize_activations(float* x, const int8_t* xq, const float* scale, int64_t N, int64_t I) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < I; ++k) x[n * I + k] = static_cast<float>(xq[n * I + k]) / scale[n];
  }
}

}  // namespace tritter
