// Dense fp32 GEMM: the one entry point for every dense matrix product of the model code (LM head, dW, LoRA,
// attention scores). OpenBLAS on the CPU tiers; `--kernels ref` runs the double-accumulating reference.
#pragma once
#include <cstdint>

#include "core/context.h"

namespace tritter {

// C (M, N) = alpha · op(A) · op(B) + beta · C, row-major with row strides lda, ldb, ldc; op(X) = Xᵀ when the
// flag is set (A is then stored (K, M), B (N, K)). beta = 0 overwrites C (its old contents are not read).
// Threads: OpenBLAS's own (set once by the CLI); float sums in the library's order.
void gemm_f32(const Context& ctx, float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
              bool trans_a, bool trans_b, float alpha, float beta, int64_t lda, int64_t ldb, int64_t ldc);

// Contiguous shorthand: lda, ldb, ldc are the natural row lengths of op's storage.
inline void gemm_f32(const Context& ctx, float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
                     bool trans_a, bool trans_b, float alpha, float beta) {
  gemm_f32(ctx, C, A, B, M, N, K, trans_a, trans_b, alpha, beta, trans_a ? M : K, trans_b ? K : N, N);
}

}  // namespace tritter
