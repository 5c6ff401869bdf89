// AVX2 body of the T16 ternary matmul (for CPUs without AVX-512 VNNI): each 16-row band is run as two 8-row
// halves (32 bytes of every tile); vpmaddubsw multiplies the unsigned codes (w+1) by 4 broadcast int8 activations
// into int16 pairs that accumulate in int16 for 8 tiles (32 products of |·| ≤ 512: ≤ 16384, no saturation), then
// vpmaddwd widens them to int32 row sums. Up to kNB tokens share each unpacked half tile. Σx is subtracted once.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"
#include "kernels/ref/ref.h"

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx2,fma,bmi2")

namespace tritter::cpu {
namespace {

constexpr int kNB = 4;      // tokens per register tile
constexpr int kNC = 64;     // tokens per stack-staged chunk
constexpr int kFlush = 8;   // tiles accumulated in int16 before widening

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <int NB>
inline void half_step(__m256i* acc16, const uint8_t* half_tile, const int8_t* const* x, int64_t off) {
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half_tile));
  const __m256i w0 = _mm256_and_si256(p, m3);
  const __m256i w1 = _mm256_and_si256(_mm256_srli_epi16(p, 2), m3);
  const __m256i w2 = _mm256_and_si256(_mm256_srli_epi16(p, 4), m3);
  const __m256i w3 = _mm256_and_si256(_mm256_srli_epi16(p, 6), m3);
#pragma GCC unroll 8
  for (int n = 0; n < NB; ++n) {
    const int8_t* xp = x[n] + off;
    const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(xp)), _mm256_maddubs_epi16(w1, bcast4(xp + 4)));
    const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast4(xp + 8)), _mm256_maddubs_epi16(w3, bcast4(xp + 12)));
    acc16[n] = _mm256_add_epi16(acc16[n], _mm256_add_epi16(s01, s23));
  }
}

template <int NB>
void half_tokens(const T16Args& a, int64_t rb, int h, int64_t n0, const int32_t* xsum, const int8_t (*xtail)[16],
                 int64_t chunk0) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, O = w.rows, ncb = (I + 15) / 16, nfull = I / 16;
  const int rows = static_cast<int>(std::min<int64_t>(8, O - rb * 16 - 8 * h));
  if (rows <= 0) return;
  const uint8_t* band = w.data + rb * ncb * kTernaryTileBytes + 32 * h;
  const int8_t* x[NB];
  for (int n = 0; n < NB; ++n) x[n] = a.xq + (chunk0 + n0 + n) * I;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc16[NB], acc32[NB];
  for (int n = 0; n < NB; ++n) acc16[n] = acc32[n] = _mm256_setzero_si256();
  auto flush = [&] {
    for (int n = 0; n < NB; ++n) {
      acc32[n] = _mm256_add_epi32(acc32[n], _mm256_madd_epi16(acc16[n], ones));
      acc16[n] = _mm256_setzero_si256();
    }
  };
  int64_t cb = 0;
  while (cb < nfull) {
    const int64_t end = std::min(nfull, cb + kFlush);
    for (; cb < end; ++cb) half_step<NB>(acc16, band + cb * kTernaryTileBytes, x, cb * 16);
    flush();
  }
  if (nfull < ncb) {
    const int8_t* xt[NB];
    for (int n = 0; n < NB; ++n) xt[n] = xtail[n0 + n];
    half_step<NB>(acc16, band + nfull * kTernaryTileBytes, xt, 0);
    flush();
  }
  for (int n = 0; n < NB; ++n) {
    const __m256i s = _mm256_sub_epi32(acc32[n], _mm256_set1_epi32(xsum[n0 + n]));
    const int64_t tok = chunk0 + n0 + n;
    const int64_t out = tok * O + rb * 16 + 8 * h;
    if (a.acc != nullptr) {
      alignas(32) int32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), s);
      std::memcpy(a.acc + out, tmp, sizeof(int32_t) * static_cast<size_t>(rows));
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, _mm256_div_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(a.x_scale[tok] * w.sigma)));
      std::memcpy(a.y + out, tmp, sizeof(float) * static_cast<size_t>(rows));
    }
  }
}

// GEMV (one token): both halves of each tile at once so the 4 activation broadcasts serve 16 rows, two tiles per
// step into separate int16 accumulators (4 independent chains), widened every kFlush tiles.
void band_gemv(const T16Args& a, int64_t rb, const int32_t* xsum, const int8_t (*xtail)[16], int64_t chunk0) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, O = w.rows, ncb = (I + 15) / 16, nfull = I / 16;
  const uint8_t* band = w.data + rb * ncb * kTernaryTileBytes;
  const int8_t* x = a.xq + chunk0 * I;
  const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  __m256i acc32[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  __m256i acc16[4];
  auto step = [&](const uint8_t* tile, const int8_t* xp, __m256i* acc) {
    const __m256i x0 = bcast4(xp), x1 = bcast4(xp + 4), x2 = bcast4(xp + 8), x3 = bcast4(xp + 12);
    for (int h = 0; h < 2; ++h) {
      const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile + 32 * h));
      const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(p, m3), x0),
                                           _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 2), m3), x1));
      const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 4), m3), x2),
                                           _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 6), m3), x3));
      acc[h] = _mm256_add_epi16(acc[h], _mm256_add_epi16(s01, s23));
    }
  };
  auto flush = [&] {
    for (int k = 0; k < 4; ++k) {
      acc32[k & 1] = _mm256_add_epi32(acc32[k & 1], _mm256_madd_epi16(acc16[k], ones));
      acc16[k] = _mm256_setzero_si256();
    }
  };
  for (int k = 0; k < 4; ++k) acc16[k] = _mm256_setzero_si256();
  int64_t cb = 0;
  while (cb + 2 <= nfull) {
    const int64_t end = std::min(nfull, cb + kFlush) & ~int64_t{1};
    for (; cb + 2 <= end; cb += 2) {
      step(band + cb * kTernaryTileBytes, x + cb * 16, acc16);
      step(band + (cb + 1) * kTernaryTileBytes, x + (cb + 1) * 16, acc16 + 2);
    }
    flush();
  }
  if (cb < nfull) step(band + cb * kTernaryTileBytes, x + cb * 16, acc16);
  if (nfull < ncb) step(band + nfull * kTernaryTileBytes, xtail[0], acc16 + 2);
  flush();
  const int rows = static_cast<int>(std::min<int64_t>(16, O - rb * 16));
  alignas(32) int32_t sums[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(sums), _mm256_sub_epi32(acc32[0], _mm256_set1_epi32(xsum[0])));
  _mm256_store_si256(reinterpret_cast<__m256i*>(sums + 8), _mm256_sub_epi32(acc32[1], _mm256_set1_epi32(xsum[0])));
  const int64_t out = chunk0 * O + rb * 16;
  for (int r = 0; r < rows; ++r) {
    if (a.acc != nullptr) {
      a.acc[out + r] = sums[r];
    } else {
      a.y[out + r] = ref::ternary_epilogue(sums[r], a.x_scale[chunk0], w.sigma);
    }
  }
}

template <int NB>
void half_tokens_n(const T16Args& a, int64_t rb, int h, int64_t n0, int nb, const int32_t* xsum,
                   const int8_t (*xtail)[16], int64_t chunk0) {
  if constexpr (NB > 1) {
    if (nb < NB) return half_tokens_n<NB - 1>(a, rb, h, n0, nb, xsum, xtail, chunk0);
  }
  half_tokens<NB>(a, rb, h, n0, xsum, xtail, chunk0);
}

}  // namespace

void t16_matmul_avx2(const T16Args& a, int64_t rb_begin, int64_t rb_end) {
  const int64_t I = a.w->cols, nfull = I / 16;
  int32_t xsum[kNC];
  alignas(32) int8_t xtail[kNC][16];
  for (int64_t c0 = 0; c0 < a.N; c0 += kNC) {
    const int64_t nc = std::min<int64_t>(kNC, a.N - c0);
    for (int64_t n = 0; n < nc; ++n) {
      const int8_t* x = a.xq + (c0 + n) * I;
      int32_t s = 0;
      for (int64_t i = 0; i < I; ++i) s += x[i];
      xsum[n] = s;
      std::memset(xtail[n], 0, 16);
      std::memcpy(xtail[n], x + nfull * 16, static_cast<size_t>(I - nfull * 16));
    }
    for (int64_t rb = rb_begin; rb < rb_end; ++rb) {
      if (nc == 1) {
        band_gemv(a, rb, xsum, xtail, c0);
        continue;
      }
      for (int h = 0; h < 2; ++h) {
        int64_t n0 = 0;
        for (; n0 + kNB <= nc; n0 += kNB) half_tokens<kNB>(a, rb, h, n0, xsum, xtail, c0);
        if (n0 < nc) half_tokens_n<kNB>(a, rb, h, n0, static_cast<int>(nc - n0), xsum, xtail, c0);
      }
    }
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (ternary_kernel_tier refuses the tier), kept linkable.
namespace tritter::cpu {
void t16_matmul_avx2(const T16Args& a, int64_t rb_begin, int64_t rb_end) { t16_matmul_scalar(a, rb_begin, rb_end); }
}  // namespace tritter::cpu
#endif
