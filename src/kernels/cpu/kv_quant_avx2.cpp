// The KV cache's 4-bit dequantizers with AVX2: 8 packed bytes → 16 levels in element order (low nibble first) →
// f32, then min + level·scale as a separate multiply and add. No FMA on purpose: the baseline code and the
// reference round the product and the sum apart, and the cache's values must stay the same bits.
#include <cstdint>

#include "kernels/cpu/kv_dequant.h"
#include "kernels/cpu/target.h"

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx2")

namespace tritter::cpu {

namespace {
// Levels of elements 2j .. 2j + 15 from bytes p[0..7] (p = row + j), as 16 bytes.
inline __m128i unpack16(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0f);
  return _mm_unpacklo_epi8(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
}
// The low 8 bytes of q as f32 (exact: levels are 0..15).
inline __m256 low8_f32(__m128i q) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)); }
inline int level4(const uint8_t* row, int64_t i) { return (row[i >> 1] >> ((i & 1) * 4)) & 0x0f; }
}  // namespace

void kv_dequantize_key_row4_avx2(float* out, const uint8_t* row, const float* params, int64_t d) {
  const float* sc = params + d;
  int64_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m128i q = unpack16(row + i / 2);
    const __m256 f0 = low8_f32(q), f1 = low8_f32(_mm_srli_si128(q, 8));
    _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(params + i), _mm256_mul_ps(f0, _mm256_loadu_ps(sc + i))));
    _mm256_storeu_ps(out + i + 8,
                     _mm256_add_ps(_mm256_loadu_ps(params + i + 8), _mm256_mul_ps(f1, _mm256_loadu_ps(sc + i + 8))));
  }
  for (; i < d; ++i) out[i] = params[i] + static_cast<float>(level4(row, i)) * sc[i];
}

void kv_dequantize_value_row4_avx2(float* out, const uint8_t* row, const float* params, int64_t d, int64_t gv) {
  for (int64_t g = 0; g < d / gv; ++g) {
    const float a = params[2 * g], s = params[2 * g + 1];
    const __m256 va = _mm256_set1_ps(a), vs = _mm256_set1_ps(s);
    int64_t i = g * gv;
    const int64_t end = i + gv;
    if (i & 1) {  // an odd group size starts every other group on a high nibble
      out[i] = a + static_cast<float>(level4(row, i)) * s;
      ++i;
    }
    for (; i + 16 <= end; i += 16) {
      const __m128i q = unpack16(row + i / 2);
      _mm256_storeu_ps(out + i, _mm256_add_ps(va, _mm256_mul_ps(low8_f32(q), vs)));
      _mm256_storeu_ps(out + i + 8, _mm256_add_ps(va, _mm256_mul_ps(low8_f32(_mm_srli_si128(q, 8)), vs)));
    }
    for (; i < end; ++i) out[i] = a + static_cast<float>(level4(row, i)) * s;
  }
}

}  // namespace tritter::cpu

TRITTER_TARGET_END

#endif  // __x86_64__
