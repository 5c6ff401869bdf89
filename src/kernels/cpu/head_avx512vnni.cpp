// AVX-512 VNNI body of the int8 LM head (kernels/head.h): exact int32 sums Σ w·x of int8 weight rows and int8
// activation rows, as a register-tiled GEMM over NT tokens × NV vocabulary rows, so a step of N rows reads each
// weight row once (from DRAM) and reuses it from L1 for every token.
//
// vpdpbusd multiplies u8 by s8: the weight's sign bit is flipped (w ^ 0x80 = w + 128 as u8) and 128·Σx subtracted
// after the sum, exactly (the biased sum stays below 2^31 for D < 65536: 255·127 per product). A group of 4 rows × 4 tokens keeps 16 independent accumulators, 8 loads per 16 vpdpbusd.
// The ragged end of a row (D not a multiple of 64) is a masked load: zero activations add nothing. GCC's code for
// the plain loop (one dot product and one horizontal sum per (row, token)) ran at about 38 GMAC/s per thread.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"

#if defined(__x86_64__)
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: _mm512_undefined_* placeholders (as in matmul)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,bmi2")

namespace tritter::cpu {
namespace {

// out[v][n] = Σ_i (w[v·D + i] + 128)·x[n·D + i] for NV rows at w and NT tokens at x. pf (not null): the same rows
// of the next group, prefetched a line per row per 64 columns while this one computes (DRAM-resident heads).
template <int NV, int NT>
inline void tile(int32_t (*out)[NT], const int8_t* w, const int8_t* x, int64_t D, const int8_t* pf) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  // Every loop over the tile unrolled, so the accumulators live in registers (GCC kept a rolled loop's array in
  // memory and stored all 16 accumulators every step: a third of the speed).
  __m512i acc[NV][NT];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) acc[v][n] = _mm512_setzero_si512();
  for (int64_t i = 0; i < D; i += 64) {
    const __mmask64 m = D - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (D - i)) - 1;
    if (pf) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(pf + v * D + i), _MM_HINT_T1);
    }
    __m512i xs[NT];
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) xs[n] = _mm512_maskz_loadu_epi8(m, x + n * D + i);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const __m512i wu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, w + v * D + i), flip);
#pragma GCC unroll 8
      for (int n = 0; n < NT; ++n) acc[v][n] = _mm512_dpbusd_epi32(acc[v][n], wu, xs[n]);
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) out[v][n] = _mm512_reduce_add_epi32(acc[v][n]);
}

template <int NV, int NT>
inline void block(float* logits, const int8_t* hq, const float* hs, const int32_t* hsum, int64_t n0, const int8_t* w,
                  const float* row_scale, int64_t v0, int64_t V, int64_t D, int64_t ahead) {
  int32_t out[NV][NT];
  tile<NV, NT>(out, w + v0 * D, hq + n0 * D, D, ahead ? w + (v0 + ahead) * D : nullptr);
  for (int v = 0; v < NV; ++v) {
    for (int n = 0; n < NT; ++n) {  // the reference epilogue: (float)Σw·x · row_scale / hs
      const int32_t sum = out[v][n] - 128 * hsum[n0 + n];
      logits[(n0 + n) * V + v0 + v] = static_cast<float>(sum) * row_scale[v0 + v] / hs[n0 + n];
    }
  }
}

// Rows v0 .. v1−1 for tokens n0 .. n0+NT−1, NV rows at a time, then one; `ahead` rows further on are prefetched
// (0: none).
template <int NT>
void tokens(float* logits, const int8_t* hq, const float* hs, const int32_t* hsum, int64_t n0, const int8_t* w,
            const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D, int64_t ahead) {
  constexpr int NV = NT == 1 ? 8 : 4;  // one token: more rows in flight (independent accumulator chains)
  int64_t v = v0;
  for (; v + NV <= v1; v += NV) block<NV, NT>(logits, hq, hs, hsum, n0, w, row_scale, v, V, D, ahead);
  for (; v < v1; ++v) block<1, NT>(logits, hq, hs, hsum, n0, w, row_scale, v, V, D, ahead);
}

}  // namespace

void head_i8_rows_avx512vnni(float* logits, const int8_t* hq, const float* hs, const int32_t* hsum, int64_t N,
                             const int8_t* w, const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D) {
  // Rows in groups of kGroup (24 KB of weights at D = 1536, kept in L1 across the token groups), tokens four at a
  // time; the first pass over a group prefetches the next group (inside [v0, v1)).
  constexpr int64_t kGroup = 16;
  for (int64_t g0 = v0; g0 < v1; g0 += kGroup) {
    const int64_t g1 = std::min(v1, g0 + kGroup);
    const int64_t ahead = g1 + (g1 - g0) <= v1 ? kGroup : 0;
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) tokens<4>(logits, hq, hs, hsum, n, w, row_scale, g0, g1, V, D, n == 0 ? ahead : 0);
    if (n + 2 <= N) {
      tokens<2>(logits, hq, hs, hsum, n, w, row_scale, g0, g1, V, D, n == 0 ? ahead : 0);
      n += 2;
    }
    if (n < N) tokens<1>(logits, hq, hs, hsum, n, w, row_scale, g0, g1, V, D, n == 0 ? ahead : 0);
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (the VNNI tier is refused there), kept linkable.
namespace tritter::cpu {
void head_i8_rows_avx512vnni(float* logits, const int8_t* hq, const float* hs, const int32_t*, int64_t N,
                             const int8_t* w, const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D) {
  head_i8_rows_avx2(logits, hq, hs, N, w, row_scale, v0, v1, V, D);
}
}  // namespace tritter::cpu
#endif
