// Reference LoRA delta (same contract as kernels/lora.h): both products summed in double, y rounded once.
#include <vector>

#include "kernels/ref/ref.h"

namespace tritter::ref {

void lora_delta_forward(float* y, const float* x, const float* A, const float* Bt, int64_t T, int64_t r, int64_t I,
                        int64_t O, float scale) {
  std::vector<double> h(static_cast<size_t>(r));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < r; ++j) {
      double s = 0;
      for (int64_t i = 0; i < I; ++i) s += static_cast<double>(A[j * I + i]) * x[t * I + i];
      h[static_cast<size_t>(j)] = s;
    }
    for (int64_t o = 0; o < O; ++o) {
      double d = 0;
      for (int64_t j = 0; j < r; ++j) d += h[static_cast<size_t>(j)] * Bt[j * O + o];
      y[t * O + o] = static_cast<float>(static_cast<double>(y[t * O + o]) + static_cast<double>(scale) * d);
    }
  }
}

}  // namespace tritter::ref
