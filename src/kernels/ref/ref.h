// Reference kernels: the plain scalar definitions every fast path is tested against (DESIGN.md principle 1), and
// what `--kernels ref` runs. Written for obviousness, never for speed; never deleted.
#pragma once
#include <cstdint>

#include "kernels/ternary_matmul.h"

namespace tritter::ref {

// Quantizers (same contracts as kernels/quantize.h).
void quantize_activations(int8_t* xq, float* scale, const float* x, int64_t N, int64_t I);

// Matrix kernels over the kernel layout, weights read one by one with ternary_matrix_at.
void ternary_matmul_i32(int32_t* acc, const int8_t* xq, const TernaryMatrix& w, int64_t N);
void ternary_matmul(float* y, const int8_t* xq, const float* x_scale, const TernaryMatrix& w, int64_t N);
void ternary_matmul_t(float* dx, const float* dy, const TernaryMatrix& w, int64_t N);  // sums in double

// Float ops (same contracts as kernels/ops.h); reductions in double.
void rmsnorm(float* y, const float* x, const float* g, int64_t N, int64_t n, float eps);
void rmsnorm_quantize(int8_t* xq, float* scale, const float* x, const float* g, int64_t N, int64_t n, float eps);
void rope_apply(float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d);
void relu2(float* y, const float* x, int64_t n);
void relu2_glu(float* y, const float* gate, const float* up, int64_t n);
void softmax_rows(float* x, int64_t rows, int64_t n);

// Dense GEMM (kernels/gemm.h contract), sums in double.
void gemm_f32(float* C, const float* A, const float* B, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b,
              float alpha, float beta, int64_t lda, int64_t ldb, int64_t ldc);

// LoRA delta (same contract as kernels/lora.h); both products in double.
void lora_delta_forward(float* y, const float* x, const float* A, const float* Bt, int64_t T, int64_t r, int64_t I,
                        int64_t O, float scale);

// The epilogue every tier shares so the float outputs agree bit for bit: acc / (scale · σ), one rounding each.
inline float ternary_epilogue(int32_t acc, float x_scale, float sigma) {
  return static_cast<float>(acc) / (x_scale * sigma);
}

}  // namespace tritter::ref
