// AVX2 body of the 4-bit LM head (kernels/head.h): A = Σ_g k_g Σ_{i∈g} q_i·x_i exactly, for NV rows × NT tokens
// at a time, then the int8 head's epilogue (float)A · r / hs.
//
// A 32-byte load holds two groups: low nibbles are columns 0–15 of each, high nibbles columns 16–31; the
// activations are laid out once per call to match. vpmaddubsw multiplies the nibble u = q + 8 (u8) by x (s8):
// pairs of ≤ 2·15·127, the low- and high-nibble pairs added (≤ 7620, exact in int16), and vpmaddwd by k_g (each
// group's 8 int16 lanes) widens and scales them into int32: Σ_g k_g Σ u·x. The offset 8·Σ_g k_g·Σ_{i∈g} x_i is
// one short dot product per row and token (the group sums of x are computed once per call), so the inner loop has
// 3 multiplies, 2 adds and 2 activation loads per 64 columns and token, and 6 ops per row shared by the tokens
// (load, unpack, the multipliers). A last odd group is summed in scalar code (integers: the order is free).
// (Moving the sign to the activation with vpsignb, as the int8 head does, cost 6 more ops per load.)
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"
#include "kernels/head.h"

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx2,fma,bmi2")

namespace tritter::cpu {
namespace {

constexpr int64_t kPairBytes = 64;  // activations per pair of groups: 2 low halves, then 2 high halves

struct Prepared {
  std::vector<int8_t> x;     // (N, P·64) in pair order, zeros past D
  std::vector<int16_t> sums; // (N, 2P) Σ x over each group (|·| ≤ 32·127)
};

Prepared prepare(const int8_t* hq, int64_t N, int64_t D, int64_t P) {
  Prepared p{std::vector<int8_t>(static_cast<size_t>(N * P * kPairBytes), 0),
             std::vector<int16_t>(static_cast<size_t>(N * 2 * P), 0)};
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < std::min(D, 2 * P * kHeadI4Group); ++i) {  // the odd last group reads hq directly
      const int64_t g = i / kHeadI4Group, j = i % kHeadI4Group;
      const int8_t x = hq[n * D + i];
      p.x[static_cast<size_t>((n * P + g / 2) * kPairBytes + (j < 16 ? 0 : 32) + 16 * (g % 2) + (j & 15))] = x;
      p.sums[static_cast<size_t>(n * 2 * P + g)] = static_cast<int16_t>(p.sums[static_cast<size_t>(n * 2 * P + g)] + x);
    }
  }
  return p;
}

// Σ_{g < n} k[g]·s[g], 16 groups per vpmaddwd.
inline int32_t mult_dot(const uint8_t* k, const int16_t* s, int64_t n) {
  __m256i acc = _mm256_setzero_si256();
  int64_t g = 0;
  for (; g + 16 <= n; g += 16) {
    const __m256i kk = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + g)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(kk, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + g))));
  }
  const __m128i a = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  const __m128i b = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0x4E));
  int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(b, _mm_shuffle_epi32(b, 0xB1)));
  for (; g < n; ++g) sum += int32_t{k[g]} * s[g];
  return sum;
}

template <int NV, int NT>
inline void tile(int32_t (*out)[NT], const uint8_t* w, const uint8_t* k, int64_t row_bytes, int64_t G, int64_t P,
                 const Prepared& prep, int64_t n0, const int8_t* hq, int64_t D, const uint8_t* pf) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i spread = _mm256_setr_epi8(0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1,  //
                                          1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
  const int8_t* xp = prep.x.data() + n0 * P * kPairBytes;
  __m256i acc[NV][NT];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) acc[v][n] = _mm256_setzero_si256();
  for (int64_t p = 0; p < P; ++p) {
    if (pf && p % 2 == 0) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(pf + v * row_bytes + 32 * p), _MM_HINT_T1);
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + v * row_bytes + 32 * p));
      const __m256i ul = _mm256_and_si256(b, low), uh = _mm256_and_si256(_mm256_srli_epi16(b, 4), low);
      uint16_t two;
      std::memcpy(&two, k + v * G + 2 * p, 2);
      const __m256i kv = _mm256_shuffle_epi8(_mm256_set1_epi16(static_cast<short>(two)), spread);  // k0 ×8, k1 ×8
#pragma GCC unroll 8
      for (int n = 0; n < NT; ++n) {
        const int8_t* x = xp + (n * P + p) * kPairBytes;
        const __m256i xl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
        const __m256i xh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32));
        const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(ul, xl), _mm256_maddubs_epi16(uh, xh));
        acc[v][n] = _mm256_add_epi32(acc[v][n], _mm256_madd_epi16(s, kv));
      }
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) {
      const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[v][n]), _mm256_extracti128_si256(acc[v][n], 1));
      const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
      // Σ k·u·x alone may pass 2^31 (u up to 15) where A does not: the lanes wrap, and so does this arithmetic
      // (unsigned), so A comes out exact.
      uint32_t sum = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1))));
      sum -= 8u * static_cast<uint32_t>(mult_dot(k + v * G, prep.sums.data() + (n0 + n) * 2 * P, 2 * P));
      if (G % 2) {
        const int32_t last = head_i4_group_dot(w + v * row_bytes, hq + (n0 + n) * D, G - 1, D);
        sum += static_cast<uint32_t>(k[v * G + G - 1] * last);
      }
      out[v][n] = static_cast<int32_t>(sum);
    }
  }
}

struct Rows {
  float* logits;
  const Prepared* prep;
  const int8_t* hq;
  const float* hs;
  const uint8_t* q4;
  const uint8_t* mult;
  const float* row_scale;
  int64_t V, D, G, P, row_bytes;
};

template <int NV, int NT>
inline void block(const Rows& r, int64_t n0, int64_t v0, int64_t ahead) {
  int32_t out[NV][NT];
  tile<NV, NT>(out, r.q4 + v0 * r.row_bytes, r.mult + v0 * r.G, r.row_bytes, r.G, r.P, *r.prep, n0, r.hq, r.D,
               ahead ? r.q4 + (v0 + ahead) * r.row_bytes : nullptr);
  for (int v = 0; v < NV; ++v) {
    for (int n = 0; n < NT; ++n) {  // the int8 head's epilogue
      r.logits[(n0 + n) * r.V + v0 + v] = static_cast<float>(out[v][n]) * r.row_scale[v0 + v] / r.hs[n0 + n];
    }
  }
}

template <int NT>
void tokens(const Rows& r, int64_t n0, int64_t v0, int64_t v1, int64_t ahead) {
  constexpr int NV = NT == 1 ? 4 : 2;
  int64_t v = v0;
  for (; v + NV <= v1; v += NV) block<NV, NT>(r, n0, v, ahead);
  for (; v < v1; ++v) block<1, NT>(r, n0, v, ahead);
}

}  // namespace

void head_i4_rows_avx2(float* logits, const int8_t* hq, const float* hs, int64_t N, const uint8_t* q4,
                       const uint8_t* mult, const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D) {
  const int64_t G = head_i4_groups(D), P = G / 2;
  const Prepared prep = prepare(hq, N, D, P);
  const Rows r{logits, &prep, hq, hs, q4, mult, row_scale, V, D, G, P, head_i4_row_bytes(D)};
  constexpr int64_t kGroup = 16;  // rows kept in L1 across the token pairs; the next group prefetched
  for (int64_t g0 = v0; g0 < v1; g0 += kGroup) {
    const int64_t g1 = std::min(v1, g0 + kGroup);
    const int64_t ahead = g1 + (g1 - g0) <= v1 ? kGroup : 0;
    int64_t n = 0;
    for (; n + 2 <= N; n += 2) tokens<2>(r, n, g0, g1, n == 0 ? ahead : 0);
    if (n < N) tokens<1>(r, n, g0, g1, n == 0 ? ahead : 0);
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (the AVX2 tier is refused there), kept linkable.
namespace tritter::cpu {
void head_i4_rows_avx2(float* logits, const int8_t* hq, const float* hs, int64_t N, const uint8_t* q4,
                       const uint8_t* mult, const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D) {
  const int64_t G = head_i4_groups(D), row_bytes = head_i4_row_bytes(D);
  for (int64_t v = v0; v < v1; ++v) {
    for (int64_t n = 0; n < N; ++n) {
      int32_t acc = 0;
      for (int64_t g = 0; g < G; ++g) acc += mult[v * G + g] * head_i4_group_dot(q4 + v * row_bytes, hq + n * D, g, D);
      logits[n * V + v] = static_cast<float>(acc) * row_scale[v] / hs[n];
    }
  }
}
}  // namespace tritter::cpu
#endif
