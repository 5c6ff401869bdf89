// AVX-512 VNNI body of the 4-bit LM head (kernels/head.h): A = Σ_g k_g Σ_{i∈g} q_i·x_i exactly, for NV rows × NT
// tokens at a time, then the int8 head's epilogue (float)A · r / hs.
//
// A 64-byte load holds four groups (128 columns): its low nibbles are columns 0–15 of each group, its high nibbles
// columns 16–31. The activations are laid out once per call to match (per chunk of four groups: the four low
// halves, then the four high halves), so both nibble vectors meet their activations without a shuffle. vpdpbusd
// takes the nibble u = q + 8 as u8; its lane (4 bytes of one group, low and high nibbles: 8 products) starts from
// −8·Σx of the same 8 activations, so the lane ends at Σ (u − 8)·x = Σ q·x, |·| ≤ 8·8·127 < 2^15. vpdpwssd then
// multiplies that lane, read as an int16 (its upper half is the sign extension, times 0), by k_g and adds it to the
// row's int32 accumulator: two vpdpbusd and one vpdpwssd per 128 columns and token, all exact.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"
#include "kernels/head.h"

#if defined(__x86_64__)
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: _mm512_undefined_* placeholders (as in matmul)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,bmi2")

namespace tritter::cpu {
namespace {

constexpr int64_t kChunkGroups = 4, kChunkBytes = 128;  // activations per chunk: 4 low halves, 4 high halves

// One token's activations in chunk order (zeros past D) and each lane's −8·Σx.
struct Prepared {
  std::vector<int8_t> x;     // (N, C·128)
  std::vector<int32_t> bias; // (N, C·16)
};

Prepared prepare(const int8_t* hq, int64_t N, int64_t D, int64_t C) {
  Prepared p{std::vector<int8_t>(static_cast<size_t>(N * C * kChunkBytes), 0),
             std::vector<int32_t>(static_cast<size_t>(N * C * 16), 0)};
  for (int64_t n = 0; n < N; ++n) {
    int8_t* xp = p.x.data() + n * C * kChunkBytes;
    for (int64_t i = 0; i < D; ++i) {
      const int64_t g = i / kHeadI4Group, j = i % kHeadI4Group, c = g / kChunkGroups, s = g % kChunkGroups;
      xp[c * kChunkBytes + (j < 16 ? 0 : 64) + 16 * s + (j & 15)] = hq[n * D + i];
    }
    int32_t* b = p.bias.data() + n * C * 16;
    for (int64_t c = 0; c < C; ++c) {
      for (int k = 0; k < 16; ++k) {
        int32_t sum = 0;
        for (int t = 0; t < 4; ++t) sum += xp[c * kChunkBytes + 4 * k + t] + xp[c * kChunkBytes + 64 + 4 * k + t];
        b[c * 16 + k] = -8 * sum;
      }
    }
  }
  return p;
}

// k_g of the chunk's four groups (bytes of `four`), each in the 4 int32 lanes of its group: group L's lanes are
// the 128-bit lane L, so one in-lane byte shuffle of the broadcast places them.
inline __m512i group_mults(uint32_t four) {
  constexpr auto lane = [](uint32_t g) { return static_cast<int>(0x80808000u | g); };  // byte g, then 3 zeros
  const __m512i pattern = _mm512_set_epi32(lane(3), lane(3), lane(3), lane(3), lane(2), lane(2), lane(2), lane(2),
                                           lane(1), lane(1), lane(1), lane(1), lane(0), lane(0), lane(0), lane(0));
  return _mm512_shuffle_epi8(_mm512_set1_epi32(static_cast<int>(four)), pattern);
}

// acc[v][n] += the chunk c of NV rows at w against NT tokens. Full: four groups (one plain load each); otherwise
// the row's last chunk of `groups` < 4 groups (masked loads: absent groups read as 0 and their multipliers as 0).
template <int NV, int NT, bool Full>
inline void chunk(__m512i (&acc)[NV][NT], const uint8_t* w, const uint8_t* k, int64_t row_bytes, int64_t G,
                  int64_t C, int64_t c, int64_t groups, const int8_t* xp, const int32_t* bias) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __mmask64 m = Full ? ~__mmask64{0} : (__mmask64{1} << (16 * groups)) - 1;
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const uint8_t* wv = w + v * row_bytes + 64 * c;
    const __m512i b = Full ? _mm512_loadu_si512(wv) : _mm512_maskz_loadu_epi8(m, wv);
    const __m512i lo = _mm512_and_si512(b, low), hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), low);
    uint32_t four = 0;
    if (Full) {
      std::memcpy(&four, k + v * G + c * kChunkGroups, 4);
    } else {
      for (int64_t g = 0; g < groups; ++g) four |= uint32_t{k[v * G + c * kChunkGroups + g]} << (8 * g);
    }
    const __m512i kv = group_mults(four);
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) {
      const int8_t* x = xp + (n * C + c) * kChunkBytes;
      __m512i t = _mm512_loadu_si512(bias + (n * C + c) * 16);
      t = _mm512_dpbusd_epi32(t, lo, _mm512_loadu_si512(x));
      t = _mm512_dpbusd_epi32(t, hi, _mm512_loadu_si512(x + 64));
      acc[v][n] = _mm512_dpwssd_epi32(acc[v][n], t, kv);
    }
  }
}

// out[v][n] = A for NV rows at w (row_bytes apart, multipliers G apart) and NT tokens of the prepared activations.
template <int NV, int NT>
inline void tile(int32_t (*out)[NT], const uint8_t* w, const uint8_t* k, int64_t row_bytes, int64_t G, int64_t C,
                 const int8_t* xp, const int32_t* bias, const uint8_t* pf) {
  __m512i acc[NV][NT];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) acc[v][n] = _mm512_setzero_si512();
  const int64_t full = G / kChunkGroups;
  for (int64_t c = 0; c < full; ++c) {
    if (pf) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(pf + v * row_bytes + 64 * c), _MM_HINT_T1);
    }
    chunk<NV, NT, true>(acc, w, k, row_bytes, G, C, c, kChunkGroups, xp, bias);
  }
  if (full < C) chunk<NV, NT, false>(acc, w, k, row_bytes, G, C, full, G - full * kChunkGroups, xp, bias);
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
    for (int n = 0; n < NT; ++n) out[v][n] = _mm512_reduce_add_epi32(acc[v][n]);
}

struct Rows {
  float* logits;
  const Prepared* p;
  const float* hs;
  const uint8_t* q4;
  const uint8_t* mult;
  const float* row_scale;
  int64_t V, G, C, row_bytes;
};

template <int NV, int NT>
inline void block(const Rows& r, int64_t n0, int64_t v0, int64_t ahead) {
  int32_t out[NV][NT];
  tile<NV, NT>(out, r.q4 + v0 * r.row_bytes, r.mult + v0 * r.G, r.row_bytes, r.G, r.C,
               r.p->x.data() + n0 * r.C * kChunkBytes, r.p->bias.data() + n0 * r.C * 16,
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

void head_i4_rows_avx512vnni(float* logits, const int8_t* hq, const float* hs, int64_t N, const uint8_t* q4,
                             const uint8_t* mult, const float* row_scale, int64_t v0, int64_t v1, int64_t V,
                             int64_t D) {
  const int64_t G = head_i4_groups(D), C = (G + kChunkGroups - 1) / kChunkGroups;
  const Prepared p = prepare(hq, N, D, C);
  const Rows r{logits, &p, hs, q4, mult, row_scale, V, G, C, head_i4_row_bytes(D)};
  // Rows in groups of kGroup (kept in L1 across the token tiles); the first pass over a group prefetches the next.
  constexpr int64_t kGroup = 16;
  for (int64_t g0 = v0; g0 < v1; g0 += kGroup) {
    const int64_t g1 = std::min(v1, g0 + kGroup);
    const int64_t ahead = g1 + (g1 - g0) <= v1 ? kGroup : 0;
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) tokens<4>(r, n, g0, g1, n == 0 ? ahead : 0);
    if (n + 2 <= N) {
      tokens<2>(r, n, g0, g1, n == 0 ? ahead : 0);
      n += 2;
    }
    if (n < N) tokens<1>(r, n, g0, g1, n == 0 ? ahead : 0);
  }
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#else  // not x86-64: never selected (the VNNI tier is refused there), kept linkable.
namespace tritter::cpu {
void head_i4_rows_avx512vnni(float* logits, const int8_t* hq, const float* hs, int64_t N, const uint8_t* q4,
                             const uint8_t* mult, const float* row_scale, int64_t v0, int64_t v1, int64_t V,
                             int64_t D) {
  head_i4_rows_avx2(logits, hq, hs, N, q4, mult, row_scale, v0, v1, V, D);
}
}  // namespace tritter::cpu
#endif
