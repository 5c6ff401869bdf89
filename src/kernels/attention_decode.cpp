// Cached attention (kernels/attention.h): queries against KV rows with an online softmax, the block update
// compiled per ISA with GCC vector extensions and chosen by the kernel tier.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

#include "kernels/ref/ref.h"
#include "kernels/ternary_matmul.h"  // ternary_kernel_tier: the same SIMD choice as the matmuls

namespace tritter {

namespace {

// One query row against n consecutive visible keys kb, vb (n, d): the online-softmax update of its running max m,
// sum l and accumulator ar (d). Compiled per ISA by the wrappers below (always_inline takes the caller's target).
// GCC vector extensions (not intrinsics): 16 floats, unaligned; zmm on the AVX-512 wrapper, 2×ymm or 4×xmm
// elsewhere. Lane k of the dot product sums elements ≡ k (mod 16), then a fixed tree — dot_f32's order.
typedef float F32x16 __attribute__((vector_size(64), aligned(4)));

__attribute__((always_inline)) inline void load16(F32x16& v, const float* p) { __builtin_memcpy(&v, p, sizeof v); }

__attribute__((always_inline)) inline float dot16(const float* a, const float* b, int64_t n) {
  F32x16 acc = {}, va, vb;
  for (int64_t i = 0; i < n; i += 16) {
    load16(va, a + i);
    load16(vb, b + i);
    acc += va * vb;
  }
  float lanes[16];
  __builtin_memcpy(lanes, &acc, sizeof lanes);
  for (int w = 8; w >= 1; w /= 2) {
    for (int k = 0; k < w; ++k) lanes[k] += lanes[k + w];
  }
  return lanes[0];
}

// Lane tree of dot16: lanes[k] += lanes[k + w] for w = 8, 4, 2, 1.
__attribute__((always_inline)) inline float reduce16(const F32x16& acc) {
  float lanes[16];
  __builtin_memcpy(lanes, &acc, sizeof lanes);
  for (int w = 8; w >= 1; w /= 2) {
    for (int k = 0; k < w; ++k) lanes[k] += lanes[k + w];
  }
  return lanes[0];
}

// block_update_body for head_dim = 16·C known at compile time: q and the C accumulators live in registers and
// the value loop runs keys outermost, so the C chains are independent (instruction-level parallelism). The
// arithmetic per element is the same sequence as the generic loops, so results are bit-identical to them.
template <int C>
__attribute__((always_inline)) inline void block_update_fixed(const float* qr, const float* kb, const float* vb,
                                                              int64_t n, float inv_sqrt_d, float* s, float* ar,
                                                              float* m, float* l) {
  constexpr int64_t d = 16 * C;
  F32x16 q[C], a[C], t;
  for (int c = 0; c < C; ++c) load16(q[c], qr + 16 * c);
  float mb = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    F32x16 acc = {};
    for (int c = 0; c < C; ++c) {
      load16(t, kb + j * d + 16 * c);
      acc += q[c] * t;
    }
    s[j] = reduce16(acc) * inv_sqrt_d;
    mb = std::max(mb, s[j]);
  }
  const float mnew = std::max(*m, mb);
  const float alpha = std::exp(*m - mnew);
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - mnew);
    sum += s[j];
  }
  for (int c = 0; c < C; ++c) {
    load16(a[c], ar + 16 * c);
    a[c] *= alpha;
  }
  for (int64_t j = 0; j < n; ++j) {
    for (int c = 0; c < C; ++c) {
      load16(t, vb + j * d + 16 * c);
      a[c] += s[j] * t;
    }
  }
  for (int c = 0; c < C; ++c) __builtin_memcpy(ar + 16 * c, &a[c], sizeof a[c]);
  *l = *l * alpha + sum;
  *m = mnew;
}

__attribute__((always_inline)) inline void block_update_body(const float* qr, const float* kb, const float* vb,
                                                             int64_t n, int64_t d, float inv_sqrt_d, float* s,
                                                             float* ar, float* m, float* l) {
  switch (d) {  // the common head dims
    case 64: return block_update_fixed<4>(qr, kb, vb, n, inv_sqrt_d, s, ar, m, l);
    case 96: return block_update_fixed<6>(qr, kb, vb, n, inv_sqrt_d, s, ar, m, l);
    case 128: return block_update_fixed<8>(qr, kb, vb, n, inv_sqrt_d, s, ar, m, l);
    default: break;
  }
  const bool vec = d % 16 == 0;
  float mb = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    s[j] = (vec ? dot16(qr, kb + j * d, d) : dot_f32(qr, kb + j * d, d)) * inv_sqrt_d;
    mb = std::max(mb, s[j]);
  }
  const float mnew = std::max(*m, mb);
  const float alpha = std::exp(*m - mnew);
  float sum = 0.0f;
  if (vec) {
    for (int64_t x = 0; x < d; x += 16) {
      F32x16 a, v;
      load16(a, ar + x);
      a *= alpha;
      for (int64_t j = 0; j < n; ++j) {
        if (x == 0) s[j] = std::exp(s[j] - mnew);  // p_j, computed once
        load16(v, vb + j * d + x);
        a += s[j] * v;
      }
      __builtin_memcpy(ar + x, &a, sizeof a);
    }
    for (int64_t j = 0; j < n; ++j) sum += s[j];
  } else {
    for (int64_t x = 0; x < d; ++x) ar[x] *= alpha;
    for (int64_t j = 0; j < n; ++j) {
      const float pj = std::exp(s[j] - mnew);
      sum += pj;
      const float* vr = vb + j * d;
      for (int64_t x = 0; x < d; ++x) ar[x] += pj * vr[x];
    }
  }
  *l = *l * alpha + sum;
  *m = mnew;
}

#define TRITTER_ATTN_VARIANT(SUFFIX, TARGET)                                                                   \
  TARGET void block_update_##SUFFIX(const float* qr, const float* kb, const float* vb, int64_t n, int64_t d,   \
                                    float inv_sqrt_d, float* s, float* ar, float* m, float* l) {               \
    block_update_body(qr, kb, vb, n, d, inv_sqrt_d, s, ar, m, l);                                              \
  }
TRITTER_ATTN_VARIANT(generic, )
TRITTER_ATTN_VARIANT(avx2, __attribute__((target("avx2,fma,f16c,bmi2"))))
TRITTER_ATTN_VARIANT(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,bmi2"))))
#undef TRITTER_ATTN_VARIANT

using BlockUpdate = void (*)(const float*, const float*, const float*, int64_t, int64_t, float, float*, float*,
                             float*, float*);

}  // namespace

void attention_cached(const Context& ctx, float* o, const float* q, const KvRows& kv_rows, int64_t pos0, int64_t T,
                      const CachedAttnShape& shape) {
  if (ctx.kernels == KernelTier::Reference) return ref::attention_cached(o, q, kv_rows, pos0, T, shape);
  const int64_t H = shape.H, K = shape.K, G = H / K, d = shape.d, n = pos0 + T;
  const AttnMask& mask = shape.mask;
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t ntiles = (T + kAttnQueryTile - 1) / kAttnQueryTile;
  const int64_t items = K * ntiles;
  // Small problems (short contexts, tiny models) run on one thread: waking a team costs more than it saves, and
  // far more on a loaded machine. Work ≈ query rows × visible keys × d, both dot products and updates.
  const int64_t visible = mask.hi(n - 1, n) - mask.lo(pos0) + 1;
  const double work = static_cast<double>(T) * H * visible * d * 2;
  const int threads = work < double(1 << 19) ? 1 : static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(ctx.threads, items)));

  const KernelTier tier = ternary_kernel_tier(ctx);  // the SIMD level the kernels run at; same choice here
  const BlockUpdate block_update = tier == KernelTier::Avx512Vnni ? block_update_avx512
                                   : tier == KernelTier::Avx2     ? block_update_avx2
                                                                  : block_update_generic;

#pragma omp parallel num_threads(threads)
  {
    const int64_t rows_max = kAttnQueryTile * G;
    std::vector<float> kb(kAttnKeyBlock * d), vb(kAttnKeyBlock * d), s(kAttnKeyBlock);
    std::vector<float> m(rows_max), l(rows_max), acc(rows_max * d);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t kv = item / ntiles, tile = item % ntiles;
      const int64_t i0 = tile * kAttnQueryTile, i1 = std::min(T, i0 + kAttnQueryTile);
      const int64_t rows = (i1 - i0) * G;
      std::fill(m.begin(), m.begin() + rows, -std::numeric_limits<float>::infinity());
      std::fill(l.begin(), l.begin() + rows, 0.0f);
      std::fill(acc.begin(), acc.begin() + rows * d, 0.0f);
      // Keys any query of the tile sees: [lo, hi].
      const int64_t hi = mask.hi(pos0 + i1 - 1, n);
      const int64_t lo = mask.lo(pos0 + i0);
      for (int64_t b0 = lo / kAttnKeyBlock * kAttnKeyBlock; b0 <= hi; b0 += kAttnKeyBlock) {
        const int64_t j0 = std::max(b0, lo), j1 = std::min(b0 + kAttnKeyBlock - 1, hi);
        const float* kp = kb.data();
        const float* vp = vb.data();
        kv_rows.fetch(kv_rows.store, kv_rows.layer, static_cast<int>(kv), j0, j1 - j0 + 1, kb.data(), vb.data(), &kp, &vp);
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t p = pos0 + i;
          const int64_t rlo = std::max(j0, mask.lo(p)), rhi = std::min(j1, mask.hi(p, n));
          if (rlo > rhi) continue;  // this block holds nothing this query sees: no rescale either
          for (int64_t g = 0; g < G; ++g) {
            const int64_t r = (i - i0) * G + g;
            const float* qr = q + (i * H + kv * G + g) * d;
            block_update(qr, kp + (rlo - j0) * d, vp + (rlo - j0) * d, rhi - rlo + 1, d, inv_sqrt_d,
                         s.data(), acc.data() + r * d, &m[r], &l[r]);
          }
        }
      }
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t g = 0; g < G; ++g) {
          const int64_t r = (i - i0) * G + g;
          float* out = o + (i * H + kv * G + g) * d;
          const float inv = 1.0f / l[r];
          for (int64_t x = 0; x < d; ++x) out[x] = acc[r * d + x] * inv;
        }
      }
    }
  }
}

}  // namespace tritter
