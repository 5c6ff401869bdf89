// LoRA delta at inference (see lora.h): per row, the r dot products h_j = s·(A_j · x_t) in float with 16 explicit
// partial sums (a fixed order the compiler may vectorize; no fast-math), then y_t += h_j · Bt_j.
#include "kernels/lora.h"

#include <algorithm>

#include "kernels/ref/ref.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

void lora_delta_forward(const Context& ctx, float* y, const float* x, const float* A, const float* Bt, int64_t T,
                        int64_t r, int64_t I, int64_t O, float scale) {
  if (ternary_kernel_tier(ctx) == KernelTier::Reference) return ref::lora_delta_forward(y, x, A, Bt, T, r, I, O, scale);
#pragma omp parallel for num_threads(std::max(1, ctx.threads)) schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * I;
    float* yt = y + t * O;
    for (int64_t j = 0; j < r; ++j) {
      const float* Aj = A + j * I;
      float acc[16] = {};
      int64_t i = 0;
      for (; i + 16 <= I; i += 16) {
        for (int u = 0; u < 16; ++u) acc[u] += Aj[i + u] * xt[i + u];
      }
      float h = 0;
      for (; i < I; ++i) h += Aj[i] * xt[i];
      for (int u = 0; u < 16; ++u) h += acc[u];
      h *= scale;
      const float* Bj = Bt + j * O;
      for (int64_t o = 0; o < O; ++o) yt[o] += h * Bj[o];
    }
  }
}

}  // namespace tritter
