// Reference activation quantizer (training-spec §3): absmax per row, 127/absmax, ties-to-even, true division.
#include <cmath>

#include "core/error.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"

namespace tritter::ref {

void quantize_activations(int8_t* xq, float* scale, const float* x, int64_t N, int64_t I) {
  for (int64_t n = 0; n < N; ++n) {
    const float* row = x + n * I;
    float absmax = 0.0f;
    for (int64_t k = 0; k < I; ++k) {
      if (!std::isfinite(row[k])) {
        throw_error("quantize_activations: row ", n, " column ", k, ": found ", row[k], ", expected a finite value");
      }
      absmax = std::fmax(absmax, std::fabs(row[k]));
    }
    const float s = 127.0f / std::fmax(absmax, kQuantEps);
    scale[n] = s;
    for (int64_t k = 0; k < I; ++k) {
      const float q = std::nearbyint(row[k] * s);
      xq[n * I + k] = static_cast<int8_t>(std::fmin(std::fmax(q, -127.0f), 127.0f));
    }
  }
}

}  // namespace tritter::ref
