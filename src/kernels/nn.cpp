// Forward/backward pairs of the transformer's float ops (see nn.h for the contracts). Plain loops that the
// compiler vectorizes, OpenMP over rows, dense products through gemm_f32; the integer BitLinear paths go through
// the ternary kernels.
#include "kernels/nn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"

namespace tritter {

namespace {
int nthreads(const Context& ctx) { return std::max(1, ctx.threads); }
}  // namespace

// ---------------------------------------------------------------- RMSNorm
void rmsnorm_forward(const Context& ctx, float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n,
                     float eps) {
  if (ctx.kernels == KernelTier::Reference) return ref::rmsnorm_forward(y, rstd, x, g, N, n, eps);
  const KernelTier tier = ternary_kernel_tier(ctx);
  const int threads = static_cast<int>(std::min<int64_t>(nthreads(ctx), std::max<int64_t>(N, 1)));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int64_t lo = N * t / threads, hi = N * (t + 1) / threads;
    cpu::rmsnorm_forward_rows(tier, y + lo * n, rstd + lo, x + lo * n, g, hi - lo, n, eps);
  }
}

void rmsnorm_backward(const Context& ctx, float* dx, float* dg, const float* dy, const float* x, const float* rstd,
                      const float* g, int64_t N, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::rmsnorm_backward(dx, dg, dy, x, rstd, g, N, n);
  const KernelTier tier = ternary_kernel_tier(ctx);
  const int threads = static_cast<int>(std::min<int64_t>(nthreads(ctx), std::max<int64_t>(N, 1)));
  // Each thread sums its rows' dg into its own partial; the partials are added in thread order after.
  std::vector<float> partial(static_cast<size_t>(threads * n), 0.0f);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int64_t lo = N * t / threads, hi = N * (t + 1) / threads;
    cpu::rmsnorm_backward_rows(tier, dx + lo * n, partial.data() + t * n, dy + lo * n, x + lo * n, rstd + lo, g,
                               hi - lo, n);
  }
  for (int t = 0; t < threads; ++t) {
    for (int64_t j = 0; j < n; ++j) dg[j] += partial[t * n + j];
  }
}

// ---------------------------------------------------------------- BitLinear
void bitweight_prepare(BitWeight& bw, int8_t* scratch_q) {
  if (!bw.quant) return;
  const int64_t n = bw.O * bw.I;
  bw.sigma = ternary_sigma(bw.w, n);
  ternary_quantize(scratch_q, bw.w, n, bw.sigma);
  ternary_matrix_pack(bw.packed, scratch_q, bw.O, bw.I);
  if (bw.wt) {
    // q·fl(1/σ) is fl(q/σ) for q ∈ {−1, 0, 1}: the same bits as the division, without one per weight.
    const float beta = 1.0f / bw.sigma;
    for (int64_t i = 0; i < n; ++i) bw.wt[i] = static_cast<float>(scratch_q[i]) * beta;
  }
}

void bitinput_set(const Context& ctx, const BitInput& in, const float* x, int64_t N, int64_t I, bool quant) {
  if (ctx.kernels == KernelTier::Reference) return ref::bitinput_set(in, x, N, I, quant);
  if (quant) {
    const int threads = nthreads(ctx);
    // An Error (NaN/Inf input) cannot leave an OpenMP region: keep the first and rethrow after it.
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
      const int64_t lo = N * t / threads, hi = N * (t + 1) / threads;
      try {
        if (hi > lo) quantize_activations(ctx, in.q + lo * I, in.s + lo, x + lo * I, hi - lo, I);
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
      }
    }
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  } else {
    std::memcpy(in.f, x, static_cast<size_t>(N * I) * sizeof(float));
  }
}

const float* bitinput_float(const BitInput& in, float* scratch, int64_t N, int64_t I, bool quant) {
  if (!quant) return in.f;
  dequantize_activations(scratch, in.q, in.s, N, I);
  return scratch;
}

void bitlinear_forward(const Context& ctx, float* y, const BitInput& in, const BitWeight& w, int64_t N) {
  if (ctx.kernels == KernelTier::Reference) return ref::bitlinear_forward(y, in, w, N);
  if (w.quant) {
    ternary_matmul(ctx, y, in.q, in.s, w.matrix(), N);
  } else {
    linear_forward(ctx, y, in.f, w.w, N, w.I, w.O);
  }
}

void bitlinear_backward_dx(const Context& ctx, float* dx, const float* dy, const BitWeight& w, int64_t N,
                           bool accumulate, float* scratch) {
  if (ctx.kernels == KernelTier::Reference) return ref::bitlinear_backward_dx(dx, dy, w, N, accumulate);
  if (!w.quant || w.wt) {
    gemm_f32(ctx, dx, dy, w.quant ? w.wt : w.w, N, w.I, w.O, false, false, 1.0f, accumulate ? 1.0f : 0.0f);
    return;
  }
  if (!accumulate) {
    ternary_matmul_t(ctx, dx, dy, w.matrix(), N);
    return;
  }
  ternary_matmul_t(ctx, scratch, dy, w.matrix(), N);
  add_into(ctx, dx, scratch, N * w.I);
}

void bitlinear_backward_dw(const Context& ctx, float* dw, const float* dy, const float* xt, int64_t N, int64_t O,
                           int64_t I) {
  if (ctx.kernels == KernelTier::Reference) return ref::bitlinear_backward_dw(dw, dy, xt, N, O, I);
  gemm_f32(ctx, dw, dy, xt, O, I, N, true, false, 1.0f, 1.0f);
}

void linear_forward(const Context& ctx, float* y, const float* x, const float* w, int64_t N, int64_t I, int64_t O) {
  if (ctx.kernels == KernelTier::Reference) return ref::linear_forward(y, x, w, N, I, O);
  gemm_f32(ctx, y, x, w, N, O, I, false, true, 1.0f, 0.0f);
}

void linear_backward(const Context& ctx, float* dx, float* dw, const float* dy, const float* x, const float* w,
                     int64_t N, int64_t I, int64_t O, bool accumulate_dx) {
  if (ctx.kernels == KernelTier::Reference) return ref::linear_backward(dx, dw, dy, x, w, N, I, O, accumulate_dx);
  if (dx) gemm_f32(ctx, dx, dy, w, N, I, O, false, false, 1.0f, accumulate_dx ? 1.0f : 0.0f);
  if (dw) bitlinear_backward_dw(ctx, dw, dy, x, N, O, I);
}

// ---------------------------------------------------------------- residual
// A team only from 2^18 elements (1 MiB): below that the sum takes tens of µs, less than waking a second thread
// and, on a shared machine, far less than waiting for one that lost its core (a 16-row decode step's 24576-element
// residual adds were 48 regions per step).
constexpr int64_t kAddParallelMin = int64_t{1} << 18;

void add_into(const Context& ctx, float* y, const float* x, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::add_into(y, x, n);
  float* __restrict yr = y;
  const float* __restrict xr = x;
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static) if (n >= kAddParallelMin)
  for (int64_t i = 0; i < n; ++i) yr[i] += xr[i];
}

void add(const Context& ctx, float* y, const float* a, const float* b, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::add(y, a, b, n);
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static) if (n >= kAddParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

// ---------------------------------------------------------------- RoPE
namespace {
void rope_rotate(const Context& ctx, float* x, const float* cos, const float* sin, int64_t B, int64_t T,
                 int64_t heads, int64_t d, float sign) {
  const int64_t half = d / 2;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const int64_t t = bt % T;
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* u = x + (bt * heads + h) * d;
      for (int64_t j = 0; j < half; ++j) {
        const float u1 = u[j], u2 = u[j + half], sj = sign * s[j];
        u[j] = u1 * c[j] - u2 * sj;
        u[j + half] = u2 * c[j] + u1 * sj;
      }
    }
  }
}
}  // namespace

void rope_forward(const Context& ctx, float* x, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t heads, int64_t d) {
  if (ctx.kernels == KernelTier::Reference) return ref::rope_forward(x, cos, sin, B, T, heads, d);
  rope_rotate(ctx, x, cos, sin, B, T, heads, d, 1.0f);
}

void rope_backward(const Context& ctx, float* dx, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t heads, int64_t d) {
  if (ctx.kernels == KernelTier::Reference) return ref::rope_backward(dx, cos, sin, B, T, heads, d);
  rope_rotate(ctx, dx, cos, sin, B, T, heads, d, -1.0f);
}

// ---------------------------------------------------------------- squared ReLU
// Branchless (the sign of u is random, so a branch mispredicts) with __restrict so the loops vectorize; the
// pointers are not aliased by any caller (ops.h).
namespace {
// (v + |v|)/2 is exact (2v and the halving do not round) and compiles to and/add/mul: `v > 0 ? v : 0` became a
// branch with a conditional store, which mispredicts on random signs and blocks vectorization.
inline float relu(float v) { return 0.5f * (v + std::fabs(v)); }
}  // namespace

void relu2_forward(const Context& ctx, float* s_out, const float* u_in, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::relu2(s_out, u_in, n);
  float* __restrict s = s_out;
  const float* __restrict u = u_in;
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float r = relu(u[i]);
    s[i] = r * r;
  }
}

void relu2_backward(const Context& ctx, float* du_out, const float* ds_in, const float* u_in, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::relu2_backward(du_out, ds_in, u_in, n);
  float* __restrict du = du_out;
  const float* __restrict ds = ds_in;
  const float* __restrict u = u_in;
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; ++i) du[i] = ds[i] * 2.0f * relu(u[i]);
}

void relu2_glu_forward(const Context& ctx, float* s_out, const float* gate_in, const float* up_in, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::relu2_glu(s_out, gate_in, up_in, n);
  float* __restrict s = s_out;
  const float* __restrict gate = gate_in;
  const float* __restrict up = up_in;
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float r = relu(gate[i]);
    s[i] = r * r * up[i];
  }
}

void relu2_glu_backward(const Context& ctx, float* dgate_out, float* dup_out, const float* ds_in, const float* gate_in,
                        const float* up_in, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::relu2_glu_backward(dgate_out, dup_out, ds_in, gate_in, up_in, n);
  float* __restrict dgate = dgate_out;
  float* __restrict dup = dup_out;
  const float* __restrict ds = ds_in;
  const float* __restrict gate = gate_in;
  const float* __restrict up = up_in;
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float r = relu(gate[i]);
    dgate[i] = ds[i] * up[i] * 2.0f * r;
    dup[i] = ds[i] * r * r;
  }
}

// ---------------------------------------------------------------- embedding
void embedding_forward(float* x, const float* E, const int32_t* ids, int64_t N, int64_t D, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    if (ids[n] < 0 || ids[n] >= V) throw_error("embedding: token ", n, ": found id ", ids[n], ", expected 0..", V - 1);
    std::memcpy(x + n * D, E + static_cast<int64_t>(ids[n]) * D, D * sizeof(float));
  }
}

void embedding_backward(float* dE, const float* dx, const int32_t* ids, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    float* row = dE + static_cast<int64_t>(ids[n]) * D;
    const float* src = dx + n * D;
    for (int64_t j = 0; j < D; ++j) row[j] += src[j];
  }
}

// ---------------------------------------------------------------- cross-entropy + z-loss
double cross_entropy_forward_backward(const Context& ctx, float* dz, const float* z, const int32_t* targets,
                                      int64_t N, int64_t V, double z_loss, float grad_scale) {
  if (ctx.kernels == KernelTier::Reference) {
    return ref::cross_entropy_forward_backward(dz, z, targets, N, V, z_loss, grad_scale);
  }
  int64_t valid = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == -100) continue;
    if (targets[n] < 0 || targets[n] >= V) {
      throw_error("cross_entropy: target ", n, ": found ", targets[n], ", expected 0..", V - 1, " or -100");
    }
    ++valid;
  }
  const double nv = static_cast<double>(std::max<int64_t>(valid, 1));
  std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
  const float zl = static_cast<float>(z_loss);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* zr = z + n * V;
    float* dr = dz ? dz + n * V : nullptr;
    if (targets[n] == -100) {
      if (dr) std::memset(dr, 0, V * sizeof(float));
      continue;
    }
    float m = zr[0];
    for (int64_t j = 1; j < V; ++j) m = std::max(m, zr[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(static_cast<double>(zr[j] - m));
    const double lse = static_cast<double>(m) + std::log(sum);
    row_loss[n] = (lse - zr[targets[n]]) + z_loss * lse * lse;
    if (dr) {
      const float lsef = static_cast<float>(lse);
      const float coef = (1.0f + 2.0f * zl * lsef) * grad_scale / static_cast<float>(nv);
      for (int64_t j = 0; j < V; ++j) dr[j] = std::exp(zr[j] - lsef) * coef;
      dr[targets[n]] -= grad_scale / static_cast<float>(nv);
    }
  }
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) total += row_loss[n];
  return total / nv;
}

// ---------------------------------------------------------------- AdamW
void adamw_update(const Context& ctx, float* p, const float* g, float* mt, float* vt, int64_t n, const AdamWStep& s) {
  if (ctx.kernels == KernelTier::Reference) return ref::adamw_update(p, g, mt, vt, n, s);
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (n > 65536)
  for (int64_t j = 0; j < n; ++j) {
    p[j] *= s.decay;
    mt[j] = s.b1 * mt[j] + (1.0f - s.b1) * g[j];
    vt[j] = s.b2 * vt[j] + (1.0f - s.b2) * g[j] * g[j];
    const float denom = std::sqrt(vt[j]) / s.bc2_sqrt + s.eps;
    p[j] -= s.step_size * (mt[j] / denom);
  }
}

}  // namespace tritter
