#include "infer/lm_head.h"

#include <algorithm>

#include "infer/attention.h"
#include "kernels/quantize.h"

namespace tritter {

namespace {

constexpr int64_t kRowBlock = 64;  // vocabulary rows per work item

__attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
void head_rows_f32(float* logits, const float* h, int64_t N, const float* w, int64_t v0, int64_t v1, int64_t V,
                   int64_t D) {
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

__attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
void head_rows_i8(float* logits, const int8_t* hq, const float* hs, int64_t N, const int8_t* w, const float* row_scale,
                  int64_t v0, int64_t v1, int64_t V, int64_t D) {
  for (int64_t v = v0; v < v1; ++v) {
    const int8_t* wr = w + v * D;
    for (int64_t n = 0; n < N; ++n) {
      const int8_t* xr = hq + n * D;
      int32_t acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += static_cast<int32_t>(xr[i]) * static_cast<int32_t>(wr[i]);
      logits[n * V + v] = static_cast<float>(acc) * row_scale[v] / hs[n];
    }
  }
}

}  // namespace

void lm_head_forward(const Context& ctx, float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V,
                     int64_t D, int8_t* hq, float* hs) {
  const int64_t blocks = (V + kRowBlock - 1) / kRowBlock;
  if (w.format == HeadFormat::I8) quantize_activations(ctx, hq, hs, h, N, D);
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t v0 = b * kRowBlock, v1 = std::min(V, v0 + kRowBlock);
    if (w.format == HeadFormat::I8) {
      head_rows_i8(logits, hq, hs, N, w.i8, w.row_scale, v0, v1, V, D);
    } else {
      head_rows_f32(logits, h, N, w.f32, v0, v1, V, D);
    }
  }
}

}  // namespace tritter
