// Reference ternary matrix products: triple loops over the kernel layout, one weight at a time.
#include "kernels/ref/ref.h"

namespace tritter::ref {

void ternary_matmul_i32(int32_t* acc, const int8_t* xq, const TernaryMatrix& w, int64_t N) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < w.rows; ++o) {
      int32_t sum = 0;
      for (int64_t i = 0; i < w.cols; ++i) sum += ternary_matrix_at(w, o, i) * xq[n * w.cols + i];
      acc[n * w.rows + o] = sum;
    }
  }
}

void ternary_matmul(float* y, const int8_t* xq, const float* x_scale, const TernaryMatrix& w, int64_t N) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < w.rows; ++o) {
      int32_t sum = 0;
      for (int64_t i = 0; i < w.cols; ++i) sum += ternary_matrix_at(w, o, i) * xq[n * w.cols + i];
      y[n * w.rows + o] = ternary_epilogue(sum, x_scale[n], w.sigma);
    }
  }
}

void ternary_matmul_t(float* dx, const float* dy, const TernaryMatrix& w, int64_t N) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < w.cols; ++i) {
      double sum = 0.0;
      for (int64_t o = 0; o < w.rows; ++o) sum += static_cast<double>(dy[n * w.rows + o]) * ternary_matrix_at(w, o, i);
      dx[n * w.cols + i] = static_cast<float>(sum) / w.sigma;
    }
  }
}

}  // namespace tritter::ref
