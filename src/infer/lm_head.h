// The output head z = ĥ W_lmᵀ (training-spec §4.7) for f32 or int8 (per-row absmax) weights. At a 128k vocabulary
// it is a third of decode traffic; the int8 form quarters it: int8 activations (per-token absmax, as
// BitLinear) × int8 rows, exact int32 sums, one multiply per logit. A local helper until kernels/ has an int8
// GEMV: plain loops the compiler vectorizes, compiled per ISA (avx512-vnni: vpdpbusd, avx2, generic) and chosen by
// ctx.kernels like the ternary kernels; a fixed summation order per logit,
// so results do not depend on the thread count (an FMA-capable clone may differ from another in the last bits).
#pragma once
#include <cstdint>

#include "core/context.h"
#include "model/packed_model.h"

namespace tritter {

// logits (N, V) ← h (N, D) · Wᵀ. Threads: ctx.threads over vocabulary rows; deterministic for any thread count.
// hq (N, D) i8 and hs (N) are scratch for the int8 head (unused for f32).
void lm_head_forward(const Context& ctx, float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V,
                     int64_t D, int8_t* hq, float* hs);

}  // namespace tritter
