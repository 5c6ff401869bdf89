// AVX-512 VNNI body of the T16 ternary matmul: one 64-byte tile load, 3 shifts and 4 ANDs unpack 16 rows × 16
// columns of unsigned codes (w+1 ∈ {0,1,2}); each vpdpbusd multiplies them by a broadcast group of 4 int8
// activations into 16 int32 row sums. Up to kNB tokens share each unpacked tile (GEMM); a GEMV spreads one token
// over 4 accumulators to hide vpdpbusd latency. Σx is subtracted once per token: Σ(w+1)x − Σx = Σwx, exactly.
// Only this file is compiled for AVX-512; it runs only when ternary_kernel_tier() found VNNI.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"
#include "kernels/ref/ref.h"

#if defined(__x86_64__)
// GCC 12 reports its own intrinsics' _mm512_undefined_* placeholders (avx512fintrin.h) as maybe-uninitialized
// once they are inlined here; a known false positive, silenced for this file only.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,bmi2")

namespace tritter::cpu {
namespace {

constexpr int kNB = 8;    // tokens per register tile (GEMM)
constexpr int kNC = 64;   // tokens per chunk whose Σx and tail columns are staged on the stack
// DRAM-resident GEMV: prefetchnta this far ahead on the weight stream (bands are contiguous, so it runs on into the
// next band; past the end it is a harmless hint). Measured (2-core AVX-512 VNNI VM, 131072×8192 GEMV, 1 thread):
// none 25–34 GB/s, T0 at 8 KiB 32–38, NTA at 4/8/16 KiB 35–38 / 40–42 / 37–39 GB/s (read probe ~40). The weights
// are read once, so NTA keeps them out of L2/L3. It costs up to ~8 % on a matrix that stays in cache (one more
// load-port op per tile), but in decoding every layer's matrices stream from DRAM (the model is far larger than
// the L3): with matrices of 1 MiB and up prefetched, 2B-shape tg64 rose from 37.8–38.5 to 41.1–42.0 t/s on 1 thread
// and from 51.2–51.5 to 56.6–57.4 t/s on 2 (`tritter bench model --size 2B-shape --vocab 128256`, same session).
constexpr int64_t kPrefetchAhead = 8192;
constexpr int64_t kPrefetchMinBytes = int64_t{1} << 20;

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// acc[n·NA + j%NA] += tile · x[n][0..16) for the NB tokens; NA independent accumulators per token.
// kShiftFree (GEMV, NA = 4): w_j = tile & (3 << 2j) is left in place, so acc[j] collects 4^j · Σ code·x and the
// epilogue shifts it back (exact: acc[3] ≤ 64·256·I/4 < 2^31 for I < 2^19); saves the 3 shifts per tile.
template <int NB, int NA, bool kShiftFree>
inline void tile_step(__m512i* acc, const uint8_t* tile, const int8_t* const* x, int64_t off) {
  const __m512i p = _mm512_loadu_si512(tile);
  __m512i w0, w1, w2, w3;
  if constexpr (kShiftFree) {
    w0 = _mm512_and_si512(p, _mm512_set1_epi8(0x03));
    w1 = _mm512_and_si512(p, _mm512_set1_epi8(0x0C));
    w2 = _mm512_and_si512(p, _mm512_set1_epi8(0x30));
    w3 = _mm512_and_si512(p, _mm512_set1_epi8(static_cast<char>(0xC0)));
  } else {
    const __m512i m3 = _mm512_set1_epi8(3);
    w0 = _mm512_and_si512(p, m3);
    w1 = _mm512_and_si512(_mm512_srli_epi16(p, 2), m3);
    w2 = _mm512_and_si512(_mm512_srli_epi16(p, 4), m3);
    w3 = _mm512_and_si512(_mm512_srli_epi16(p, 6), m3);
  }
#pragma GCC unroll 16
  for (int n = 0; n < NB; ++n) {
    const int8_t* xp = x[n] + off;
    acc[n * NA + 0] = _mm512_dpbusd_epi32(acc[n * NA + 0], w0, bcast4(xp));
    acc[n * NA + 1 % NA] = _mm512_dpbusd_epi32(acc[n * NA + 1 % NA], w1, bcast4(xp + 4));
    acc[n * NA + 2 % NA] = _mm512_dpbusd_epi32(acc[n * NA + 2 % NA], w2, bcast4(xp + 8));
    acc[n * NA + 3 % NA] = _mm512_dpbusd_epi32(acc[n * NA + 3 % NA], w3, bcast4(xp + 12));
  }
}

// Rows of one 16-row band for NB tokens n0.. of the chunk: full accumulation over all tiles, then the epilogue.
template <int NB, int NA, bool kShiftFree = false, int kSets = 1, bool kPrefetch = false>
void band_tokens(const T16Args& a, int64_t rb, int64_t n0, const int32_t* xsum, const int8_t (*xtail)[16],
                 int64_t chunk0) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, O = w.rows, ncb = (I + 15) / 16, nfull = I / 16;
  const uint8_t* band = w.data + rb * ncb * kTernaryTileBytes;
  const int8_t* x[NB];
  for (int n = 0; n < NB; ++n) x[n] = a.xq + (chunk0 + n0 + n) * I;
  // kSets accumulator sets take alternate tiles, so a GEMV has 4·kSets independent vpdpbusd chains.
  __m512i acc[kSets * NB * NA];
  for (int k = 0; k < kSets * NB * NA; ++k) acc[k] = _mm512_setzero_si512();
  int64_t cb = 0;
  for (; cb + kSets <= nfull; cb += kSets) {
#pragma GCC unroll 4
    for (int set = 0; set < kSets; ++set) {
      if constexpr (kPrefetch) {
        _mm_prefetch(reinterpret_cast<const char*>(band + (cb + set) * kTernaryTileBytes + kPrefetchAhead),
                     _MM_HINT_NTA);
      }
      tile_step<NB, NA, kShiftFree>(acc + set * NB * NA, band + (cb + set) * kTernaryTileBytes, x, (cb + set) * 16);
    }
  }
  for (; cb < nfull; ++cb) tile_step<NB, NA, kShiftFree>(acc, band + cb * kTernaryTileBytes, x, cb * 16);
  for (int set = 1; set < kSets; ++set) {
    for (int k = 0; k < NB * NA; ++k) acc[k] = _mm512_add_epi32(acc[k], acc[set * NB * NA + k]);
  }
  if (nfull < ncb) {
    const int8_t* xt[NB];
    for (int n = 0; n < NB; ++n) xt[n] = xtail[n0 + n];
    tile_step<NB, NA, kShiftFree>(acc, band + nfull * kTernaryTileBytes, xt, 0);
  }
  const int rows = static_cast<int>(std::min<int64_t>(16, O - rb * 16));
  const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
  for (int n = 0; n < NB; ++n) {
    __m512i s = acc[n * NA];
    if constexpr (kShiftFree) {
      static_assert(NA == 4);
      s = _mm512_add_epi32(_mm512_add_epi32(s, _mm512_srai_epi32(acc[n * NA + 1], 2)),
                           _mm512_add_epi32(_mm512_srai_epi32(acc[n * NA + 2], 4), _mm512_srai_epi32(acc[n * NA + 3], 6)));
    } else {
      for (int k = 1; k < NA; ++k) s = _mm512_add_epi32(s, acc[n * NA + k]);
    }
    s = _mm512_sub_epi32(s, _mm512_set1_epi32(xsum[n0 + n]));
    const int64_t tok = chunk0 + n0 + n;
    if (a.acc != nullptr) {
      _mm512_mask_storeu_epi32(a.acc + tok * O + rb * 16, mask, s);
    } else {
      const __m512 y = _mm512_div_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(a.x_scale[tok] * w.sigma));
      _mm512_mask_storeu_ps(a.y + tok * O + rb * 16, mask, y);
    }
  }
}

// nb (< kNB) tokens. Fewer tokens get more accumulators each: with one per token, 2 tokens were 2 dependent
// vpdpbusd chains, bound by latency (the 700M-shape layers took 2.07x the 1-token time for 2 tokens, 1 thread).
template <int NB>
void band_tokens_n(const T16Args& a, int64_t rb, int64_t n0, int nb, const int32_t* xsum,
                   const int8_t (*xtail)[16], int64_t chunk0, bool big) {
  if constexpr (NB > 1) {
    if (nb < NB) return band_tokens_n<NB - 1>(a, rb, n0, nb, xsum, xtail, chunk0, big);
  }
  constexpr int NA = NB <= 2 ? 4 : 2;
  if (big) {
    band_tokens<NB, NA, false, 1, true>(a, rb, n0, xsum, xtail, chunk0);
  } else {
    band_tokens<NB, NA>(a, rb, n0, xsum, xtail, chunk0);
  }
}

}  // namespace

void t16_matmul_avx512vnni(const T16Args& a, int64_t rb_begin, int64_t rb_end) {
  const int64_t I = a.w->cols, nfull = I / 16;
  const bool big = static_cast<int64_t>(ternary_matrix_bytes(a.w->rows, I)) >= kPrefetchMinBytes;
  int32_t xsum[kNC];
  alignas(64) int8_t xtail[kNC][16];
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
        if (I < (int64_t{1} << 19)) {
          if (big) {
            band_tokens<1, 4, true, 4, true>(a, rb, 0, xsum, xtail, c0);
          } else {
            band_tokens<1, 4, true, 4>(a, rb, 0, xsum, xtail, c0);
          }
        } else {
          band_tokens<1, 4, false, 2>(a, rb, 0, xsum, xtail, c0);
        }
        continue;
      }
      int64_t n0 = 0;
      // The first pass over a DRAM-resident band streams it with prefetches (the later ones find it in L1).
      for (; n0 + kNB <= nc; n0 += kNB) {
        if (big && n0 == 0) {
          band_tokens<kNB, 2, false, 1, true>(a, rb, n0, xsum, xtail, c0);
        } else {
          band_tokens<kNB, 2>(a, rb, n0, xsum, xtail, c0);
        }
      }
      if (n0 < nc) band_tokens_n<kNB - 1>(a, rb, n0, static_cast<int>(nc - n0), xsum, xtail, c0, big && n0 == 0);
    }
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (ternary_kernel_tier refuses the tier), kept linkable.
namespace tritter::cpu {
void t16_matmul_avx512vnni(const T16Args& a, int64_t rb_begin, int64_t rb_end) { t16_matmul_scalar(a, rb_begin, rb_end); }
}  // namespace tritter::cpu
#endif
