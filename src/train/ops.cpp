// Forward/backward pairs of training-spec §4 (see ops.h for the contracts). Plain loops that the compiler
// vectorizes, OpenMP over rows, OpenBLAS for the dense GEMMs; the integer BitLinear paths go through kernels/.
#include "train/ops.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/quantize.h"

namespace tritter::train {

namespace {
int nthreads(const Context& ctx) { return std::max(1, ctx.threads); }

// Σ a·b with 16 interleaved partial sums: a fixed summation order (deterministic) that the compiler vectorizes
// without -ffast-math; the partials are added in a fixed tree at the end.
float sum_products(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; ++k) acc[k] += a[j + k] * b[j + k];
  for (; j < n; ++j) acc[j & 15] += a[j] * b[j];
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) acc[k] += acc[k + w];
  return acc[0];
}
}  // namespace

// ---------------------------------------------------------------- RMSNorm
void rmsnorm_forward(const Context& ctx, float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n,
                     float eps) {
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t row = 0; row < N; ++row) {
    const float* xr = x + row * n;
    float* yr = y + row * n;
    const float r = 1.0f / std::sqrt(sum_products(xr, xr, n) / static_cast<float>(n) + eps);
    rstd[row] = r;
    for (int64_t j = 0; j < n; ++j) yr[j] = xr[j] * r * g[j];
  }
}

void rmsnorm_backward(const Context& ctx, float* dx, float* dg, const float* dy, const float* x, const float* rstd,
                      const float* g, int64_t N, int64_t n) {
  const int threads = static_cast<int>(std::min<int64_t>(nthreads(ctx), std::max<int64_t>(N, 1)));
  std::vector<float> partial(static_cast<size_t>(threads * n), 0.0f);
#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t lo = N * tid / nt, hi = N * (tid + 1) / nt;
    float* dgp = partial.data() + tid * n;
    std::vector<float> dn(static_cast<size_t>(n));
    for (int64_t row = lo; row < hi; ++row) {
      const float* xr = x + row * n;
      const float* dyr = dy + row * n;
      float* dxr = dx + row * n;
      const float r = rstd[row];
      for (int64_t j = 0; j < n; ++j) {
        dn[j] = dyr[j] * g[j];
        dgp[j] += dyr[j] * (xr[j] * r);
      }
      // mean(dn ⊙ n̂) = r · mean(dn ⊙ x)
      const float c = r * sum_products(dn.data(), xr, n) / static_cast<float>(n);
      const float rc = r * c;
      for (int64_t j = 0; j < n; ++j) dxr[j] += r * (dn[j] - xr[j] * rc);
    }
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
    for (int64_t i = 0; i < n; ++i) bw.wt[i] = static_cast<float>(scratch_q[i]) / bw.sigma;
  }
}

void bitinput_set(const Context& ctx, const BitInput& in, const float* x, int64_t N, int64_t I, bool quant) {
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
  if (w.quant) {
    ternary_matmul(ctx, y, in.q, in.s, w.matrix(), N);
  } else {
    linear_forward(y, in.f, w.w, N, w.I, w.O);
  }
}

void bitlinear_backward_dx(const Context& ctx, float* dx, const float* dy, const BitWeight& w, int64_t N,
                           bool accumulate, float* scratch) {
  if (!w.quant || w.wt) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), static_cast<int>(w.I),
                static_cast<int>(w.O), 1.0f, dy, static_cast<int>(w.O), w.quant ? w.wt : w.w, static_cast<int>(w.I),
                accumulate ? 1.0f : 0.0f, dx, static_cast<int>(w.I));
    return;
  }
  if (!accumulate) {
    ternary_matmul_t(ctx, dx, dy, w.matrix(), N);
    return;
  }
  ternary_matmul_t(ctx, scratch, dy, w.matrix(), N);
  const int64_t total = N * w.I;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < total; ++i) dx[i] += scratch[i];
}

void bitlinear_backward_dw(float* dw, const float* dy, const float* xt, int64_t N, int64_t O, int64_t I) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(O), static_cast<int>(I), static_cast<int>(N),
              1.0f, dy, static_cast<int>(O), xt, static_cast<int>(I), 1.0f, dw, static_cast<int>(I));
}

void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t I, int64_t O) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(N), static_cast<int>(O), static_cast<int>(I),
              1.0f, x, static_cast<int>(I), w, static_cast<int>(I), 0.0f, y, static_cast<int>(O));
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t I,
                     int64_t O, bool accumulate_dx) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), static_cast<int>(I), static_cast<int>(O),
              1.0f, dy, static_cast<int>(O), w, static_cast<int>(I), accumulate_dx ? 1.0f : 0.0f, dx,
              static_cast<int>(I));
  bitlinear_backward_dw(dw, dy, x, N, O, I);
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
  rope_rotate(ctx, x, cos, sin, B, T, heads, d, 1.0f);
}

void rope_backward(const Context& ctx, float* dx, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t heads, int64_t d) {
  rope_rotate(ctx, dx, cos, sin, B, T, heads, d, -1.0f);
}

// ---------------------------------------------------------------- attention
namespace {
struct AttnBlock {
  int64_t i0, i1, j0, j1;
};
AttnBlock attn_block(const AttnShape& s, int64_t i0) {
  AttnBlock blk{i0, std::min(s.T, i0 + kAttnBlock), 0, 0};
  blk.j1 = blk.i1;
  blk.j0 = s.window ? std::max<int64_t>(0, i0 - *s.window + 1) : 0;
  return blk;
}
// Visible keys of query i: [lo, i].
int64_t attn_lo(const AttnShape& s, int64_t i) { return s.window ? std::max<int64_t>(0, i - *s.window + 1) : 0; }

// S (rows, nk) = scale · Q_blk K_rangeᵀ for query head h, kv head kv of batch b.
void attn_scores(float* S, const float* q, const float* k, const AttnShape& s, int64_t b, int64_t h, int64_t kv,
                 const AttnBlock& blk, float scale) {
  const int64_t rows = blk.i1 - blk.i0, nk = blk.j1 - blk.j0;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(nk),
              static_cast<int>(s.d), scale, q + ((b * s.T + blk.i0) * s.H + h) * s.d, static_cast<int>(s.H * s.d),
              k + ((b * s.T + blk.j0) * s.K + kv) * s.d, static_cast<int>(s.K * s.d), 0.0f, S, static_cast<int>(nk));
}
}  // namespace

int64_t attention_scratch_floats(const AttnShape& s, int threads) {
  return 2 * kAttnBlock * s.T * std::max(1, threads);
}

void attention_forward(const Context& ctx, float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttnShape& s, float* scratch) {
  TRITTER_CHECK(s.H % s.K == 0, "H=", s.H, " K=", s.K);
  const int64_t G = s.H / s.K;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d)));
  const int threads = nthreads(ctx);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < s.B * s.K; ++task) {
    const int64_t b = task / s.K, kv = task % s.K;
    float* S = scratch + static_cast<int64_t>(omp_get_thread_num()) * 2 * kAttnBlock * s.T;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t h = kv * G + g;
      for (int64_t i0 = 0; i0 < s.T; i0 += kAttnBlock) {
        const AttnBlock blk = attn_block(s, i0);
        const int64_t rows = blk.i1 - blk.i0, nk = blk.j1 - blk.j0;
        attn_scores(S, q, k, s, b, h, kv, blk, scale);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = blk.i0 + r;
          float* Sr = S + r * nk;
          const int64_t lo = attn_lo(s, i) - blk.j0, hi = i - blk.j0;  // visible columns [lo, hi]
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t j = lo; j <= hi; ++j) m = std::max(m, Sr[j]);
          float sum = 0.0f;
          for (int64_t j = 0; j < nk; ++j) {
            const float p = (j >= lo && j <= hi) ? std::exp(Sr[j] - m) : 0.0f;
            Sr[j] = p;
            sum += p;
          }
          const float inv = 1.0f / sum;
          for (int64_t j = lo; j <= hi; ++j) Sr[j] *= inv;
          lse[(b * s.H + h) * s.T + i] = m + std::log(sum);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(s.d),
                    static_cast<int>(nk), 1.0f, S, static_cast<int>(nk), v + ((b * s.T + blk.j0) * s.K + kv) * s.d,
                    static_cast<int>(s.K * s.d), 0.0f, out + ((b * s.T + blk.i0) * s.H + h) * s.d,
                    static_cast<int>(s.H * s.d));
      }
    }
  }
}

void attention_backward(const Context& ctx, float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse, const AttnShape& s,
                        float* scratch) {
  const int64_t G = s.H / s.K;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d)));
  const int threads = nthreads(ctx);
  const int Hd = static_cast<int>(s.H * s.d), Kd = static_cast<int>(s.K * s.d), di = static_cast<int>(s.d);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < s.B * s.K; ++task) {
    const int64_t b = task / s.K, kv = task % s.K;
    float* P = scratch + static_cast<int64_t>(omp_get_thread_num()) * 2 * kAttnBlock * s.T;
    float* dS = P + kAttnBlock * s.T;
    for (int64_t t = 0; t < s.T; ++t) {
      std::memset(dk + ((b * s.T + t) * s.K + kv) * s.d, 0, s.d * sizeof(float));
      std::memset(dv + ((b * s.T + t) * s.K + kv) * s.d, 0, s.d * sizeof(float));
    }
    for (int64_t g = 0; g < G; ++g) {
      const int64_t h = kv * G + g;
      for (int64_t i0 = 0; i0 < s.T; i0 += kAttnBlock) {
        const AttnBlock blk = attn_block(s, i0);
        const int rows = static_cast<int>(blk.i1 - blk.i0), nk = static_cast<int>(blk.j1 - blk.j0);
        const float* qb = q + ((b * s.T + blk.i0) * s.H + h) * s.d;
        const float* dob = dout + ((b * s.T + blk.i0) * s.H + h) * s.d;
        const float* kb = k + ((b * s.T + blk.j0) * s.K + kv) * s.d;
        const float* vb = v + ((b * s.T + blk.j0) * s.K + kv) * s.d;
        attn_scores(P, q, k, s, b, h, kv, blk, scale);
        // dP = dO V_rangeᵀ (rows, nk)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, nk, di, 1.0f, dob, Hd, vb, Kd, 0.0f, dS, nk);
        for (int r = 0; r < rows; ++r) {
          const int64_t i = blk.i0 + r;
          const int64_t lo = attn_lo(s, i) - blk.j0, hi = i - blk.j0;
          const float l = lse[(b * s.H + h) * s.T + i];
          const float* o_i = out + ((b * s.T + i) * s.H + h) * s.d;
          const float* do_i = dob + static_cast<int64_t>(r) * Hd;
          float delta = 0.0f;
          for (int64_t j = 0; j < s.d; ++j) delta += do_i[j] * o_i[j];
          float* Pr = P + static_cast<int64_t>(r) * nk;
          float* dSr = dS + static_cast<int64_t>(r) * nk;
          for (int64_t j = 0; j < nk; ++j) {
            const bool vis = j >= lo && j <= hi;
            const float p = vis ? std::exp(Pr[j] - l) : 0.0f;
            Pr[j] = p;
            dSr[j] = vis ? p * (dSr[j] - delta) : 0.0f;
          }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, di, nk, scale, dS, nk, kb, Kd, 0.0f,
                    dq + ((b * s.T + blk.i0) * s.H + h) * s.d, Hd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, di, rows, scale, dS, nk, qb, Hd, 1.0f,
                    dk + ((b * s.T + blk.j0) * s.K + kv) * s.d, Kd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, di, rows, 1.0f, P, nk, dob, Hd, 1.0f,
                    dv + ((b * s.T + blk.j0) * s.K + kv) * s.d, Kd);
      }
    }
  }
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
  float* __restrict s = s_out;
  const float* __restrict u = u_in;
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float r = relu(u[i]);
    s[i] = r * r;
  }
}

void relu2_backward(const Context& ctx, float* du_out, const float* ds_in, const float* u_in, int64_t n) {
  float* __restrict du = du_out;
  const float* __restrict ds = ds_in;
  const float* __restrict u = u_in;
#pragma omp parallel for simd num_threads(nthreads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; ++i) du[i] = ds[i] * 2.0f * relu(u[i]);
}

void relu2_glu_forward(const Context& ctx, float* s_out, const float* gate_in, const float* up_in, int64_t n) {
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

}  // namespace tritter::train
