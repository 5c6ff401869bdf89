// Cached attention (kernels/attention.h): queries against KV rows with an online softmax, the block update
// compiled per ISA with GCC vector extensions and chosen by the kernel tier.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
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

// Lane tree of dot16: lanes[k] += lanes[k + w] for w = 8, 4, 2, 1, as vector halves (the same additions of the
// same pairs, so the same bits; through a lane array GCC made it a store and 15 dependent scalar adds per key).
typedef float F32x8 __attribute__((vector_size(32), aligned(4)));
typedef float F32x4 __attribute__((vector_size(16), aligned(4)));
typedef float F32x2 __attribute__((vector_size(8), aligned(4)));
__attribute__((always_inline)) inline float reduce16(const F32x16& acc) {
  const F32x8 s8 = __builtin_shufflevector(acc, acc, 0, 1, 2, 3, 4, 5, 6, 7) +
                   __builtin_shufflevector(acc, acc, 8, 9, 10, 11, 12, 13, 14, 15);
  const F32x4 s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) + __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
  const F32x2 s2 = __builtin_shufflevector(s4, s4, 0, 1) + __builtin_shufflevector(s4, s4, 2, 3);
  return s2[0] + s2[1];
}

// 16 lanes as two 8-lane halves, for the AVX2 wrapper: GCC keeps a 64-byte vector-extension value in a stack slot
// there (every update a store and reload, every scalar×vector a 16-store splat; the decode attention ran ~3x slower
// than its FMA count). Each lane sees the same operations as in F32x16, so the results are the same bits.
struct F32Pair8 {
  F32x8 lo, hi;
};
__attribute__((always_inline)) inline void load16(F32Pair8& v, const float* p) {
  __builtin_memcpy(&v.lo, p, sizeof v.lo);
  __builtin_memcpy(&v.hi, p + 8, sizeof v.hi);
}
__attribute__((always_inline)) inline void store16(float* p, const F32Pair8& v) {
  __builtin_memcpy(p, &v.lo, sizeof v.lo);
  __builtin_memcpy(p + 8, &v.hi, sizeof v.hi);
}
__attribute__((always_inline)) inline void store16(float* p, const F32x16& v) { __builtin_memcpy(p, &v, sizeof v); }
// acc += a·b lane-wise (contracted to an FMA as the F32x16 form is).
__attribute__((always_inline)) inline void fma16(F32Pair8& acc, const F32Pair8& a, const F32Pair8& b) {
  acc.lo += a.lo * b.lo;
  acc.hi += a.hi * b.hi;
}
__attribute__((always_inline)) inline void fma16(F32x16& acc, const F32x16& a, const F32x16& b) { acc += a * b; }
__attribute__((always_inline)) inline void fma16(F32Pair8& acc, float a, const F32Pair8& b) {
  acc.lo += a * b.lo;
  acc.hi += a * b.hi;
}
__attribute__((always_inline)) inline void fma16(F32x16& acc, float a, const F32x16& b) { acc += a * b; }

#if defined(__x86_64__)
#define TRITTER_ATTN_AVX512 "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,bmi2"
#define TRITTER_ATTN_AVX2 "avx2,fma,f16c,bmi2"
#endif
// The in-place reads below (f16 and quantized rows converted in registers): helpers with their own target (GCC and
// clang check an asm operand's vector size, and an intrinsic's ISA, against the function it is written in), not
// always_inline (that would inline them into the target-less templates first, which both compilers refuse), and
// wrappers marked flatten, which inline them once the templates are inside the wrapper.
#if defined(__x86_64__)
#define TRITTER_ATTN_IN_PLACE 1
#else
#define TRITTER_ATTN_IN_PLACE 0
#endif

#if TRITTER_ATTN_IN_PLACE
// 16 IEEE half floats → 16 floats, in registers (exact: every half is a float): the f16 cache read in place.
typedef uint16_t Halves16[16];
typedef uint16_t Halves8[8];
__attribute__((target(TRITTER_ATTN_AVX512))) inline void load16(F32x16& v, const uint16_t* p) {
  asm("vcvtph2ps %1, %0" : "=v"(v) : "m"(*reinterpret_cast<const Halves16*>(p)));
}
__attribute__((target(TRITTER_ATTN_AVX2))) inline void load16(F32Pair8& v, const uint16_t* p) {
  asm("vcvtph2ps %1, %0" : "=x"(v.lo) : "m"(*reinterpret_cast<const Halves8*>(p)));
  asm("vcvtph2ps %1, %0" : "=x"(v.hi) : "m"(*reinterpret_cast<const Halves8*>(p + 8)));
}
#endif

#if TRITTER_ATTN_IN_PLACE
// Quantized rows in registers: 16 levels as floats (exact), then min + level·scale with the product and the sum
// rounded apart, as the cache's dequantizer computes it. The empty asm makes the product a value of its own, so
// the compiler cannot contract the two into an FMA (which would round once and change the bits).
typedef uint8_t U8x16 __attribute__((vector_size(16), aligned(1)));
typedef uint8_t U8x8 __attribute__((vector_size(8), aligned(1)));
typedef int32_t I32x16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t I32x8 __attribute__((vector_size(32), aligned(4)));
__attribute__((always_inline)) inline U8x16 levels16(const uint8_t* row, int64_t i, int bits) {  // elements i .. i+15
  if (bits == 8) {
    U8x16 b;
    __builtin_memcpy(&b, row + i, sizeof b);
    return b;
  }
  uint64_t x;  // the nibbles split as one 64-bit word (x86 has no byte shift: a byte vector's costs three ops)
  __builtin_memcpy(&x, row + i / 2, sizeof x);
  const uint64_t lo_bits = x & 0x0f0f0f0f0f0f0f0full, hi_bits = (x >> 4) & 0x0f0f0f0f0f0f0f0full;
  U8x8 lo, hi;
  __builtin_memcpy(&lo, &lo_bits, sizeof lo);
  __builtin_memcpy(&hi, &hi_bits, sizeof hi);
  return __builtin_shufflevector(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
}
__attribute__((target(TRITTER_ATTN_AVX512))) inline void dequant16(F32x16& t, U8x16 q, const F32x16& mn,
                                                                const F32x16& sc) {
  // vpmovzxbd as assembly: GCC widens a byte vector one element at a time (see load16 for halves).
  I32x16 w;
  asm("vpmovzxbd %1, %0" : "=v"(w) : "x"(q));
  F32x16 prod = __builtin_convertvector(w, F32x16) * sc;
  asm("" : "+v"(prod));
  t = mn + prod;
}
__attribute__((target(TRITTER_ATTN_AVX2))) inline void dequant16(F32Pair8& t, U8x16 q, const F32Pair8& mn,
                                                              const F32Pair8& sc) {
  // Levels 8..15 moved to the low half (vpmovzxbd widens the low 8 bytes of an xmm register).
  const U8x16 high = __builtin_shufflevector(q, q, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  I32x8 w0, w1;
  asm("vpmovzxbd %1, %0" : "=x"(w0) : "x"(q));
  asm("vpmovzxbd %1, %0" : "=x"(w1) : "x"(high));
  F32x8 p0 = __builtin_convertvector(w0, F32x8) * sc.lo;
  F32x8 p1 = __builtin_convertvector(w1, F32x8) * sc.hi;
  asm("" : "+x"(p0), "+x"(p1));
  t.lo = mn.lo + p0;
  t.hi = mn.hi + p1;
}
__attribute__((always_inline)) inline void splat16(F32x16& v, float x) { v = F32x16{} + x; }
__attribute__((always_inline)) inline void splat16(F32Pair8& v, float x) {
  v.lo = F32x8{} + x;
  v.hi = F32x8{} + x;
}
#endif
__attribute__((always_inline)) inline void scale16(F32Pair8& v, float a) {
  v.lo *= a;
  v.hi *= a;
}
__attribute__((always_inline)) inline void scale16(F32x16& v, float a) { v *= a; }
__attribute__((always_inline)) inline float reduce16(const F32Pair8& acc) {
  const F32x8 s8 = acc.lo + acc.hi;  // lanes k += k + 8, as reduce16's first step
  const F32x4 s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) + __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
  const F32x2 s2 = __builtin_shufflevector(s4, s4, 0, 1) + __builtin_shufflevector(s4, s4, 2, 3);
  return s2[0] + s2[1];
}

// Asks for the cache lines of `bytes` bytes at p (the grouped update reads a block's value rows a channel chunk at a
// time, across rows: fetched while the scores are computed, they are not waited for there).
[[maybe_unused]] __attribute__((always_inline)) inline void prefetch_lines(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t x = 0; x < bytes; x += 64) __builtin_prefetch(c + x);
}

// Where a fixed-size block update reads its rows: key(t, j, c) and value(t, j, c) load channels 16c .. 16c+15 of
// row j as floats. Plain rows: floats, or IEEE halves converted as they are loaded (exact: the same floats as a
// cache read converted into a buffer first, so the same bits).
template <int C, typename E>
struct PlainRows {
  const E* k;
  const E* v;
  template <typename V>
  __attribute__((always_inline)) void key(V& t, int64_t j, int c) const { load16(t, k + j * 16 * C + 16 * c); }
  template <typename V>
  __attribute__((always_inline)) void value(V& t, int64_t j, int c) const { load16(t, v + j * 16 * C + 16 * c); }
  __attribute__((always_inline)) void prefetch_value(int64_t j) const {
    prefetch_lines(v + j * 16 * C, 16 * C * sizeof(E));
  }
};

// The query rows a fixed-size block update takes at once (kMaxGroupRows, and the scores' stride per row).
constexpr int64_t kMaxGroupRows = 4;
// Whether the grouped update runs two independent chains per row (V a zmm register: 32 of them on AVX-512).
template <typename V>
[[maybe_unused]] constexpr bool kTwoKeys = std::is_same_v<V, F32x16>;

// Scores of keys j .. j+P−1 for R query rows qr (R, 16C) into s (R, kAttnKeyBlock), their running maxima mb (R):
// one load (and conversion) of each key chunk for the R rows, each row's dot product in the one-row order.
template <int C, int R, int P, typename V, typename Rows>
__attribute__((always_inline)) inline void score_keys(const float* qr, const Rows& rows, int64_t j, float inv_sqrt_d,
                                                      float* s, float* mb) {
  V acc[P][R], tk[P];
  for (int k = 0; k < P; ++k) {
    for (int r = 0; r < R; ++r) acc[k][r] = V{};
    rows.prefetch_value(j + k);
  }
  for (int c = 0; c < C; ++c) {
    for (int k = 0; k < P; ++k) rows.key(tk[k], j + k, c);
    for (int r = 0; r < R; ++r) {
      V q;
      load16(q, qr + r * 16 * C + 16 * c);
      for (int k = 0; k < P; ++k) fma16(acc[k][r], q, tk[k]);
    }
  }
  for (int k = 0; k < P; ++k) {
    for (int r = 0; r < R; ++r) {
      float& sj = s[r * kAttnKeyBlock + j + k];
      sj = reduce16(acc[k][r]) * inv_sqrt_d;
      mb[r] = std::max(mb[r], sj);
    }
  }
}

// The update for head_dim = 16·C known at compile time, over R query rows qr (R, 16C) that see the same n keys
// (grouped queries: the G heads of one query share every key row), with their accumulators ar (R, 16C), running
// max m (R) and sum l (R), and scores s (R, kAttnKeyBlock). Each key and value row is loaded, and converted or
// dequantized, once for the R rows. Every row's arithmetic is the sequence of the one-row update (each dot product
// over the same channels in the same order, each accumulator element scaled then updated key by key), so its
// results are the same bits whatever R is. R = 1 keeps q and the C accumulators in registers and runs the value
// loop keys outermost (C independent chains); R > 1 reads q from L1 and runs the value loop channels outermost
// (R independent chains per key, one conversion of each value element).
template <int C, int R, typename V, typename Rows>
__attribute__((always_inline)) inline void block_update_fixed(const float* qr, const Rows& rows, int64_t n,
                                                              float inv_sqrt_d, float* s, float* ar, float* m,
                                                              float* l) {
  constexpr int64_t D = 16 * C;
  V t;
  float mb[R];
  for (int r = 0; r < R; ++r) mb[r] = -std::numeric_limits<float>::infinity();
  if constexpr (R == 1) {
    V q[C];
    for (int c = 0; c < C; ++c) load16(q[c], qr + 16 * c);
    for (int64_t j = 0; j < n; ++j) {
      V acc = {};
      for (int c = 0; c < C; ++c) {
        rows.key(t, j, c);
        fma16(acc, q[c], t);
      }
      s[j] = reduce16(acc) * inv_sqrt_d;
      mb[0] = std::max(mb[0], s[j]);
    }
  } else {
    // P keys at a time: each row's sum over the channels is one dependent chain per key, so one key gives R chains
    // and the FMA units wait on their latency. Two keys give 2R (a zmm register per chain on AVX-512; the 2×ymm
    // pair of AVX2 already has 2R and no registers to spare).
    constexpr int P = kTwoKeys<V> ? 2 : 1;
    int64_t j = 0;
    for (; j + P <= n; j += P) score_keys<C, R, P, V>(qr, rows, j, inv_sqrt_d, s, mb);
    for (; j < n; ++j) score_keys<C, R, 1, V>(qr, rows, j, inv_sqrt_d, s, mb);
  }
  float alpha[R];
  for (int r = 0; r < R; ++r) {
    const float mnew = std::max(m[r], mb[r]);
    alpha[r] = std::exp(m[r] - mnew);
    float sum = 0.0f;
    float* sr = s + r * kAttnKeyBlock;
    for (int64_t j = 0; j < n; ++j) {
      sr[j] = std::exp(sr[j] - mnew);
      sum += sr[j];
    }
    l[r] = l[r] * alpha[r] + sum;
    m[r] = mnew;
  }
  if constexpr (R == 1) {
    V a[C];
    for (int c = 0; c < C; ++c) {
      load16(a[c], ar + 16 * c);
      scale16(a[c], alpha[0]);
    }
    for (int64_t j = 0; j < n; ++j) {
      for (int c = 0; c < C; ++c) {
        rows.value(t, j, c);
        fma16(a[c], s[j], t);
      }
    }
    for (int c = 0; c < C; ++c) store16(ar + 16 * c, a[c]);
  } else {
    // W channel chunks at a time, for the same reason as P above: each accumulator is a chain over the keys.
    constexpr int W = kTwoKeys<V> && C % 2 == 0 ? 2 : 1;
    for (int c = 0; c < C; c += W) {
      V a[W][R], tv[W];
      for (int w = 0; w < W; ++w) {
        for (int r = 0; r < R; ++r) {
          load16(a[w][r], ar + r * D + 16 * (c + w));
          scale16(a[w][r], alpha[r]);
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        for (int w = 0; w < W; ++w) rows.value(tv[w], j, c + w);
        for (int w = 0; w < W; ++w) {
          for (int r = 0; r < R; ++r) fma16(a[w][r], s[r * kAttnKeyBlock + j], tv[w]);
        }
      }
      for (int w = 0; w < W; ++w) {
        for (int r = 0; r < R; ++r) store16(ar + r * D + 16 * (c + w), a[w][r]);
      }
    }
  }
}

// `nrows` query rows (stride 16C, consecutive accumulators, maxima and sums) over the same n keys, kMaxGroupRows
// at a time, then 2 and 1.
template <int C, typename V, typename Rows>
__attribute__((always_inline)) inline void block_update_group(const float* qr, const Rows& rows, int64_t nrows,
                                                              int64_t n, float inv_sqrt_d, float* s, float* ar,
                                                              float* m, float* l) {
  constexpr int64_t D = 16 * C;
  int64_t r = 0;
#if defined(__clang__)
  // clang (14, -ffp-contract=fast) compiles the grouped rows to results that differ from the one-row update in the
  // last bit, which GCC does not; the cause is not found yet. Until it is, clang builds take the rows one at a time
  // (the bits every cache dtype and head layout must share), at the one-row update's speed.
  for (; r < nrows; ++r) block_update_fixed<C, 1, V>(qr + r * D, rows, n, inv_sqrt_d, s, ar + r * D, m + r, l + r);
#else
  for (; r + kMaxGroupRows <= nrows; r += kMaxGroupRows) {
    block_update_fixed<C, kMaxGroupRows, V>(qr + r * D, rows, n, inv_sqrt_d, s, ar + r * D, m + r, l + r);
  }
  if (r + 2 <= nrows) {
    block_update_fixed<C, 2, V>(qr + r * D, rows, n, inv_sqrt_d, s, ar + r * D, m + r, l + r);
    r += 2;
  }
  if (r < nrows) block_update_fixed<C, 1, V>(qr + r * D, rows, n, inv_sqrt_d, s, ar + r * D, m + r, l + r);
#endif
}

constexpr int64_t kLevelGroup = 32;  // value channels per {min, scale} that the in-place quantized bodies take

#if TRITTER_ATTN_IN_PLACE
// Rows of levels (KvLevels) dequantized in registers, the same arithmetic per element as dequantizing into a
// buffer first and so the same bits. Value groups of kLevelGroup channels (the cache's for these head dims):
// 16-lane chunk c is in group c/2.
// The keys' {min, scale} are the same for every row of the block (one key group): loaded once, here.
template <int C, int Bits, typename V>
struct LevelRows {
  static constexpr int64_t kRow = 16 * C * Bits / 8, kGroups = 16 * C / kLevelGroup;
  KvLevels r;
  V kmin[C], kscale[C];
  __attribute__((always_inline)) explicit LevelRows(const KvLevels& levels) : r(levels) {
    for (int c = 0; c < C; ++c) {
      load16(kmin[c], r.kparams + 16 * c);
      load16(kscale[c], r.kparams + 16 * C + 16 * c);
    }
  }
  __attribute__((always_inline)) void key(V& t, int64_t j, int c) const {
    dequant16(t, levels16(r.k + j * kRow, 16 * c, Bits), kmin[c], kscale[c]);
  }
  __attribute__((always_inline)) void prefetch_value(int64_t j) const { prefetch_lines(r.v + j * kRow, kRow); }
  __attribute__((always_inline)) void value(V& t, int64_t j, int c) const {
    const float* vp = r.vparams + j * kGroups * 2;
    const int64_t g = 16 * c / kLevelGroup;
    V mn, sc;
    splat16(mn, vp[2 * g]);
    splat16(sc, vp[2 * g + 1]);
    dequant16(t, levels16(r.v + j * kRow, 16 * c, Bits), mn, sc);
  }
};
#endif

// One query row of any head dim d over n float key and value rows (the head dims without a fixed-size update).
__attribute__((always_inline)) inline void block_update_any(const float* qr, const float* kb, const float* vb,
                                                            int64_t n, int64_t d, float inv_sqrt_d, float* s,
                                                            float* ar, float* m, float* l) {
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

// `nrows` query rows (stride d) over the same n float key and value rows, one row at a time: float rows need no
// conversion to share, and the one-row update (q in registers) measured 5-20 % faster on them than the grouped one.
template <typename V>  // the fixed-size kernels' 16-lane type: F32x16, or F32Pair8 on AVX2
__attribute__((always_inline)) inline void block_update_body(const float* qr, const float* kb, const float* vb,
                                                             int64_t nrows, int64_t n, int64_t d, float inv_sqrt_d,
                                                             float* s, float* ar, float* m, float* l) {
  for (int64_t r = 0; r < nrows; ++r) {
    const float* q = qr + r * d;
    float* a = ar + r * d;
    switch (d) {  // the common head dims
      case 64: block_update_fixed<4, 1, V>(q, PlainRows<4, float>{kb, vb}, n, inv_sqrt_d, s, a, m + r, l + r); break;
      case 96: block_update_fixed<6, 1, V>(q, PlainRows<6, float>{kb, vb}, n, inv_sqrt_d, s, a, m + r, l + r); break;
      case 128: block_update_fixed<8, 1, V>(q, PlainRows<8, float>{kb, vb}, n, inv_sqrt_d, s, a, m + r, l + r); break;
      default: block_update_any(q, kb, vb, n, d, inv_sqrt_d, s, a, m + r, l + r);
    }
  }
}

#define TRITTER_ATTN_VARIANT(SUFFIX, TARGET, V)                                                                \
  TARGET void block_update_##SUFFIX(const float* qr, const float* kb, const float* vb, int64_t nrows, int64_t n, \
                                    int64_t d, float inv_sqrt_d, float* s, float* ar, float* m, float* l) {    \
    block_update_body<V>(qr, kb, vb, nrows, n, d, inv_sqrt_d, s, ar, m, l);                                    \
  }
TRITTER_ATTN_VARIANT(generic, , F32x16)
#if defined(__x86_64__)
TRITTER_ATTN_VARIANT(avx2, __attribute__((target(TRITTER_ATTN_AVX2))), F32Pair8)
TRITTER_ATTN_VARIANT(avx512, __attribute__((target(TRITTER_ATTN_AVX512))), F32x16)
#endif
#undef TRITTER_ATTN_VARIANT

// (q rows, keys, values, rows, keys n, [d,] 1/√d, scores, accumulators, maxima, sums): see block_update_fixed.
using BlockUpdate = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t, float, float*,
                             float*, float*, float*);
using BlockUpdateF16 = void (*)(const float*, const uint16_t*, const uint16_t*, int64_t, int64_t, float, float*,
                                float*, float*, float*);
using BlockUpdateLevels = void (*)(const float*, const KvLevels&, int64_t, int64_t, float, float*, float*, float*,
                                   float*);

// The bodies that read a cache's rows in place (kernels/attention.h, KvRows::view_f16 and view_levels), for the
// head dims with a fixed-size update; a null member means the rows are fetched as floats instead.
struct InPlaceBodies {
  BlockUpdateF16 f16 = nullptr;
  BlockUpdateLevels q8 = nullptr, q4 = nullptr;
};

#if TRITTER_ATTN_IN_PLACE
// One tier and head dim (16·C): half floats, 8-bit and 4-bit levels.
#define TRITTER_ATTN_IN_PLACE_BODIES(SUFFIX, ISA, V, C)                                                          \
  __attribute__((target(ISA), flatten)) void block_update_f16_##SUFFIX(                                         \
      const float* qr, const uint16_t* kb, const uint16_t* vb, int64_t nrows, int64_t n, float inv_sqrt_d,       \
      float* s, float* ar, float* m, float* l) {                                                                \
    block_update_group<C, V>(qr, PlainRows<C, uint16_t>{kb, vb}, nrows, n, inv_sqrt_d, s, ar, m, l);            \
  }                                                                                                             \
  __attribute__((target(ISA), flatten)) void block_update_q8_##SUFFIX(const float* qr, const KvLevels& r,       \
                                                                      int64_t nrows, int64_t n, float inv_sqrt_d, \
                                                                      float* s, float* ar, float* m, float* l) { \
    block_update_group<C, V>(qr, LevelRows<C, 8, V>(r), nrows, n, inv_sqrt_d, s, ar, m, l);                     \
  }                                                                                                             \
  __attribute__((target(ISA), flatten)) void block_update_q4_##SUFFIX(const float* qr, const KvLevels& r,       \
                                                                      int64_t nrows, int64_t n, float inv_sqrt_d, \
                                                                      float* s, float* ar, float* m, float* l) { \
    block_update_group<C, V>(qr, LevelRows<C, 4, V>(r), nrows, n, inv_sqrt_d, s, ar, m, l);                     \
  }                                                                                                             \
  constexpr InPlaceBodies kInPlace_##SUFFIX{block_update_f16_##SUFFIX, block_update_q8_##SUFFIX,                \
                                            block_update_q4_##SUFFIX};
TRITTER_ATTN_IN_PLACE_BODIES(avx2_64, TRITTER_ATTN_AVX2, F32Pair8, 4)
TRITTER_ATTN_IN_PLACE_BODIES(avx2_96, TRITTER_ATTN_AVX2, F32Pair8, 6)
TRITTER_ATTN_IN_PLACE_BODIES(avx2_128, TRITTER_ATTN_AVX2, F32Pair8, 8)
TRITTER_ATTN_IN_PLACE_BODIES(avx512_64, TRITTER_ATTN_AVX512, F32x16, 4)
TRITTER_ATTN_IN_PLACE_BODIES(avx512_96, TRITTER_ATTN_AVX512, F32x16, 6)
TRITTER_ATTN_IN_PLACE_BODIES(avx512_128, TRITTER_ATTN_AVX512, F32x16, 8)
#undef TRITTER_ATTN_IN_PLACE_BODIES
#endif

InPlaceBodies in_place_bodies(KernelTier tier, int64_t d) {
#if TRITTER_ATTN_IN_PLACE
  const bool avx512 = tier == KernelTier::Avx512Vnni;
  if (!avx512 && tier != KernelTier::Avx2) return {};
  switch (d) {
    case 64: return avx512 ? kInPlace_avx512_64 : kInPlace_avx2_64;
    case 96: return avx512 ? kInPlace_avx512_96 : kInPlace_avx2_96;
    case 128: return avx512 ? kInPlace_avx512_128 : kInPlace_avx2_128;
    default: return {};
  }
#else
  (void)tier;
  (void)d;
  return {};
#endif
}

}  // namespace

namespace {

// What one (kv head, query tile) computes: the queries i0 .. i1−1 of kv head `kv`'s G query heads.
struct CachedTile {
  const float* q;
  const KvRows* rows;
  const CachedAttnShape* shape;
  BlockUpdate block_update;
  InPlaceBodies in_place;  // those the rows allow (the others null)
  int64_t pos0, n, kv, i0, i1;
};

// The online softmax of the tile's rows over the keys of split chunk c (absolute positions c·S .. c·S + S − 1,
// S = kAttnSplitKeys) that each row sees, from a fresh state: m, l (rows), acc (rows, d). A row that sees no key
// of the chunk keeps m = −inf, l = 0.
void chunk_partial(const CachedTile& t, int64_t c, float* kb, float* vb, float* s, float* m, float* l, float* acc) {
  const CachedAttnShape& shape = *t.shape;
  const AttnMask& mask = shape.mask;
  const int64_t H = shape.H, G = H / shape.K, d = shape.d;
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t rows = (t.i1 - t.i0) * G;
  std::fill(m, m + rows, -std::numeric_limits<float>::infinity());
  std::fill(l, l + rows, 0.0f);
  std::fill(acc, acc + rows * d, 0.0f);
  // Keys any query of the tile sees, within the chunk: [lo, hi].
  const int64_t lo = std::max(mask.lo(t.pos0 + t.i0), c * kAttnSplitKeys);
  const int64_t hi = std::min(mask.hi(t.pos0 + t.i1 - 1, t.n), c * kAttnSplitKeys + kAttnSplitKeys - 1);
  for (int64_t b0 = lo / kAttnKeyBlock * kAttnKeyBlock; b0 <= hi; b0 += kAttnKeyBlock) {
    const int64_t j0 = std::max(b0, lo), j1 = std::min(b0 + kAttnKeyBlock - 1, hi);
    const float* kp = kb;
    const float* vp = vb;
    const uint16_t* kh = nullptr;
    const uint16_t* vh = nullptr;
    const int head = static_cast<int>(t.kv);
    const bool halves = t.in_place.f16 != nullptr &&
                        t.rows->view_f16(t.rows->store, t.rows->layer, head, j0, j1 - j0 + 1, &kh, &vh);
    KvLevels lv;
    BlockUpdateLevels levels = nullptr;
    if (!halves && t.in_place.q8 != nullptr &&
        t.rows->view_levels(t.rows->store, t.rows->layer, head, j0, j1 - j0 + 1, &lv) && lv.gv == kLevelGroup) {
      levels = lv.bits == 8 ? t.in_place.q8 : t.in_place.q4;
    }
    if (!halves && levels == nullptr) {
      t.rows->fetch(t.rows->store, t.rows->layer, head, j0, j1 - j0 + 1, kb, vb, &kp, &vp);
    }
    for (int64_t i = t.i0; i < t.i1; ++i) {
      const int64_t p = t.pos0 + i;
      const int64_t rlo = std::max(j0, mask.lo(p)), rhi = std::min(j1, mask.hi(p, t.n));
      if (rlo > rhi) continue;  // this block holds nothing this query sees: no rescale either
      // The tile's G query heads of query i see the same keys: one update for the G rows.
      const int64_t r = (i - t.i0) * G;
      const float* qr = t.q + (i * H + t.kv * G) * d;
      if (halves) {
        t.in_place.f16(qr, kh + (rlo - j0) * d, vh + (rlo - j0) * d, G, rhi - rlo + 1, inv_sqrt_d, s, acc + r * d,
                       &m[r], &l[r]);
      } else if (levels != nullptr) {
        KvLevels from = lv;  // rows rlo .. rhi: the same key group, each value row its own parameters
        const int64_t skip = rlo - j0, row = d * lv.bits / 8;
        from.k += skip * row;
        from.v += skip * row;
        from.vparams += skip * (d / lv.gv) * 2;
        levels(qr, from, G, rhi - rlo + 1, inv_sqrt_d, s, acc + r * d, &m[r], &l[r]);
      } else {
        t.block_update(qr, kp + (rlo - j0) * d, vp + (rlo - j0) * d, G, rhi - rlo + 1, d, inv_sqrt_d, s,
                       acc + r * d, &m[r], &l[r]);
      }
    }
  }
}

// Merges chunk partials (m, l, acc) into the running state (M, L, O) of `rows` rows, log-sum-exp style:
// M' = max(M, m), L' = L·e^(M−M') + l·e^(m−M'), O' likewise. From the empty state (M = −inf, L = 0, O = 0) the
// first merge copies the partial exactly, so a query whose keys lie in one chunk gets the unsplit result.
void merge_partial(int64_t rows, int64_t d, float* M, float* L, float* O, const float* m, const float* l,
                   const float* acc) {
  for (int64_t r = 0; r < rows; ++r) {
    if (l[r] == 0.0f) continue;  // the row saw nothing in this chunk
    const float mn = std::max(M[r], m[r]);
    const float a = std::exp(M[r] - mn), b = std::exp(m[r] - mn);
    L[r] = L[r] * a + l[r] * b;
    for (int64_t x = 0; x < d; ++x) O[r * d + x] = O[r * d + x] * a + acc[r * d + x] * b;
    M[r] = mn;
  }
}

void write_tile(const CachedTile& t, float* o, const float* L, const float* O) {
  const int64_t H = t.shape->H, G = H / t.shape->K, d = t.shape->d;
  for (int64_t i = t.i0; i < t.i1; ++i) {
    for (int64_t g = 0; g < G; ++g) {
      const int64_t r = (i - t.i0) * G + g;
      float* out = o + (i * H + t.kv * G + g) * d;
      const float inv = 1.0f / L[r];
      for (int64_t x = 0; x < d; ++x) out[x] = O[r * d + x] * inv;
    }
  }
}

}  // namespace

void attention_cached(const Context& ctx, float* o, const float* q, const KvRows& kv_rows, int64_t pos0, int64_t T,
                      const CachedAttnShape& shape) {
  if (ctx.kernels == KernelTier::Reference) return ref::attention_cached(o, q, kv_rows, pos0, T, shape);
  const int64_t H = shape.H, K = shape.K, G = H / K, d = shape.d, n = pos0 + T;
  const AttnMask& mask = shape.mask;
  const int64_t ntiles = (T + kAttnQueryTile - 1) / kAttnQueryTile;
  // Small problems (short contexts, tiny models) run on one thread: waking a team costs more than it saves, and
  // far more on a loaded machine. Work ≈ query rows × visible keys × d, both dot products and updates.
  const int64_t lo_all = mask.lo(pos0), hi_all = mask.hi(n - 1, n);
  const int64_t visible = hi_all - lo_all + 1;
  const double work = static_cast<double>(T) * H * visible * d * 2;
  const int max_threads = work < double(1 << 19) ? 1 : std::max(1, ctx.threads);

  const KernelTier tier = ternary_kernel_tier(ctx);  // the SIMD level the kernels run at; same choice here
#if defined(__x86_64__)
  const BlockUpdate block_update = tier == KernelTier::Avx512Vnni ? block_update_avx512
                                   : tier == KernelTier::Avx2     ? block_update_avx2
                                                                  : block_update_generic;
#else
  const BlockUpdate block_update = block_update_generic;
#endif
  InPlaceBodies in_place = in_place_bodies(tier, d);
  if (kv_rows.view_f16 == nullptr) in_place.f16 = nullptr;
  if (kv_rows.view_levels == nullptr) in_place.q8 = in_place.q4 = nullptr;
  const int64_t rows_max = kAttnQueryTile * G;
  const auto tile_of = [&](int64_t kv, int64_t tile) {
    const int64_t i0 = tile * kAttnQueryTile;
    return CachedTile{q, &kv_rows, &shape, block_update, in_place, pos0, n, kv, i0, std::min(T, i0 + kAttnQueryTile)};
  };
  // The split chunks a tile's keys span.
  const auto chunks_of = [&](const CachedTile& t, int64_t* c0, int64_t* c1) {
    *c0 = mask.lo(pos0 + t.i0) / kAttnSplitKeys;
    *c1 = mask.hi(pos0 + t.i1 - 1, n) / kAttnSplitKeys;
  };
  const int64_t items = K * ntiles;
  const int64_t nchunks = hi_all / kAttnSplitKeys - lo_all / kAttnSplitKeys + 1;

  if (max_threads > 1 && nchunks > 1 && items < 4 * max_threads) {
    // Split-K (flash-decoding): too few (kv head, tile) items to keep the threads busy, so every (item, chunk)
    // pair is a task writing its partial; a second pass merges each item's chunks in order. The same partials
    // merged in the same order as the sequential path below: the result does not depend on the path taken.
    const int64_t c_first = lo_all / kAttnSplitKeys;
    const int64_t stride = rows_max * (d + 2);
    std::vector<float> part(static_cast<size_t>(items * nchunks * stride));
    const int threads = static_cast<int>(std::min<int64_t>(max_threads, items * nchunks));
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> kb(kAttnKeyBlock * d), vb(kAttnKeyBlock * d), s(kMaxGroupRows * kAttnKeyBlock);
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < items * nchunks; ++task) {
        const int64_t item = task / nchunks, c = c_first + task % nchunks;
        const CachedTile t = tile_of(item / ntiles, item % ntiles);
        int64_t c0, c1;
        chunks_of(t, &c0, &c1);
        float* pm = part.data() + task * stride;
        if (c < c0 || c > c1) {  // the tile sees nothing there
          std::fill(pm + rows_max, pm + 2 * rows_max, 0.0f);
          continue;
        }
        chunk_partial(t, c, kb.data(), vb.data(), s.data(), pm, pm + rows_max, pm + 2 * rows_max);
      }
#pragma omp for schedule(static)
      for (int64_t item = 0; item < items; ++item) {
        const CachedTile t = tile_of(item / ntiles, item % ntiles);
        const int64_t rows = (t.i1 - t.i0) * G;
        std::vector<float> M(rows, -std::numeric_limits<float>::infinity()), L(rows, 0.0f), O(rows * d, 0.0f);
        for (int64_t k = 0; k < nchunks; ++k) {
          const float* pm = part.data() + (item * nchunks + k) * stride;
          merge_partial(rows, d, M.data(), L.data(), O.data(), pm, pm + rows_max, pm + 2 * rows_max);
        }
        write_tile(t, o, L.data(), O.data());
      }
    }
    return;
  }

  const int threads = static_cast<int>(std::min<int64_t>(max_threads, items));
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> kb(kAttnKeyBlock * d), vb(kAttnKeyBlock * d), s(kMaxGroupRows * kAttnKeyBlock);
    std::vector<float> m(rows_max), l(rows_max), acc(rows_max * d), M(rows_max), L(rows_max), O(rows_max * d);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const CachedTile t = tile_of(item / ntiles, item % ntiles);
      const int64_t rows = (t.i1 - t.i0) * G;
      std::fill(M.begin(), M.begin() + rows, -std::numeric_limits<float>::infinity());
      std::fill(L.begin(), L.begin() + rows, 0.0f);
      std::fill(O.begin(), O.begin() + rows * d, 0.0f);
      int64_t c0, c1;
      chunks_of(t, &c0, &c1);
      for (int64_t c = c0; c <= c1; ++c) {
        chunk_partial(t, c, kb.data(), vb.data(), s.data(), m.data(), l.data(), acc.data());
        merge_partial(rows, d, M.data(), L.data(), O.data(), m.data(), l.data(), acc.data());
      }
      write_tile(t, o, L.data(), O.data());
    }
  }
}

}  // namespace tritter
