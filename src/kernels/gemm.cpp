#include "kernels/gemm.h"

#include <cblas.h>

#include "kernels/ref/ref.h"

namespace tritter {

void gemm_f32(const Context& ctx, float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K,
              bool trans_a, bool trans_b, float alpha, float beta, int64_t lda, int64_t ldb, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (ctx.kernels == KernelTier::Reference) {
    ref::gemm_f32(C, A, B, M, N, K, trans_a, trans_b, alpha, beta, lda, ldb, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
              static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

}  // namespace tritter
