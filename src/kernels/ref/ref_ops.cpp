// Reference float ops (training-spec §4.1, §4.4, §4.6): reductions in double, one row at a time.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace tritter::ref {

namespace {
float rms_factor(const float* x, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t j = 0; j < n; ++j) ss += static_cast<double>(x[j]) * x[j];
  return static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + static_cast<double>(eps)));
}
}  // namespace

void rmsnorm(float* y, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  for (int64_t r = 0; r < N; ++r) {
    const float f = rms_factor(x + r * n, n, eps);
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = x[r * n + j] * f * g[j];
  }
}

void rmsnorm_quantize(int8_t* xq, float* scale, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  std::vector<float> row(static_cast<size_t>(n));
  for (int64_t r = 0; r < N; ++r) {
    rmsnorm(row.data(), x + r * n, g, 1, n, eps);
    quantize_activations(xq + r * n, scale + r, row.data(), 1, n);
  }
}

void rope_apply(float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d) {
  const int64_t h2 = d / 2;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      float* u = x + (t * heads + h) * d;
      for (int64_t j = 0; j < h2; ++j) {
        const float c = cos[t * h2 + j], s = sin[t * h2 + j];
        const float u1 = u[j], u2 = u[j + h2];
        u[j] = u1 * c - u2 * s;
        u[j + h2] = u2 * c + u1 * s;
      }
    }
  }
}

void relu2(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = x[i] > 0.0f ? x[i] : 0.0f;
    y[i] = r * r;
  }
}

void relu2_glu(float* y, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = gate[i] > 0.0f ? gate[i] : 0.0f;
    y[i] = r * r * up[i];
  }
}

void softmax_rows(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * n;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) m = std::fmax(m, row[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(row[j]) - m);
    for (int64_t j = 0; j < n; ++j) row[j] = static_cast<float>(std::exp(static_cast<double>(row[j]) - m) / sum);
  }
}

}  // namespace tritter::ref
