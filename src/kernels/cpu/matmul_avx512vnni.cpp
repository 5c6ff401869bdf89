// AVX-512 VNNI body of the T16 ternary matmul: one 64-byte tile load, 3 shifts and 4 ANDs unpack 16 rows × 16
// columns of unsigned codes (w+1 ∈ {0,1,2}); each vpdpbusd multiplies them by a broadcast group of 4 int8
// activations into 16 int32 row sums. Up to kNB tokens share each unpacked tile (GEMM); a GEMV spreads one token
// over 4 accumulators to hide vpdpbusd latency. Σx is subtracted once per token: Σ(w+1)x − Σx = Σwx, exactly.
// Only this file is compiled for AVX-512; it runs only when ternary_kernel_tier() found VNNI.
//
// T20 matrices (1.6 bits per weight, ternary_matmul.h): a GEMV of up to kT20DirectTokens tokens reads them as they
// are — per 64-byte tile p_0 = q and p_{k+1} = 3p_k (10 byte additions), then 10 vpdpbusd: A += p_k·x_k and
// C += p_{k+1}·x_k, whose 3A − C is 256·Σ code·x exactly (3p_k − p_{k+1} = 256·digit_k), 320 weights a tile. More
// tokens decode each band to T16 (t20_band_to_t16_avx512: 20 digit vectors by two unsigned compares each) and run
// the T16 GEMM on it from L1/L2.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"
#include "kernels/ref/ref.h"

#if defined(__x86_64__)
// GCC 12 reports its own intrinsics' _mm512_undefined_* placeholders (avx512fintrin.h) as maybe-uninitialized
// once they are inlined here (as -Wuninitialized where the inlining is deeper); a known false positive, silenced
// for this file only.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
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

// The 16 row sums s of band rb for token tok (exact int32, Σx already subtracted): to acc, or through the epilogue
// s / (x_scale · σ) to y; rows past O masked.
inline void store_band(const T16Args& a, int64_t rb, int64_t tok, __m512i s) {
  const int64_t O = a.w->rows;
  const int rows = static_cast<int>(std::min<int64_t>(16, O - rb * 16));
  const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1);
  if (a.acc != nullptr) {
    _mm512_mask_storeu_epi32(a.acc + tok * O + rb * 16, mask, s);
  } else {
    const __m512 y = _mm512_div_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(a.x_scale[tok] * a.w->sigma));
    _mm512_mask_storeu_ps(a.y + tok * O + rb * 16, mask, y);
  }
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
void band_tokens(const T16Args& a, const uint8_t* band, int64_t rb, int64_t n0, const int32_t* xsum,
                 const int8_t (*xtail)[16], int64_t chunk0) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, ncb = (I + 15) / 16, nfull = I / 16;
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
  for (int n = 0; n < NB; ++n) {
    __m512i s = acc[n * NA];
    if constexpr (kShiftFree) {
      static_assert(NA == 4);
      s = _mm512_add_epi32(_mm512_add_epi32(s, _mm512_srai_epi32(acc[n * NA + 1], 2)),
                           _mm512_add_epi32(_mm512_srai_epi32(acc[n * NA + 2], 4), _mm512_srai_epi32(acc[n * NA + 3], 6)));
    } else {
      for (int k = 1; k < NA; ++k) s = _mm512_add_epi32(s, acc[n * NA + k]);
    }
    store_band(a, rb, chunk0 + n0 + n, _mm512_sub_epi32(s, _mm512_set1_epi32(xsum[n0 + n])));
  }
}

// nb (< kNB) tokens. Fewer tokens get more accumulators each: with one per token, 2 tokens were 2 dependent
// vpdpbusd chains, bound by latency (the 700M-shape layers took 2.07x the 1-token time for 2 tokens, 1 thread).
template <int NB>
void band_tokens_n(const T16Args& a, const uint8_t* band, int64_t rb, int64_t n0, int nb, const int32_t* xsum,
                   const int8_t (*xtail)[16], int64_t chunk0, bool big) {
  if constexpr (NB > 1) {
    if (nb < NB) return band_tokens_n<NB - 1>(a, band, rb, n0, nb, xsum, xtail, chunk0, big);
  }
  constexpr int NA = NB <= 2 ? 4 : 2;
  if (big) {
    band_tokens<NB, NA, false, 1, true>(a, band, rb, n0, xsum, xtail, chunk0);
  } else {
    band_tokens<NB, NA>(a, band, rb, n0, xsum, xtail, chunk0);
  }
}

// ---- T20 ----

constexpr int64_t kT20DirectTokens = 3;  // GEMV on the T20 bytes up to this many tokens; above, decode + T16 GEMM
// Tiles per int32 fold of A and C: a lane of A gains ≤ 5·4·255·128 = 652800 per tile, so 3A − C stays below
// 4·256·652800 < 2^31 over 256 tiles (5120 columns); the folded quotient Σ code·x ≤ 2·128·I fits for I < 2^23.
constexpr int64_t kT20FoldTiles = 256;
static_assert(4 * kT20FoldTiles * 5 * 4 * 255 * 128 < (int64_t{1} << 31));

inline __m512i times3(__m512i p) { return _mm512_add_epi8(_mm512_add_epi8(p, p), p); }  // 3p mod 256 per byte

// NB tokens over band rb, sharing each tile's chain p_0..p_5: per token, A (digits 0, 2, 4) and B (1, 3) collect
// Σ p_k·x_k, C and D Σ p_{k+1}·x_k — four independent vpdpbusd chains; every kT20FoldTiles tiles
// (3(A+B) − (C+D)) / 256 joins the token's exact int32 total.
template <int NB, bool kPrefetch>
void band_gemv_t20(const T16Args& a, int64_t rb, const int32_t* xsum, const int8_t (*xtail)[kT20TileCols]) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, ncb = (I + 19) / 20, nfull = I / 20;
  const uint8_t* band = w.data + rb * ncb * kTernaryTileBytes;
  const __m512i zero = _mm512_setzero_si512();
  __m512i A[NB], B[NB], C[NB], D[NB], total[NB];
  for (int n = 0; n < NB; ++n) A[n] = B[n] = C[n] = D[n] = total[n] = zero;
  auto step = [&](const uint8_t* tile, int64_t col, bool tail) {
    if constexpr (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(tile + kPrefetchAhead), _MM_HINT_NTA);
    const __m512i p0 = _mm512_loadu_si512(tile);
    const __m512i p1 = times3(p0), p2 = times3(p1), p3 = times3(p2), p4 = times3(p3), p5 = times3(p4);
#pragma GCC unroll 4
    for (int n = 0; n < NB; ++n) {
      const int8_t* xp = tail ? xtail[n] : a.xq + n * I + col;
      A[n] = _mm512_dpbusd_epi32(A[n], p0, bcast4(xp));
      C[n] = _mm512_dpbusd_epi32(C[n], p1, bcast4(xp));
      B[n] = _mm512_dpbusd_epi32(B[n], p1, bcast4(xp + 4));
      D[n] = _mm512_dpbusd_epi32(D[n], p2, bcast4(xp + 4));
      A[n] = _mm512_dpbusd_epi32(A[n], p2, bcast4(xp + 8));
      C[n] = _mm512_dpbusd_epi32(C[n], p3, bcast4(xp + 8));
      B[n] = _mm512_dpbusd_epi32(B[n], p3, bcast4(xp + 12));
      D[n] = _mm512_dpbusd_epi32(D[n], p4, bcast4(xp + 12));
      A[n] = _mm512_dpbusd_epi32(A[n], p4, bcast4(xp + 16));
      C[n] = _mm512_dpbusd_epi32(C[n], p5, bcast4(xp + 16));
    }
  };
  auto fold = [&] {
    for (int n = 0; n < NB; ++n) {
      const __m512i s3 = _mm512_add_epi32(A[n], B[n]), s1 = _mm512_add_epi32(C[n], D[n]);
      const __m512i d = _mm512_sub_epi32(_mm512_add_epi32(_mm512_add_epi32(s3, s3), s3), s1);
      total[n] = _mm512_add_epi32(total[n], _mm512_srai_epi32(d, 8));  // d is a multiple of 256: exact
      A[n] = B[n] = C[n] = D[n] = zero;
    }
  };
  int64_t cb = 0;
  while (cb < nfull) {
    const int64_t end = std::min(nfull, cb + kT20FoldTiles);
    for (; cb < end; ++cb) step(band + cb * kTernaryTileBytes, cb * kT20TileCols, false);
    fold();
  }
  if (nfull < ncb) {
    step(band + nfull * kTernaryTileBytes, 0, true);
    fold();
  }
  for (int n = 0; n < NB; ++n) store_band(a, rb, n, _mm512_sub_epi32(total[n], _mm512_set1_epi32(xsum[n])));
}

template <int NB>
void t20_gemv_bands(const T16Args& a, int64_t rb_begin, int64_t rb_end, bool big, const int32_t* xsum,
                    const int8_t (*xtail)[kT20TileCols]) {
  for (int64_t rb = rb_begin; rb < rb_end; ++rb) {
    if (big) {
      band_gemv_t20<NB, true>(a, rb, xsum, xtail);
    } else {
      band_gemv_t20<NB, false>(a, rb, xsum, xtail);
    }
  }
}

void t20_gemv(const T16Args& a, int64_t rb_begin, int64_t rb_end) {
  const int64_t I = a.w->cols, nfull = I / 20;
  const bool big = static_cast<int64_t>(ternary_matrix_bytes(a.w->rows, I, TernaryLayout::T20)) >= kPrefetchMinBytes;
  int32_t xsum[kT20DirectTokens];
  alignas(64) int8_t xtail[kT20DirectTokens][kT20TileCols];
  for (int64_t n = 0; n < a.N; ++n) {
    const int8_t* x = a.xq + n * I;
    int32_t s = 0;
    for (int64_t i = 0; i < I; ++i) s += x[i];
    xsum[n] = s;
    std::memset(xtail[n], 0, kT20TileCols);
    std::memcpy(xtail[n], x + nfull * kT20TileCols, static_cast<size_t>(I - nfull * kT20TileCols));
  }
  static_assert(kT20DirectTokens <= 3);
  switch (a.N) {
    case 1: return t20_gemv_bands<1>(a, rb_begin, rb_end, big, xsum, xtail);
    case 2: return t20_gemv_bands<2>(a, rb_begin, rb_end, big, xsum, xtail);
    default: return t20_gemv_bands<3>(a, rb_begin, rb_end, big, xsum, xtail);
  }
}

inline __m512i t20_digit(__m512i p) {  // ⌊3p/256⌋ = [p ≥ 86] + [p ≥ 171]
  const __m512i one = _mm512_set1_epi8(1);
  const __m512i ge86 = _mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(p, _mm512_set1_epi8(86)), one);
  return _mm512_mask_add_epi8(ge86, _mm512_cmpge_epu8_mask(p, _mm512_set1_epi8(static_cast<char>(171))), ge86, one);
}

}  // namespace

void t20_band_to_t16_avx512(uint8_t* out, const uint8_t* band, int64_t cols) {
  const int64_t steps = t20_decode_steps(cols);
  for (int64_t s = 0; s < steps; ++s) {
    __m512i acc = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) {
      __m512i p = _mm512_loadu_si512(band + (4 * s + m) * 64);
#pragma GCC unroll 5
      for (int k = 0; k < 5; ++k) {
        const int g = 5 * m + k;  // column group within the step; field g%4 of T16 tile g/4
        acc = _mm512_or_si512(acc, _mm512_slli_epi16(t20_digit(p), 2 * (g % 4)));
        if (g % 4 == 3) {
          _mm512_storeu_si512(out + (5 * s + g / 4) * 64, acc);
          acc = _mm512_setzero_si512();
        }
        if (k < 4) p = times3(p);
      }
    }
  }
  ternary_t20_band_to_t16(out, band, cols, 5 * steps);
}

void t16_matmul_avx512vnni(const T16Args& a, int64_t rb_begin, int64_t rb_end) {
  const bool t20 = a.w->layout == TernaryLayout::T20;
  if (t20 && a.N <= kT20DirectTokens) return t20_gemv(a, rb_begin, rb_end);
  const int64_t I = a.w->cols, nfull = I / 16, ncb = (I + 15) / 16;
  const bool big = !t20 && static_cast<int64_t>(ternary_matrix_bytes(a.w->rows, I)) >= kPrefetchMinBytes;
  // Σx and the zero-padded tail of each token: per chunk of kNC on the stack (T16), for all N at once for T20,
  // whose bands are decoded once and then serve every chunk.
  const int64_t staged = t20 ? a.N : kNC;
  std::vector<int32_t> xsum_buf(static_cast<size_t>(staged));
  std::vector<int8_t> xtail_buf(static_cast<size_t>(staged * 16));
  auto stage = [&](int64_t c0, int64_t nc, int64_t slot0) {
    for (int64_t n = 0; n < nc; ++n) {
      const int8_t* x = a.xq + (c0 + n) * I;
      int32_t s = 0;
      for (int64_t i = 0; i < I; ++i) s += x[i];
      xsum_buf[static_cast<size_t>(slot0 + n)] = s;
      int8_t* t = xtail_buf.data() + (slot0 + n) * 16;
      std::memset(t, 0, 16);
      std::memcpy(t, x + nfull * 16, static_cast<size_t>(I - nfull * 16));
    }
  };
  // Band rb for tokens c0 .. c0 + nc − 1, whose Σx and tails start at slot0 of the staging buffers.
  auto run_band = [&](const uint8_t* band, int64_t rb, int64_t c0, int64_t nc, int64_t slot0) {
    const int32_t* xsum = xsum_buf.data() + slot0;
    const auto* xtail = reinterpret_cast<const int8_t(*)[16]>(xtail_buf.data() + slot0 * 16);
    if (nc == 1) {
      if (I < (int64_t{1} << 19)) {
        if (big) {
          band_tokens<1, 4, true, 4, true>(a, band, rb, 0, xsum, xtail, c0);
        } else {
          band_tokens<1, 4, true, 4>(a, band, rb, 0, xsum, xtail, c0);
        }
      } else {
        band_tokens<1, 4, false, 2>(a, band, rb, 0, xsum, xtail, c0);
      }
      return;
    }
    int64_t n0 = 0;
    // The first pass over a DRAM-resident band streams it with prefetches (the later ones find it in L1).
    for (; n0 + kNB <= nc; n0 += kNB) {
      if (big && n0 == 0) {
        band_tokens<kNB, 2, false, 1, true>(a, band, rb, n0, xsum, xtail, c0);
      } else {
        band_tokens<kNB, 2>(a, band, rb, n0, xsum, xtail, c0);
      }
    }
    if (n0 < nc) band_tokens_n<kNB - 1>(a, band, rb, n0, static_cast<int>(nc - n0), xsum, xtail, c0, big && n0 == 0);
  };
  if (t20) {
    stage(0, a.N, 0);
    std::vector<uint8_t> decoded(static_cast<size_t>(ncb * kTernaryTileBytes));
    for (int64_t rb = rb_begin; rb < rb_end; ++rb) {
      t20_band_to_t16_avx512(decoded.data(), a.w->data + rb * ((I + 19) / 20) * kTernaryTileBytes, I);
      for (int64_t c0 = 0; c0 < a.N; c0 += kNC) run_band(decoded.data(), rb, c0, std::min<int64_t>(kNC, a.N - c0), c0);
    }
    return;
  }
  for (int64_t c0 = 0; c0 < a.N; c0 += kNC) {
    const int64_t nc = std::min<int64_t>(kNC, a.N - c0);
    stage(c0, nc, 0);
    for (int64_t rb = rb_begin; rb < rb_end; ++rb) run_band(a.w->data + rb * ncb * kTernaryTileBytes, rb, c0, nc, 0);
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (ternary_kernel_tier refuses the tier), kept linkable.
namespace tritter::cpu {
void t16_matmul_avx512vnni(const T16Args& a, int64_t rb_begin, int64_t rb_end) { t16_matmul_scalar(a, rb_begin, rb_end); }
void t20_band_to_t16_avx512(uint8_t* out, const uint8_t* band, int64_t cols) { ternary_t20_band_to_t16(out, band, cols); }
}  // namespace tritter::cpu
#endif
