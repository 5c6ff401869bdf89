// AVX2 body of the int8 LM head (kernels/head.h): exact int32 sums Σ w·x of int8 weight rows and int8 activation
// rows, as a register-tiled GEMM over NT tokens × NV vocabulary rows, so a step of N rows reads each weight row
// once (from DRAM) and reuses it from L1 for every token.
//
// AVX2 has no u8 × s8 → i32 dot (vpdpbusd). vpmaddubsw (u8 × s8 → i16 pairs) saturates on (w + 128)·x, so the
// sign moves to the activation instead: |w| as u8 (|−128| = 128 fits) times sign(w)·x (vpsignb; x ∈ [−127, 127]
// from the absmax quantizer, so the negation never overflows). A pair is then ≤ 2·128·127 = 32512 < 2^15 — exact —
// and vpmaddwd by 1 widens it to int32 at once. 4 vector ops per 32 MACs per (row, token): vpsignb, vpmaddubsw,
// vpmaddwd, vpaddd; |w| once per weight load, shared by the tile's tokens.
// The plain loop GCC made of the generic form (u8·s8 widened to int32) ran at ~7 GMAC/s per core on Zen 3, so the
// head cost ~18 ms per row of a 700M-shape decode step and grew linearly with the rows.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx2,fma,bmi2")

namespace tritter::cpu {
namespace {

// out[v][n] = Σ_i w[v·D + i]·x[n·D + i] for NV rows at w and NT tokens at x. pf (not null): the same rows of the
// next group, prefetched a line per row per 64 columns while this one computes (DRAM-resident heads).
template <int NV, int NT>
inline void tile(int32_t (*out)[NT], const int8_t* w, const int8_t* x, int64_t D, const int8_t* pf) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[NV][NT];  // loops over the tile unrolled: the accumulators stay in registers
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) acc[v][n] = _mm256_setzero_si256();
  const int64_t D32 = D / 32 * 32;
  for (int64_t i = 0; i < D32; i += 32) {
    if (pf && i % 64 == 0) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(pf + v * D + i), _MM_HINT_T1);
    }
    __m256i xs[NT];
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) xs[n] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + n * D + i));
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * D + i));
      const __m256i aw = _mm256_abs_epi8(wv);  // |w| as u8 (0x80 → 128)
#pragma GCC unroll 8
      for (int n = 0; n < NT; ++n) {
        const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xs[n], wv));
        acc[v][n] = _mm256_add_epi32(acc[v][n], _mm256_madd_epi16(p, ones));
      }
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) {
      const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[v][n]), _mm256_extracti128_si256(acc[v][n], 1));
      const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
      int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1)));
      for (int64_t i = D32; i < D; ++i) sum += static_cast<int32_t>(w[v * D + i]) * x[n * D + i];  // ragged tail
      out[v][n] = sum;
    }
  }
}

template <int NV, int NT>
inline void block(float* logits, const int8_t* hq, const float* hs, int64_t n0, const int8_t* w,
                  const float* row_scale, int64_t v0, int64_t V, int64_t D, int64_t ahead) {
  int32_t out[NV][NT];
  tile<NV, NT>(out, w + v0 * D, hq + n0 * D, D, ahead ? w + (v0 + ahead) * D : nullptr);
  for (int v = 0; v < NV; ++v) {
    for (int n = 0; n < NT; ++n) {  // the reference epilogue: (float)acc · row_scale / hs
      logits[(n0 + n) * V + v0 + v] = static_cast<float>(out[v][n]) * row_scale[v0 + v] / hs[n0 + n];
    }
  }
}

// Rows v0 .. v1−1 for tokens n0 .. n0+NT−1, NV rows at a time, then one; `ahead` rows further on are prefetched
// (0: none).
template <int NT>
void tokens(float* logits, const int8_t* hq, const float* hs, int64_t n0, const int8_t* w, const float* row_scale,
            int64_t v0, int64_t v1, int64_t V, int64_t D, int64_t ahead) {
  constexpr int NV = NT == 1 ? 8 : 4;  // one token: more rows in flight (independent accumulator chains)
  int64_t v = v0;
  for (; v + NV <= v1; v += NV) block<NV, NT>(logits, hq, hs, n0, w, row_scale, v, V, D, ahead);
  for (; v < v1; ++v) block<1, NT>(logits, hq, hs, n0, w, row_scale, v, V, D, ahead);
}

}  // namespace

void head_i8_rows_avx2(float* logits, const int8_t* hq, const float* hs, int64_t N, const int8_t* w,
                       const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D) {
  // Rows in groups of kGroup (24 KB of weights at D = 1536, kept in L1 across the token pairs), tokens two at a
  // time; the first pass over a group prefetches the next group (inside [v0, v1)).
  constexpr int64_t kGroup = 16;
  for (int64_t g0 = v0; g0 < v1; g0 += kGroup) {
    const int64_t g1 = std::min(v1, g0 + kGroup);
    const int64_t ahead = g1 + (g1 - g0) <= v1 ? kGroup : 0;
    int64_t n = 0;
    for (; n + 2 <= N; n += 2) tokens<2>(logits, hq, hs, n, w, row_scale, g0, g1, V, D, n == 0 ? ahead : 0);
    if (n < N) tokens<1>(logits, hq, hs, n, w, row_scale, g0, g1, V, D, n == 0 ? ahead : 0);
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (the AVX2 tier is refused there), kept linkable.
namespace tritter::cpu {
void head_i8_rows_avx2(float* logits, const int8_t* hq, const float* hs, int64_t N, const int8_t* w,
                       const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D) {
  for (int64_t v = v0; v < v1; ++v) {
    for (int64_t n = 0; n < N; ++n) {
      int32_t acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += static_cast<int32_t>(w[v * D + i]) * hq[n * D + i];
      logits[n * V + v] = static_cast<float>(acc) * row_scale[v] / hs[n];
    }
  }
}
}  // namespace tritter::cpu
#endif
