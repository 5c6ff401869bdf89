// Reference cosine-head ops (kernels/nn.h contracts): every sum in double, one rounding per output.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/ref/ref.h"

namespace tritter::ref {

void l2norm_rows_forward(float* y, float* r, const float* x, int64_t N, int64_t n) {
  for (int64_t row = 0; row < N; ++row) {
    double ss = 0.0;
    for (int64_t j = 0; j < n; ++j) ss += static_cast<double>(x[row * n + j]) * x[row * n + j];
    const float rr = static_cast<float>(1.0 / std::sqrt(ss + kL2NormEps));
    r[row] = rr;
    for (int64_t j = 0; j < n; ++j) y[row * n + j] = x[row * n + j] * rr;
  }
}

void l2norm_rows_backward(float* dx, const float* dy, const float* y, const float* r, int64_t N, int64_t n,
                          bool accumulate) {
  for (int64_t row = 0; row < N; ++row) {
    double dot = 0.0;
    for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(dy[row * n + j]) * y[row * n + j];
    for (int64_t j = 0; j < n; ++j) {
      const double g = static_cast<double>(r[row]) * (dy[row * n + j] - dot * y[row * n + j]);
      float& d = dx[row * n + j];
      d = static_cast<float>(accumulate ? d + g : g);
    }
  }
}

void cosine_logits_forward(float* z, const float* hn, const float* En, float s, int64_t N, int64_t D, int64_t V) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t v = 0; v < V; ++v) {
      double acc = 0.0;
      for (int64_t j = 0; j < D; ++j) acc += static_cast<double>(hn[n * D + j]) * En[v * D + j];
      z[n * V + v] = static_cast<float>(static_cast<double>(s) * acc);
    }
}

double cosine_logits_backward(float* dhn, float* dEn, float* dz, const float* z, const float* hn, const float* En,
                              float s, int64_t N, int64_t D, int64_t V, bool accumulate) {
  double ds = 0.0;
  for (int64_t i = 0; i < N * V; ++i) {
    ds += static_cast<double>(dz[i]) * z[i];
    dz[i] *= s;
  }
  linear_backward(dhn, dEn, dz, hn, En, N, D, V, accumulate);
  return ds / static_cast<double>(s);
}

double embed_pred_forward_backward(float* dhn, float* dEn, const float* hn, const float* En, const int32_t* targets,
                                   int64_t N, int64_t D, int64_t V, double beta, float grad_scale, double* mean_cos) {
  int64_t valid = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == -100) continue;
    if (targets[n] < 0 || targets[n] >= V) {
      throw_error("embed_pred_loss: target ", n, ": found ", targets[n], ", expected 0..", V - 1, " or -100");
    }
    ++valid;
  }
  const double nv = static_cast<double>(std::max<int64_t>(valid, 1));
  const double coef = -beta * grad_scale / nv;
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == -100) continue;
    const int64_t y = targets[n];
    double c = 0.0;
    for (int64_t j = 0; j < D; ++j) c += static_cast<double>(hn[n * D + j]) * En[y * D + j];
    sum += c;
    for (int64_t j = 0; j < D; ++j) {
      if (dhn) dhn[n * D + j] = static_cast<float>(dhn[n * D + j] + coef * En[y * D + j]);
      if (dEn) dEn[y * D + j] = static_cast<float>(dEn[y * D + j] + coef * hn[n * D + j]);
    }
  }
  if (mean_cos) *mean_cos = valid ? sum / nv : 0.0;
  return beta * (static_cast<double>(valid) - sum) / nv;
}

}  // namespace tritter::ref
