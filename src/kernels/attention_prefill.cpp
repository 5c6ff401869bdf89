// Prefill attention over in-batch q, k, v (kernels/attention.h): blocked scores through OpenBLAS, each row's
// softmax and its backward in Highway (cpu/ops_hwy.cpp), the per-row logsumexp saved for the backward, which
// recomputes P. Any AttnMask (its visible range per row).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ref/ref.h"

namespace tritter {

namespace {
struct AttnBlock {
  int64_t i0, i1, j0, j1;
};
// The keys any query of the block [i0, i1) sees: [lo(i0), hi(i1 − 1)] (both bounds grow with i).
AttnBlock attn_block(const AttnShape& s, const AttnMask& mask, int64_t i0) {
  AttnBlock blk{i0, std::min(s.T, i0 + kAttnBlock), 0, 0};
  blk.j0 = mask.lo(blk.i0);
  blk.j1 = mask.hi(blk.i1 - 1, s.T) + 1;
  return blk;
}

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
  if (ctx.kernels == KernelTier::Reference) return ref::attention_forward(out, lse, q, k, v, s);
  const KernelTier tier = ternary_kernel_tier(ctx);  // the Highway body of the row softmax
  TRITTER_CHECK(s.H % s.K == 0, "H=", s.H, " K=", s.K);
  const int64_t G = s.H / s.K;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d)));
  const int threads = std::max(1, ctx.threads);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < s.B * s.K; ++task) {
    const int64_t b = task / s.K, kv = task % s.K;
    const AttnMask mask = s.mask_of(b);
    float* S = scratch + static_cast<int64_t>(omp_get_thread_num()) * 2 * kAttnBlock * s.T;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t h = kv * G + g;
      for (int64_t i0 = 0; i0 < s.T; i0 += kAttnBlock) {
        const AttnBlock blk = attn_block(s, mask, i0);
        const int64_t rows = blk.i1 - blk.i0, nk = blk.j1 - blk.j0;
        attn_scores(S, q, k, s, b, h, kv, blk, scale);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = blk.i0 + r;
          float* Sr = S + r * nk;
          const int64_t lo = mask.lo(i) - blk.j0, hi = mask.hi(i, s.T) - blk.j0;  // visible columns [lo, hi]
          std::fill(Sr, Sr + lo, 0.0f);
          std::fill(Sr + hi + 1, Sr + nk, 0.0f);
          lse[(b * s.H + h) * s.T + i] = cpu::softmax_row_lse(tier, Sr + lo, hi - lo + 1);
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
  if (ctx.kernels == KernelTier::Reference) return ref::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, s);
  const KernelTier tier = ternary_kernel_tier(ctx);
  const int64_t G = s.H / s.K;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.d)));
  const int threads = std::max(1, ctx.threads);
  const int Hd = static_cast<int>(s.H * s.d), Kd = static_cast<int>(s.K * s.d), di = static_cast<int>(s.d);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < s.B * s.K; ++task) {
    const int64_t b = task / s.K, kv = task % s.K;
    const AttnMask mask = s.mask_of(b);
    float* P = scratch + static_cast<int64_t>(omp_get_thread_num()) * 2 * kAttnBlock * s.T;
    float* dS = P + kAttnBlock * s.T;
    for (int64_t t = 0; t < s.T; ++t) {
      std::memset(dk + ((b * s.T + t) * s.K + kv) * s.d, 0, s.d * sizeof(float));
      std::memset(dv + ((b * s.T + t) * s.K + kv) * s.d, 0, s.d * sizeof(float));
    }
    for (int64_t g = 0; g < G; ++g) {
      const int64_t h = kv * G + g;
      for (int64_t i0 = 0; i0 < s.T; i0 += kAttnBlock) {
        const AttnBlock blk = attn_block(s, mask, i0);
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
          const int64_t lo = mask.lo(i) - blk.j0, hi = mask.hi(i, s.T) - blk.j0;
          const float l = lse[(b * s.H + h) * s.T + i];
          const float* o_i = out + ((b * s.T + i) * s.H + h) * s.d;
          const float* do_i = dob + static_cast<int64_t>(r) * Hd;
          float delta = 0.0f;
          for (int64_t j = 0; j < s.d; ++j) delta += do_i[j] * o_i[j];
          float* Pr = P + static_cast<int64_t>(r) * nk;
          float* dSr = dS + static_cast<int64_t>(r) * nk;
          for (float* row : {Pr, dSr}) {
            std::fill(row, row + lo, 0.0f);
            std::fill(row + hi + 1, row + nk, 0.0f);
          }
          cpu::softmax_backward_row(tier, Pr + lo, dSr + lo, hi - lo + 1, l, delta);
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

AttnMask AttnMask::bidirectional(std::optional<int64_t> w) {
  AttnMask m(w);
  m.kind = Kind::Bidirectional;
  return m;
}

AttnMask AttnMask::prefix_lm(int64_t prefix_len, std::optional<int64_t> w) {
  if (prefix_len < 0) throw_error("attention mask: prefix length ", prefix_len, ", expected >= 0");
  AttnMask m(w);
  m.kind = Kind::Prefix;
  m.prefix = prefix_len;
  return m;
}

const char* attn_mask_name(const AttnMask& m) {
  switch (m.kind) {
    case AttnMask::Kind::Causal: return m.window ? "causal+window" : "causal";
    case AttnMask::Kind::Bidirectional: return m.window ? "bidirectional+window" : "bidirectional";
    case AttnMask::Kind::Prefix: return m.window ? "prefix+window" : "prefix";
  }
  return "?";
}

}  // namespace tritter
