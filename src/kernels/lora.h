// The LoRA delta of one adapted projection at inference: y += s·(x Aᵀ) Bᵀ, with Bᵀ prepared once at load so the
// up-projection is one axpy per rank (infer/lora_apply.h). kernels/ref has the reference (sums in double).
// Threads over the T rows (ctx.threads); the Reference tier runs the reference.
#pragma once
#include <cstdint>

#include "core/context.h"

namespace tritter {

// y (T, O) += scale · (x Aᵀ) Bt, i.e. y_t += Σ_j scale·(A_j · x_t) · Bt_j, with x (T, I), A (r, I), Bt (r, O) = Bᵀ.
// Accumulates into y; y must not alias x, A or Bt.
void lora_delta_forward(const Context& ctx, float* y, const float* x, const float* A, const float* Bt, int64_t T,
                        int64_t r, int64_t I, int64_t O, float scale);

}  // namespace tritter
