// The cosine head's forward/backward ops and the auxiliary embedding-prediction term (contracts in nn.h).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/nn.h"
#include "kernels/ref/ref.h"

namespace tritter {

namespace {
int nthreads(const Context& ctx) { return std::max(1, ctx.threads); }

int64_t count_valid(const int32_t* targets, int64_t N, int64_t V, const char* what) {
  int64_t valid = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == -100) continue;
    if (targets[n] < 0 || targets[n] >= V) {
      throw_error(what, ": target ", n, ": found ", targets[n], ", expected 0..", V - 1, " or -100");
    }
    ++valid;
  }
  return valid;
}
}  // namespace

void l2norm_rows_forward(const Context& ctx, float* y, float* r, const float* x, int64_t N, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::l2norm_rows_forward(y, r, x, N, n);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t row = 0; row < N; ++row) {
    const float* xr = x + row * n;
    double ss = 0.0;  // double: the same unit row on every tier (the reference sums the same way)
    for (int64_t j = 0; j < n; ++j) ss += static_cast<double>(xr[j]) * xr[j];
    const float rr = static_cast<float>(1.0 / std::sqrt(ss + kL2NormEps));
    r[row] = rr;
    for (int64_t j = 0; j < n; ++j) y[row * n + j] = xr[j] * rr;
  }
}

void l2norm_rows_backward(const Context& ctx, float* dx, const float* dy, const float* y, const float* r, int64_t N,
                          int64_t n, bool accumulate) {
  if (ctx.kernels == KernelTier::Reference) return ref::l2norm_rows_backward(dx, dy, y, r, N, n, accumulate);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t row = 0; row < N; ++row) {
    const float* dyr = dy + row * n;
    const float* yr = y + row * n;
    float* dxr = dx + row * n;
    double dot = 0.0;
    for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(dyr[j]) * yr[j];
    const float d = static_cast<float>(dot), rr = r[row];
    for (int64_t j = 0; j < n; ++j) {
      const float g = rr * (dyr[j] - d * yr[j]);
      dxr[j] = accumulate ? dxr[j] + g : g;
    }
  }
}

void cosine_logits_forward(const Context& ctx, float* z, const float* hn, const float* En, float s, int64_t N,
                           int64_t D, int64_t V) {
  if (ctx.kernels == KernelTier::Reference) return ref::cosine_logits_forward(z, hn, En, s, N, D, V);
  linear_forward(ctx, z, hn, En, N, D, V);
  const int64_t total = N * V;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < total; ++i) z[i] *= s;
}

double cosine_logits_backward(const Context& ctx, float* dhn, float* dEn, float* dz, const float* z,
                              const float* hn, const float* En, float s, int64_t N, int64_t D, int64_t V,
                              bool accumulate) {
  if (ctx.kernels == KernelTier::Reference) {
    return ref::cosine_logits_backward(dhn, dEn, dz, z, hn, En, s, N, D, V, accumulate);
  }
  std::vector<double> row(static_cast<size_t>(N), 0.0);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    double acc = 0.0;
    for (int64_t v = 0; v < V; ++v) {
      acc += static_cast<double>(dz[n * V + v]) * z[n * V + v];
      dz[n * V + v] *= s;
    }
    row[n] = acc;
  }
  double ds = 0.0;
  for (int64_t n = 0; n < N; ++n) ds += row[n];  // fixed order: deterministic for any thread count
  linear_backward(ctx, dhn, dEn, dz, hn, En, N, D, V, accumulate);
  return ds / static_cast<double>(s);
}

double embed_pred_forward_backward(const Context& ctx, float* dhn, float* dEn, const float* hn, const float* En,
                                   const int32_t* targets, int64_t N, int64_t D, int64_t V, double beta,
                                   float grad_scale, double* mean_cos) {
  if (ctx.kernels == KernelTier::Reference) {
    return ref::embed_pred_forward_backward(dhn, dEn, hn, En, targets, N, D, V, beta, grad_scale, mean_cos);
  }
  const int64_t valid = count_valid(targets, N, V, "embed_pred_loss");
  const double nv = static_cast<double>(std::max<int64_t>(valid, 1));
  const float coef = static_cast<float>(-beta * grad_scale / nv);
  std::vector<double> cosv(static_cast<size_t>(N), 0.0);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == -100) continue;
    const float* e = En + static_cast<int64_t>(targets[n]) * D;
    const float* h = hn + n * D;
    double c = 0.0;
    for (int64_t j = 0; j < D; ++j) c += static_cast<double>(h[j]) * e[j];
    cosv[n] = c;
    if (dhn && coef != 0.0f)
      for (int64_t j = 0; j < D; ++j) dhn[n * D + j] += coef * e[j];
  }
  // The target rows' gradient serially (repeated targets accumulate, deterministic).
  if (dEn && coef != 0.0f) {
    for (int64_t n = 0; n < N; ++n) {
      if (targets[n] == -100) continue;
      float* e = dEn + static_cast<int64_t>(targets[n]) * D;
      for (int64_t j = 0; j < D; ++j) e[j] += coef * hn[n * D + j];
    }
  }
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n) sum += cosv[n];
  if (mean_cos) *mean_cos = valid ? sum / nv : 0.0;
  return beta * (static_cast<double>(valid) - sum) / nv;
}

}  // namespace tritter
