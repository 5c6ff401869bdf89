// Public entry of the float ops: RoPE tables (double precision, §4.4) and the tier dispatch of the Highway bodies
// (cpu/ops_hwy.cpp) or the references (ref/ref_ops.cpp).
#include "kernels/ops.h"

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
