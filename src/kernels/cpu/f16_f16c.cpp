// The KV cache's f16 conversions with F16C (vcvtps2ph / vcvtph2ps, 8 values per instruction). The binary's
// baseline x86-64 has no half-precision conversion, so the plain _Float16 casts in kv_quant.cpp are a libgcc call
// per value: on the 2-core Zen 3 a 16-row decode step of the 700M-shape at 32 positions spent ~600 ms converting
// cached keys and values (against ~50 ms of attention on an f32 cache). IEEE conversions both ways, round to
// nearest even: the same bits as the casts and the reference (tests/kernels/backend_ops_test.cpp).
#include <cstdint>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/target.h"

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx,f16c")

namespace tritter::cpu {

void kv_f16_encode_f16c(uint16_t* out, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

void kv_f16_decode_f16c(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
  for (; i < n; ++i) out[i] = _cvtsh_ss(in[i]);
}

}  // namespace tritter::cpu
TRITTER_TARGET_END

#endif
