// Float ops around the ternary matmuls (forward only; the backward passes live in the model layer):
// RMSNorm (§4.1), fused RMSNorm + activation quantization, RoPE tables and rotate-half application (§4.4),
// squared ReLU and its gated form (§4.6), row softmax. Vectorized with Highway; kernels/ref has the references.
// Single-threaded (callers parallelize over rows). The overloads without a Context use the Auto tier.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/context.h"

namespace tritter {

// y (N, n) = x · r · g with r = 1/sqrt(mean_j x_j² + eps) per row (eps inside the root). y may alias x.
void rmsnorm(float* y, const float* x, const float* g, int64_t N, int64_t n, float eps);
void rmsnorm(const Context& ctx, float* y, const float* x, const float* g, int64_t N, int64_t n, float eps);
// Fused: xq (N, n) i8, scale (N) = quantize_activations(rmsnorm(x)) without storing the float row. Equal bit for
// bit to rmsnorm followed by quantize_activations on the same tier. Throws Error on NaN/Inf.
void rmsnorm_quantize(int8_t* xq, float* scale, const float* x, const float* g, int64_t N, int64_t n, float eps);
void rmsnorm_quantize(const Context& ctx, int8_t* xq, float* scale, const float* x, const float* g, int64_t N,
                      int64_t n, float eps);

// cos, sin (T, d/2): φ[t, j] = (pos0 + t) · θ^(−2j/d) in double, rounded to f32 after cos/sin. d must be even.
void rope_tables(float* cos, float* sin, int64_t T, int64_t d, double theta, int64_t pos0);

// RoPE scaling for positions beyond the trained ones, as Hugging Face's `rope_scaling` config names it
// (docs/long-context.md has the formulas). "original" = original_max_position_embeddings, or the model's
// max_position_embeddings when that key is absent (0 here).
//   Linear:  inv_freq / factor (position interpolation).
//   Dynamic: NTK-aware: θ' = θ · (factor · n / original − (factor − 1))^(d/(d−2)) with n = max(seq_len, original);
//            plain RoPE while seq_len ≤ original. Tritter computes it once for the context the tables cover.
//   Yarn:    per frequency, a ramp between interpolation (inv/factor) and extrapolation (inv) over the dimensions
//            whose rotation count at `original` lies between beta_slow and beta_fast; cos and sin × attention_factor
//            (default 0.1·ln(factor) + 1, or mscale/mscale_all_dim's ratio when both are given).
//   Llama3:  wavelengths above original/low_freq_factor divided by factor, below original/high_freq_factor kept,
//            smoothly interpolated between.
struct RopeScaling {
  enum class Type { None, Linear, Dynamic, Yarn, Llama3 };
  Type type = Type::None;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;  // 0: absent
  double beta_fast = 32.0, beta_slow = 1.0;       // yarn
  std::optional<double> attention_factor;         // yarn
  double mscale = 0.0, mscale_all_dim = 0.0;      // yarn; 0: absent
  bool truncate = true;                           // yarn: floor/ceil the correction range
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  bool operator==(const RopeScaling&) const = default;
};
const char* rope_scaling_name(RopeScaling::Type t);  // "default" "linear" "dynamic" "yarn" "llama3"
struct RopeFrequencies {
  std::vector<double> inv_freq;   // (d/2)
  double attention_factor = 1.0;  // cos and sin are multiplied by it
};
// max_positions: the model's max_position_embeddings; seq_len: the positions the tables cover (dynamic only).
RopeFrequencies rope_frequencies(int64_t d, double theta, const RopeScaling& s, int64_t max_positions,
                                 int64_t seq_len);
// cos, sin (T, d/2): φ[t, j] = (pos0 + t) · inv_freq[j], × attention_factor, in double then f32. With s.type None
// equal to the form above bit for bit.
void rope_tables(float* cos, float* sin, int64_t T, int64_t d, double theta, int64_t pos0, const RopeScaling& s,
                 int64_t max_positions, int64_t seq_len);
// x (T, heads, d) in place, rotate-half: r1 = u1·c − u2·s, r2 = u2·c + u1·s with u1 = x[..., :d/2].
void rope_apply(float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d);
void rope_apply(const Context& ctx, float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d);

// y (n) = relu(x)². y may alias x.
void relu2(float* y, const float* x, int64_t n);
void relu2(const Context& ctx, float* y, const float* x, int64_t n);
// y (n) = relu(gate)² · up (§4.6, BitNet 2B4T: the gate is squared). y may alias gate or up.
void relu2_glu(float* y, const float* gate, const float* up, int64_t n);
void relu2_glu(const Context& ctx, float* y, const float* gate, const float* up, int64_t n);
// x (rows, n) in place: softmax over each row, the row max subtracted first. −inf entries give 0.
void softmax_rows(float* x, int64_t rows, int64_t n);
void softmax_rows(const Context& ctx, float* x, int64_t rows, int64_t n);

}  // namespace tritter
