// Reference LM head (kernels/head.h contract): f32 dot products in double; int8 through the reference activation
// quantizer, the exact int32 sum and the fast head's epilogue (float)acc · row_scale / hs.
#include "kernels/ref/ref.h"

namespace tritter::ref {

void lm_head_forward(float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V, int64_t D,
                     int8_t* hq, float* hs) {
  if (w.format == HeadFormat::I8) quantize_activations(hq, hs, h, N, D);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t v = 0; v < V; ++v) {
      if (w.format == HeadFormat::I8) {
        int32_t acc = 0;
        for (int64_t i = 0; i < D; ++i) acc += static_cast<int32_t>(w.i8[v * D + i]) * hq[n * D + i];
        logits[n * V + v] = static_cast<float>(acc) * w.row_scale[v] / hs[n];
      } else {
        double s = 0.0;
        for (int64_t i = 0; i < D; ++i) s += static_cast<double>(h[n * D + i]) * w.f32[v * D + i];
        logits[n * V + v] = static_cast<float>(s);
      }
    }
  }
}

}  // namespace tritter::ref
