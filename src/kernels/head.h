// The output head z = ĥ W_lmᵀ (training-spec §4.7) for f32 or int8 (per-row absmax) weights. At a 128k vocabulary
// it is a third of decode traffic; the int8 form quarters it: int8 activations (per-token absmax, as
// BitLinear) × int8 rows, exact int32 sums, one multiply per logit. Plain loops the compiler vectorizes, compiled per
// ISA (avx512-vnni: vpdpbusd; generic), and for the int8 head on AVX2 an intrinsic GEMM (cpu/head_avx2.cpp),
// chosen by ctx.kernels like the ternary kernels; a fixed summation order per logit,
// so results do not depend on the thread count (an FMA-capable clone may differ from another in the last bits).
// ctx.kernels == Reference runs kernels/ref (f32 sums in double; int8 bit-identical).
#pragma once
#include <cstdint>

#include "core/context.h"

namespace tritter {

enum class HeadFormat { F32, I8 };

// The output head's weights as the kernel reads them (views; the model file owns the bytes).
struct HeadWeights {
  HeadFormat format = HeadFormat::F32;
  const float* f32 = nullptr;        // (V, D) — the lm_head, or the embedding when tied
  const int8_t* i8 = nullptr;        // (V, D) i8 — per-row absmax levels
  const float* row_scale = nullptr;  // (V): w[v, :] ≈ i8[v, :] · row_scale[v]
  // > 0: a cosine head (docs/embedding-prediction.md). The rows above are then the unit rows Ê of the embedding
  // table, the input rows are L2-normalized first (l2norm_rows_forward) and each logit is fl(cos_scale · ĥ·Ê_v).
  float cos_scale = 0.0f;
};

// logits (N, V) ← h (N, D) · Wᵀ. Threads: ctx.threads over vocabulary rows; deterministic for any thread count.
// hq (N, D) i8 and hs (N) are scratch for the int8 head (unused for f32). A cosine head (w.cos_scale > 0) runs
// the same kernels on the unit rows of h and scales the result.
void lm_head_forward(const Context& ctx, float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V,
                     int64_t D, int8_t* hq, float* hs);

}  // namespace tritter
