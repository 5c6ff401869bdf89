#include "kernels/head.h"

#include <algorithm>
#include <vector>

#include "kernels/nn.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

namespace {

constexpr int64_t kRowBlock = 64;  // vocabulary rows per work item

// Bodies compiled once per ISA by the target wrappers below (always_inline takes the caller's target). Plain loops:
// GCC turns the int8 one into vpdpbusd (u8 × s8) on the VNNI target — hence the weights' sign bit is flipped
// (w ^ 0x80 = w + 128 as u8) and 128·Σx subtracted — and into pmaddwd-style code elsewhere.
__attribute__((always_inline)) inline void rows_i8_body(float* logits, const int8_t* hq, const float* hs,
                                                        const int32_t* hsum, int64_t N, const int8_t* w,
                                                        const float* row_scale, int64_t v0, int64_t v1, int64_t V,
                                                        int64_t D) {
  for (int64_t v = v0; v < v1; ++v) {
    const int8_t* wr = w + v * D;
    for (int64_t n = 0; n < N; ++n) {
      const int8_t* xr = hq + n * D;
      int32_t acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += static_cast<int32_t>(static_cast<uint8_t>(wr[i] ^ 0x80)) * xr[i];
      logits[n * V + v] = static_cast<float>(acc - 128 * hsum[n]) * row_scale[v] / hs[n];
    }
  }
}

__attribute__((always_inline)) inline void rows_f32_body(float* logits, const float* h, int64_t N, const float* w,
                                                         int64_t v0, int64_t v1, int64_t V, int64_t D) {
  for (int64_t v = v0; v < v1; ++v) {
    const float* wr = w + v * D;
    for (int64_t n = 0; n < N; ++n) {
      const float* hr = h + n * D;
      float acc[16] = {};
      int64_t i = 0;
      for (; i + 16 <= D; i += 16) {
        for (int k = 0; k < 16; ++k) acc[k] += hr[i + k] * wr[i + k];
      }
      float tail = 0.0f;
      for (; i < D; ++i) tail += hr[i] * wr[i];
      for (int s = 8; s >= 1; s /= 2) {
        for (int k = 0; k < s; ++k) acc[k] += acc[k + s];
      }
      logits[n * V + v] = acc[0] + tail;
    }
  }
}

#define TRITTER_HEAD_VARIANT(SUFFIX, TARGET)                                                                      \
  TARGET void rows_i8_##SUFFIX(float* l, const int8_t* hq, const float* hs, const int32_t* hsum, int64_t N,       \
                               const int8_t* w, const float* rs, int64_t v0, int64_t v1, int64_t V, int64_t D) {  \
    rows_i8_body(l, hq, hs, hsum, N, w, rs, v0, v1, V, D);                                                        \
  }                                                                                                               \
  TARGET void rows_f32_##SUFFIX(float* l, const float* h, int64_t N, const float* w, int64_t v0, int64_t v1,      \
                                int64_t V, int64_t D) {                                                           \
    rows_f32_body(l, h, N, w, v0, v1, V, D);                                                                      \
  }

TRITTER_HEAD_VARIANT(generic, )
TRITTER_HEAD_VARIANT(avx2, __attribute__((target("avx2,fma,f16c,bmi2"))))
TRITTER_HEAD_VARIANT(vnni, __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,bmi2"))))
#undef TRITTER_HEAD_VARIANT

}  // namespace

void lm_head_forward(const Context& ctx, float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V,
                     int64_t D, int8_t* hq, float* hs) {
  if (w.cos_scale > 0.0f) {  // cosine head: the same product on ĥ, then the scale (the KNN exit does the same)
    std::vector<float> unit(static_cast<size_t>(N * D)), r(static_cast<size_t>(N));
    l2norm_rows_forward(ctx, unit.data(), r.data(), h, N, D);
    HeadWeights plain = w;
    plain.cos_scale = 0.0f;
    lm_head_forward(ctx, logits, unit.data(), N, plain, V, D, hq, hs);
    for (int64_t i = 0; i < N * V; ++i) logits[i] *= w.cos_scale;
    return;
  }
  if (ctx.kernels == KernelTier::Reference) return ref::lm_head_forward(logits, h, N, w, V, D, hq, hs);
  const KernelTier tier = ternary_kernel_tier(ctx);  // the resolved SIMD level (throws for an unsupported force)
  const int64_t blocks = (V + kRowBlock - 1) / kRowBlock;
  std::vector<int32_t> hsum(N, 0);
  if (w.format == HeadFormat::I8) {
    quantize_activations(ctx, hq, hs, h, N, D);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < D; ++i) hsum[n] += hq[n * D + i];
    }
  }
  const int threads = static_cast<double>(N) * V * D < double(1 << 19) ? 1 : ctx.threads;  // tiny heads: one thread
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t v0 = b * kRowBlock, v1 = std::min(V, v0 + kRowBlock);
    if (w.format == HeadFormat::I8) {
      if (tier == KernelTier::Avx512Vnni) {
        rows_i8_vnni(logits, hq, hs, hsum.data(), N, w.i8, w.row_scale, v0, v1, V, D);
      } else if (tier == KernelTier::Avx2) {
        rows_i8_avx2(logits, hq, hs, hsum.data(), N, w.i8, w.row_scale, v0, v1, V, D);
      } else {
        rows_i8_generic(logits, hq, hs, hsum.data(), N, w.i8, w.row_scale, v0, v1, V, D);
      }
    } else if (tier == KernelTier::Avx512Vnni) {
      rows_f32_vnni(logits, h, N, w.f32, v0, v1, V, D);
    } else if (tier == KernelTier::Avx2) {
      rows_f32_avx2(logits, h, N, w.f32, v0, v1, V, D);
    } else {
      rows_f32_generic(logits, h, N, w.f32, v0, v1, V, D);
    }
  }
}

}  // namespace tritter
