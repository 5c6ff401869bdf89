// The KNN exit of a cosine head (docs/embedding-prediction.md): the k rows of the unit embedding table Ê nearest
// to ĥ by cosine, exactly (no approximate index), in one pass over the table. The scores are the cosine head's
// logits fl(s · ĥ·Ê_v) computed by the head's own kernels (kernels/head.h: the f32 or int8 table, the tier that
// ctx.kernels resolves to: reference, generic, AVX2, AVX-512) on blocks of kKnnRowBlock table rows, each block
// merged into a running top-k; ties go to the lowest id. So on one tier the KNN id equals the argmax of the
// logits bit for bit. Across tiers the f32 dot products may differ in the last bits (FMA, summation shape): ids
// can then differ only where the top-2 margin is below knn_tier_margin_bound.
#pragma once
#include <cstdint>

#include "core/context.h"
#include "kernels/head.h"

namespace tritter {

inline constexpr int64_t kKnnRowBlock = 256;

// For each row of h (N, D) (the final norm's output; normalized here): ids (N, k) and scores (N, k), best first,
// of the table `w` (a cosine head: w.cos_scale > 0, rows unit). 1 ≤ k ≤ V. Threads: ctx.threads over row blocks;
// the result does not depend on the thread count. Throws Error on a non-cosine head or a bad k.
void knn_topk(const Context& ctx, int32_t* ids, float* scores, const float* h, int64_t N, const HeadWeights& w,
              int64_t V, int64_t D, int64_t k);

// The largest |logit difference| two f32 tiers can show for one (ĥ, Ê_v) pair, as a logit margin: both dot
// products of unit vectors carry at most (⌈D/16⌉ + 5)·2⁻²⁴ absolute error (16 partial sums of ⌈D/16⌉ terms, a
// 4-level tree and the tail; |ĥ|·|Ê_v| ≤ 1), the scaling one more rounding: each logit is within
// e = s·((⌈D/16⌉ + 6)·2⁻²⁴) of the exact value, so two tiers can order two ids differently only where the margin
// between them is below 4e — the bound returned. The int8 table is exact integer arithmetic on every tier.
double knn_tier_margin_bound(int64_t D, float s);

// argmax over each row of logits (N, V), ties to the lowest id: what knn_topk with k = 1 must equal.
void argmax_rows(int32_t* ids, const float* logits, int64_t N, int64_t V);

}  // namespace tritter
