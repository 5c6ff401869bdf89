// Reference LM head (kernels/head.h contract): f32 dot products in double; int8 through the reference activation
// quantizer, the exact int32 sum and the fast head's epilogue (float)acc · row_scale / hs; i4 the same with each
// group's exact sum times its multiplier (head.h), in column order.
#include "kernels/ref/ref.h"

#include <cstdint>

#include "core/error.h"

namespace tritter::ref {

void lm_head_forward(float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V, int64_t D,
                     int8_t* hq, float* hs) {
  if (w.format != HeadFormat::F32) quantize_activations(hq, hs, h, N, D);
  const int64_t G = head_i4_groups(D), row_bytes = head_i4_row_bytes(D);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t v = 0; v < V; ++v) {
      if (w.format == HeadFormat::I4) {
        int64_t acc = 0;  // int64: the contract's bound (below 2^31) is asserted, not assumed
        for (int64_t g = 0; g < G; ++g) {
          int64_t s = 0;
          for (int64_t j = 0; j < kHeadI4Group && g * kHeadI4Group + j < D; ++j) {
            const uint8_t b = w.q4[v * row_bytes + 16 * g + (j & 15)];
            s += ((j < 16 ? b & 15 : b >> 4) - 8) * int64_t{hq[n * D + g * kHeadI4Group + j]};
          }
          acc += int64_t{w.mult[v * G + g]} * s;
        }
        TRITTER_CHECK(acc >= INT32_MIN && acc <= INT32_MAX, "i4 head: sum ", acc, " outside int32");
        logits[n * V + v] = static_cast<float>(static_cast<int32_t>(acc)) * w.row_scale[v] / hs[n];
      } else if (w.format == HeadFormat::I8) {
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
