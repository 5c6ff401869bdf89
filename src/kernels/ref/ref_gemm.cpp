// Reference dense GEMM: the textbook triple loop, sums in double.
#include "kernels/ref/ref.h"

namespace tritter::ref {

void gemm_f32(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b,
              float alpha, float beta, int64_t lda, int64_t ldb, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + m] : A[m * lda + k];
        const float b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
        s += static_cast<double>(a) * b;
      }
      float& c = C[m * ldc + n];
      c = static_cast<float>(alpha * s + (beta == 0.0f ? 0.0 : static_cast<double>(beta) * c));
    }
  }
}

}  // namespace tritter::ref
