// BitNet b1.58 quantizers, bit-exact with training-spec §3 / §4.2: weights absmean → {−1, 0, +1} with one scale
// per logical matrix (β accumulated in double), activations absmax → int8 per token, ties-to-even (nearbyintf)
// and true divisions. Non-finite inputs are a user error (tritter::Error), never silently clamped.
// Not here: the straight-through backward (model layer) and the packed layouts (pack.h, ternary_matmul.h).
#pragma once
#include <cstdint>

#include "core/context.h"

namespace tritter {

inline constexpr float kQuantEps = 1e-5f;  // quant_eps: clamps the absmax and the absmean from below (§3)

// σ for a weight matrix w (n floats, any shape flattened): β = (float)(Σ|w| in double / n); β = fmaxf(β, 1e-5f);
// returns 1.0f / β. Throws Error on n ≤ 0 or a NaN/Inf element.
float ternary_sigma(const float* w, int64_t n);

// q (n) i8 = clamp(rne(w · σ), −1, 1). Throws Error on a NaN/Inf element (q is then unspecified).
void ternary_quantize(int8_t* q, const float* w, int64_t n, float sigma);

// Convenience: σ = ternary_sigma(w, n), then ternary_quantize; returns σ.
float ternary_quantize_absmean(int8_t* q, const float* w, int64_t n);

// Per row n of x (N, I): absmax a_n; scale[n] = 127.0f / fmaxf(a_n, 1e-5f); xq[n, k] = clamp(rne(x · scale[n]),
// −127, 127). xq (N, I) i8, scale (N) f32. Throws Error naming the row and column of the first NaN/Inf.
// Single-threaded; the ctx overload picks the SIMD tier (Reference runs kernels/ref), the other uses Auto.
void quantize_activations(int8_t* xq, float* scale, const float* x, int64_t N, int64_t I);
void quantize_activations(const Context& ctx, int8_t* xq, float* scale, const float* x, int64_t N, int64_t I);

// x̃ (N, I) f32 = xq / scale[n] (a true division, §3): the fake-quantized activation the backward's dW uses.
void dequantize_activations(float* x, const int8_t* xq, const float* scale, int64_t N, int64_t I);

}  // namespace tritter
