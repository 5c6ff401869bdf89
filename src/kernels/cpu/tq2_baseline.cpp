// The llama.cpp TQ2_0 comparison kernel (see kernels/tq2_baseline.h). AVX2 only, compiled for it by pragma.
#include "kernels/tq2_baseline.h"

#include <omp.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/target.h"

namespace tritter::baseline {

std::vector<Tq2Block> tq2_pack(const int8_t* w, int64_t O, int64_t I) {
  TRITTER_CHECK(I % kTq2Block == 0, "I ", I);
  const int64_t nb = I / kTq2Block;
  std::vector<Tq2Block> out(static_cast<size_t>(O * nb));
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t b = 0; b < nb; ++b) {
      Tq2Block& blk = out[o * nb + b];
      blk.d = 1.0f;
      const int8_t* src = w + o * I + b * kTq2Block;
      for (int h = 0; h < 2; ++h) {
        for (int m = 0; m < 32; ++m) {
          uint8_t byte = 0;
          for (int n = 0; n < 4; ++n) byte |= static_cast<uint8_t>((src[128 * h + m + 32 * n] + 1) << (2 * n));
          blk.qs[32 * h + m] = byte;
        }
      }
    }
  }
  return out;
}

std::vector<Q8KBlock> q8k_from_int8(const int8_t* xq, const float* scale, int64_t N, int64_t I) {
  const int64_t nb = I / kTq2Block;
  std::vector<Q8KBlock> out(static_cast<size_t>(N * nb));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t b = 0; b < nb; ++b) {
      Q8KBlock& blk = out[n * nb + b];
      blk.d = 1.0f / scale[n];
      for (int k = 0; k < 256; ++k) blk.qs[k] = xq[n * I + b * 256 + k];
      for (int g = 0; g < 16; ++g) {
        int s = 0;
        for (int k = 0; k < 16; ++k) s += blk.qs[16 * g + k];
        blk.bsums[g] = static_cast<int16_t>(s);
      }
    }
  }
  return out;
}

}  // namespace tritter::baseline

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx2,fma,f16c")

namespace tritter::baseline {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ggml_vec_dot_tq2_0_q8_K, AVX2 branch, transcribed.
float vec_dot_tq2_q8k(int64_t nb, const Tq2Block* x, const Q8KBlock* y) {
  __m256 sumf = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    __m256i sumi0 = _mm256_setzero_si256();
    __m256i sumi1 = _mm256_setzero_si256();
    for (int j = 0; j < 64; j += 32) {
      __m256i qx0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + j));
      __m256i qx1 = _mm256_srli_epi16(qx0, 2);
      __m256i qx2 = _mm256_srli_epi16(qx0, 4);
      __m256i qx3 = _mm256_srli_epi16(qx0, 6);
      const __m256i m3 = _mm256_set1_epi8(3);
      qx0 = _mm256_and_si256(qx0, m3);
      qx1 = _mm256_and_si256(qx1, m3);
      qx2 = _mm256_and_si256(qx2, m3);
      qx3 = _mm256_and_si256(qx3, m3);
      const __m256i qy0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + j * 4 + 0));
      const __m256i qy1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + j * 4 + 32));
      const __m256i qy2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + j * 4 + 64));
      const __m256i qy3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + j * 4 + 96));
      qx0 = _mm256_maddubs_epi16(qx0, qy0);
      qx1 = _mm256_maddubs_epi16(qx1, qy1);
      qx2 = _mm256_maddubs_epi16(qx2, qy2);
      qx3 = _mm256_maddubs_epi16(qx3, qy3);
      sumi0 = _mm256_add_epi16(sumi0, _mm256_add_epi16(qx0, qx1));
      sumi1 = _mm256_add_epi16(sumi1, _mm256_add_epi16(qx2, qx3));
    }
    const __m256i ysum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums));
    const __m256 d = _mm256_set1_ps(y[i].d * x[i].d);
    sumi0 = _mm256_add_epi16(sumi0, sumi1);
    sumi0 = _mm256_sub_epi16(sumi0, ysum);
    sumi0 = _mm256_madd_epi16(sumi0, _mm256_set1_epi16(1));
    sumf = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sumi0), d), sumf);
  }
  return hsum(sumf);
}

}  // namespace

void tq2_gemm_avx2(float* y, const Tq2Block* w, const Q8KBlock* x, int64_t O, int64_t I, int64_t N, int threads) {
  const int64_t nb = I / kTq2Block;
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = O * t / nt, r1 = O * (t + 1) / nt;
    for (int64_t c0 = 0; c0 < N; c0 += 16) {  // ggml's blck_0 = blck_1 = 16 tiling of mul_mat
      for (int64_t rr = r0; rr < r1; rr += 16) {
        for (int64_t c = c0; c < std::min(N, c0 + 16); ++c) {
          for (int64_t r = rr; r < std::min(r1, rr + 16); ++r) y[c * O + r] = vec_dot_tq2_q8k(nb, w + r * nb, x + c * nb);
        }
      }
    }
  }
}

}  // namespace tritter::baseline
TRITTER_TARGET_END
#else
namespace tritter::baseline {
void tq2_gemm_avx2(float*, const Tq2Block*, const Q8KBlock*, int64_t, int64_t, int64_t, int) {
  throw_error("tq2_gemm_avx2: the TQ2_0 comparison kernel needs x86-64 AVX2");
}
}  // namespace tritter::baseline
#endif
