// AVX2 body of the T16 ternary matmul (for CPUs without AVX-512 VNNI). vpmaddubsw multiplies the unsigned codes
// (w+1 ∈ {0,1,2}) by broadcast groups of 4 int8 activations into int16 pairs; those accumulate in int16 for a run
// of tiles (bounds below), then vpmaddwd by 1 widens them to int32 row sums. Σx is subtracted once per token.
//
// GEMV (N = 1): both 8-row halves of each tile per step, so the 4 activation broadcasts serve 16 rows. The unpack
// uses one shift per half: p & 3, p & 0xC, (p >> 4) & 3, (p >> 4) & 0xC; the 0xC terms are 4·code, kept in their
// own accumulator and shifted back (>> 2, exact) in the epilogue. 26 vector ops per 256 weights instead of 30.
// GEMM (N ≥ 2): each unpacked tile feeds kNB = 4 tokens × 2 halves (8 int16 accumulators); every vpmaddubsw is
// followed by just its vpaddw, and one broadcast serves both halves. The weights of a band (64·⌈I/16⌉ bytes) are
// read from DRAM once and reused from L1/L2 by every group of 4 tokens. In L2 this runs at ~110-120 GMAC/s per
// core, 75-80 % of the vpmaddubsw+vpaddw peak (151 GMAC/s) measured on the 2-core Zen 3 EPYC.
//
// A T20 matrix is decoded band by band into T16 (t20_band_to_t16_avx2) and runs the same code: without vpdpbusd
// the T20 form's pairs of products do not fit vpmaddubsw's int16 (255·127·2 > 2^15), and a per-digit extraction
// costs more than the 20 % of bytes it saves, so an AVX2 machine loads T16 (--ternary-layout auto).
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"
#include "kernels/ref/ref.h"

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx2,fma,bmi2")

namespace tritter::cpu {
namespace {

constexpr int kNB = 4;   // tokens per register tile (GEMM): 8 int16 accumulators of 16 rows
constexpr int kNC = 64;  // tokens per stack-staged chunk (Σx and the zero-padded tail columns)
// GEMM: one int16 lane takes 4 vpmaddubsw pairs per tile, each |·| ≤ 2·2·128 = 512, so ≤ 2048 per tile; 15 tiles
// stay ≤ 30720 < 2^15 (vpaddw wraps, so only the true sum has to fit).
constexpr int kFlushGemm = 15;
static_assert(kFlushGemm * 4 * 512 <= 32767);
// GEMV: the 4·code accumulator takes 2 pairs of |·| ≤ 2·8·128 = 2048 per tile, ≤ 4096 per tile; 8 tiles span
// [−32768, 32512] (the minimum only for x = −128 everywhere), which int16 holds exactly.
constexpr int kFlushGemv = 8;
static_assert(kFlushGemv * 4096 <= 32768 && kFlushGemv * 2 * 2 * 8 * 127 <= 32767);
// DRAM-resident GEMV: prefetch this far ahead on the weight stream (bands are contiguous; past the end it is a
// harmless hint), for matrices of at least kPrefetchMinBytes (a decode step streams every layer from DRAM).
constexpr int64_t kPrefetchAhead = 8192;
constexpr int64_t kPrefetchMinBytes = int64_t{1} << 20;

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// acc16[2n + h] += tile rows 8h..8h+7 · x[n][0..16) for NB tokens at xb + n·stride: each broadcast group of 4
// activations feeds both halves (one vpbroadcastd per 2 vpmaddubsw: the broadcasts are loads, and at one per
// vpmaddubsw the load ports bound the loop).
template <int NB>
inline void tile_step(__m256i* acc16, const uint8_t* tile, const int8_t* xb, int64_t stride) {
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile));
  const __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile + 32));
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m256i w0 = _mm256_and_si256(j == 0 ? p0 : _mm256_srli_epi16(p0, 2 * j), m3);
    const __m256i w1 = _mm256_and_si256(j == 0 ? p1 : _mm256_srli_epi16(p1, 2 * j), m3);
#pragma GCC unroll 4
    for (int n = 0; n < NB; ++n) {
      const __m256i b = bcast4(xb + n * stride + 4 * j);
      acc16[2 * n] = _mm256_add_epi16(acc16[2 * n], _mm256_maddubs_epi16(w0, b));
      acc16[2 * n + 1] = _mm256_add_epi16(acc16[2 * n + 1], _mm256_maddubs_epi16(w1, b));
    }
    // Pin the accumulators in registers: otherwise GCC reassociates the adds into trees across j and spills
    // the partial sums to the stack (measured ~0.8x).
#pragma GCC unroll 8
    for (int n = 0; n < 2 * NB; ++n) asm("" : "+x"(acc16[n]));
  }
}

// Band rb (16 rows) for the NB tokens n0.. of the chunk.
template <int NB>
void band_tokens(const T16Args& a, const uint8_t* band, int64_t rb, int64_t n0, const int32_t* xsum,
                 const int8_t (*xtail)[16], int64_t chunk0) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, O = w.rows, ncb = (I + 15) / 16, nfull = I / 16;
  const int8_t* x = a.xq + (chunk0 + n0) * I;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc16[2 * NB], acc32[2 * NB];
  for (int k = 0; k < 2 * NB; ++k) acc16[k] = acc32[k] = _mm256_setzero_si256();
  auto flush = [&] {
    for (int k = 0; k < 2 * NB; ++k) {
      acc32[k] = _mm256_add_epi32(acc32[k], _mm256_madd_epi16(acc16[k], ones));
      acc16[k] = _mm256_setzero_si256();
    }
  };
  int64_t cb = 0;
  while (cb < nfull) {
    const int64_t end = std::min(nfull, cb + kFlushGemm);
    for (; cb < end; ++cb) tile_step<NB>(acc16, band + cb * kTernaryTileBytes, x + cb * 16, I);
    flush();
  }
  if (nfull < ncb) {
    tile_step<NB>(acc16, band + nfull * kTernaryTileBytes, xtail[n0], 16);
    flush();
  }
  const int rows = static_cast<int>(std::min<int64_t>(16, O - rb * 16));
  for (int n = 0; n < NB; ++n) {
    const int64_t tok = chunk0 + n0 + n;
    const int64_t out = tok * O + rb * 16;
    const __m256i xs = _mm256_set1_epi32(xsum[n0 + n]);
    const __m256i s0 = _mm256_sub_epi32(acc32[2 * n], xs), s1 = _mm256_sub_epi32(acc32[2 * n + 1], xs);
    if (a.acc != nullptr) {
      alignas(32) int32_t tmp[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), s0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), s1);
      std::memcpy(a.acc + out, tmp, sizeof(int32_t) * static_cast<size_t>(rows));
    } else {
      const __m256 d = _mm256_set1_ps(a.x_scale[tok] * w.sigma);
      alignas(32) float tmp[16];
      _mm256_store_ps(tmp, _mm256_div_ps(_mm256_cvtepi32_ps(s0), d));
      _mm256_store_ps(tmp + 8, _mm256_div_ps(_mm256_cvtepi32_ps(s1), d));
      std::memcpy(a.y + out, tmp, sizeof(float) * static_cast<size_t>(rows));
    }
  }
}

// GEMV of band rb (one token): see the file comment for the unpack. s16/t16 = Σ code·x and Σ 4·code·x per half.
template <bool kPrefetch>
void band_gemv(const T16Args& a, const uint8_t* band, int64_t rb, const int32_t* xsum, const int8_t (*xtail)[16],
               int64_t chunk0) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, O = w.rows, ncb = (I + 15) / 16, nfull = I / 16;
  const int8_t* x = a.xq + chunk0 * I;
  const __m256i m3 = _mm256_set1_epi8(3), mc = _mm256_set1_epi8(0x0C), ones = _mm256_set1_epi16(1);
  __m256i s32[2], t32[2], s16[2], t16[2];
  for (int h = 0; h < 2; ++h) s32[h] = t32[h] = s16[h] = t16[h] = _mm256_setzero_si256();
  auto step = [&](const uint8_t* tile, const int8_t* xp) {
    if constexpr (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(tile + kPrefetchAhead), _MM_HINT_NTA);
    const __m256i x0 = bcast4(xp), x1 = bcast4(xp + 4), x2 = bcast4(xp + 8), x3 = bcast4(xp + 12);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile + 32 * h));
      const __m256i q = _mm256_srli_epi16(p, 4);
      s16[h] = _mm256_add_epi16(s16[h], _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(p, m3), x0),
                                                         _mm256_maddubs_epi16(_mm256_and_si256(q, m3), x2)));
      t16[h] = _mm256_add_epi16(t16[h], _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(p, mc), x1),
                                                         _mm256_maddubs_epi16(_mm256_and_si256(q, mc), x3)));
    }
  };
  auto flush = [&] {
    for (int h = 0; h < 2; ++h) {
      s32[h] = _mm256_add_epi32(s32[h], _mm256_madd_epi16(s16[h], ones));
      t32[h] = _mm256_add_epi32(t32[h], _mm256_madd_epi16(t16[h], ones));
      s16[h] = t16[h] = _mm256_setzero_si256();
    }
  };
  int64_t cb = 0;
  while (cb < nfull) {
    const int64_t end = std::min(nfull, cb + kFlushGemv);
#pragma GCC unroll 2
    for (; cb < end; ++cb) step(band + cb * kTernaryTileBytes, x + cb * 16);
    flush();
  }
  if (nfull < ncb) {
    step(band + nfull * kTernaryTileBytes, xtail[0]);
    flush();
  }
  const int rows = static_cast<int>(std::min<int64_t>(16, O - rb * 16));
  alignas(32) int32_t sums[16];
  const __m256i xs = _mm256_set1_epi32(xsum[0]);
  for (int h = 0; h < 2; ++h) {
    const __m256i s = _mm256_add_epi32(s32[h], _mm256_srai_epi32(t32[h], 2));  // t32 is 4·Σ: exact
    _mm256_store_si256(reinterpret_cast<__m256i*>(sums + 8 * h), _mm256_sub_epi32(s, xs));
  }
  const int64_t out = chunk0 * O + rb * 16;
  for (int r = 0; r < rows; ++r) {
    if (a.acc != nullptr) {
      a.acc[out + r] = sums[r];
    } else {
      a.y[out + r] = ref::ternary_epilogue(sums[r], a.x_scale[chunk0], w.sigma);
    }
  }
}

// Digit vector of T20 bytes p: ⌊3p/256⌋ = [p ≥ 86] + [p ≥ 171] (signed compares after the 0x80 flip).
inline __m256i t20_digit(__m256i p) {
  const __m256i u = _mm256_xor_si256(p, _mm256_set1_epi8(static_cast<char>(0x80)));
  const __m256i ge86 = _mm256_cmpgt_epi8(u, _mm256_set1_epi8(85 - 128));
  const __m256i ge171 = _mm256_cmpgt_epi8(u, _mm256_set1_epi8(170 - 128));
  return _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(ge86, ge171));
}

inline __m256i times3(__m256i p) { return _mm256_add_epi8(_mm256_add_epi8(p, p), p); }  // 3p mod 256 per byte

}  // namespace

void t20_band_to_t16_avx2(uint8_t* out, const uint8_t* band, int64_t cols) {
  const int64_t steps = t20_decode_steps(cols);
  for (int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {  // rows 0-7, rows 8-15: the same byte positions in both layouts
      __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int m = 0; m < 4; ++m) {
        __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(band + (4 * s + m) * 64 + 32 * h));
#pragma GCC unroll 5
        for (int k = 0; k < 5; ++k) {
          const int g = 5 * m + k;  // column group within the step; field g%4 of T16 tile g/4
          acc = _mm256_or_si256(acc, _mm256_slli_epi16(t20_digit(p), 2 * (g % 4)));
          if (g % 4 == 3) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (5 * s + g / 4) * 64 + 32 * h), acc);
            acc = _mm256_setzero_si256();
          }
          if (k < 4) p = times3(p);
        }
      }
    }
  }
  ternary_t20_band_to_t16(out, band, cols, 5 * steps);
}

void t16_matmul_avx2(const T16Args& a, int64_t rb_begin, int64_t rb_end) {
  const int64_t I = a.w->cols, nfull = I / 16, ncb = (I + 15) / 16;
  const bool t20 = a.w->layout == TernaryLayout::T20;
  const bool big = !t20 && static_cast<int64_t>(ternary_matrix_bytes(a.w->rows, I)) >= kPrefetchMinBytes;
  std::vector<uint8_t> decoded(t20 ? static_cast<size_t>(ncb * kTernaryTileBytes) : 0);
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
      const uint8_t* band = a.w->data + rb * ncb * kTernaryTileBytes;
      if (t20) {
        t20_band_to_t16_avx2(decoded.data(), a.w->data + rb * ((I + 19) / 20) * kTernaryTileBytes, I);
        band = decoded.data();
      }
      if (nc == 1) {
        if (big) {
          band_gemv<true>(a, band, rb, xsum, xtail, c0);
        } else {
          band_gemv<false>(a, band, rb, xsum, xtail, c0);
        }
        continue;
      }
      int64_t n0 = 0;
      for (; n0 + kNB <= nc; n0 += kNB) band_tokens<kNB>(a, band, rb, n0, xsum, xtail, c0);
      switch (nc - n0) {
        case 1: band_tokens<1>(a, band, rb, n0, xsum, xtail, c0); break;
        case 2: band_tokens<2>(a, band, rb, n0, xsum, xtail, c0); break;
        case 3: band_tokens<3>(a, band, rb, n0, xsum, xtail, c0); break;
        default: break;
      }
    }
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (ternary_kernel_tier refuses the tier), kept linkable.
namespace tritter::cpu {
void t16_matmul_avx2(const T16Args& a, int64_t rb_begin, int64_t rb_end) { t16_matmul_scalar(a, rb_begin, rb_end); }
void t20_band_to_t16_avx2(uint8_t* out, const uint8_t* band, int64_t cols) { ternary_t20_band_to_t16(out, band, cols); }
}  // namespace tritter::cpu
#endif
