// Internal: the SIMD bodies behind the public kernel headers. `tier` is already resolved (never Reference here;
// Auto only for the Highway ops, meaning Highway's own best target). Not part of the public API.
#pragma once
#include <cstdint>

#include "core/context.h"
#include "kernels/ternary_matmul.h"

namespace tritter::cpu {

// ---- Highway float ops (ops_hwy.cpp) ----
void quantize_activations(KernelTier tier, int8_t* xq, float* scale, const float* x, int64_t N, int64_t I);
void rmsnorm(KernelTier tier, float* y, const float* x, const float* g, int64_t N, int64_t n, float eps);
void rmsnorm_quantize(KernelTier tier, int8_t* xq, float* scale, const float* x, const float* g, int64_t N,
                      int64_t n, float eps);
// Training's RMSNorm over N rows: the forward keeps rstd (N); the backward adds into dx (N, n) and dg (n).
void rmsnorm_forward_rows(KernelTier tier, float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n,
                          float eps);
void rmsnorm_backward_rows(KernelTier tier, float* dx, float* dg, const float* dy, const float* x, const float* rstd,
                           const float* g, int64_t N, int64_t n);
void rope_apply(KernelTier tier, float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d);
void relu2(KernelTier tier, float* y, const float* x, int64_t n);
void relu2_glu(KernelTier tier, float* y, const float* gate, const float* up, int64_t n);
void softmax_rows(KernelTier tier, float* x, int64_t rows, int64_t n);
void elu(KernelTier tier, float* y, const float* x, int64_t n, float alpha);  // kernels/conv.h's ELU forward
void elu_backward(KernelTier tier, float* dx, const float* dy, const float* x, int64_t n, float alpha);
// One row of the prefill attention (attention_prefill.cpp): the softmax in place, returning its log-sum-exp; and
// its backward, p = exp(s − lse) in place of the scores s and ds ← p ⊙ (ds − delta).
float softmax_row_lse(KernelTier tier, float* row, int64_t n);
void softmax_backward_row(KernelTier tier, float* s, float* ds, int64_t n, float lse, float delta);
// dx (N, I) = dy (N, O) · Wq / σ for the tile columns [cb_begin, cb_end) (one thread's share).
void ternary_matmul_t_cols(KernelTier tier, float* dx, const float* dy, const TernaryMatrix& w, int64_t N,
                           int64_t cb_begin, int64_t cb_end);

// ---- Integer T16 matmul bodies (matmul_*.cpp), which also run T20 matrices ----
// One call computes rows [16·rb_begin, 16·rb_end) for all N tokens. A T20 matrix (a.w->layout) runs the AVX-512
// body's own GEMV for few tokens; otherwise each band is decoded to T16 in a per-call buffer (t20_band_to_t16_*)
// and goes through the T16 code. Exactly one of acc (N, O) i32 and
// y (N, O) f32 is non-null; y uses x_scale (N) and the shared epilogue acc / (x_scale · σ).
struct T16Args {
  const int8_t* xq;  // (N, I) i8
  const TernaryMatrix* w;
  int64_t N;
  int32_t* acc;
  float* y;
  const float* x_scale;
};
void t16_matmul_scalar(const T16Args& a, int64_t rb_begin, int64_t rb_end);
void t16_matmul_avx2(const T16Args& a, int64_t rb_begin, int64_t rb_end);
void t16_matmul_avx512vnni(const T16Args& a, int64_t rb_begin, int64_t rb_end);
// The band decoders: the bytes ternary_t20_band_to_t16 writes, 4 T20 tiles (5 T16 tiles) per step.
void t20_band_to_t16_avx2(uint8_t* out, const uint8_t* band, int64_t cols);
void t20_band_to_t16_avx512(uint8_t* out, const uint8_t* band, int64_t cols);
// Steps of 4 T20 tiles the SIMD decoders take in a band of `cols` columns: never more T16 tiles (5 a step) than
// the band has, so the buffer is exactly ceil(cols/16)·64 bytes; ternary_t20_band_to_t16 writes the rest.
inline int64_t t20_decode_steps(int64_t cols) {
  const int64_t ncb16 = (cols + 15) / 16, ncb20 = (cols + 19) / 20;
  return ncb20 / 4 < ncb16 / 5 ? ncb20 / 4 : ncb16 / 5;
}

// ---- f16 conversions with F16C (f16_f16c.cpp; x86-64 only, for CPUs that have F16C and AVX) ----
void kv_f16_encode_f16c(uint16_t* out, const float* x, int64_t n);
void kv_f16_decode_f16c(float* out, const uint16_t* in, int64_t n);

// ---- Int8 LM head (head_avx2.cpp, head_avx512vnni.cpp) ----
// logits[n·V + v] = (float)(Σ_i w[v·D + i]·hq[n·D + i]) · row_scale[v] / hs[n] for rows v0 .. v1−1 and all N
// tokens; the int32 sum is exact (hq ∈ [−127, 127], w any int8).
void head_i8_rows_avx2(float* logits, const int8_t* hq, const float* hs, int64_t N, const int8_t* w,
                       const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D);
// The same with AVX-512 VNNI (head_avx512vnni.cpp); hsum[n] = Σ_i hq[n·D + i]; D < 65536.
void head_i8_rows_avx512vnni(float* logits, const int8_t* hq, const float* hs, const int32_t* hsum, int64_t N,
                             const int8_t* w, const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D);

// ---- 4-bit LM head (head_i4_avx2.cpp, head_i4_avx512vnni.cpp; layout and contract in kernels/head.h) ----
// logits[n·V + v] = (float)A · row_scale[v] / hs[n], A = Σ_g mult[v·G + g] Σ_{i∈g} (nibble − 8)·hq[n·D + i], exact;
// nibbles in [1, 15] (levels ±7), G ≤ kHeadI4MaxGroups.
void head_i4_rows_avx2(float* logits, const int8_t* hq, const float* hs, int64_t N, const uint8_t* q4,
                       const uint8_t* mult, const float* row_scale, int64_t v0, int64_t v1, int64_t V, int64_t D);
void head_i4_rows_avx512vnni(float* logits, const int8_t* hq, const float* hs, int64_t N, const uint8_t* q4,
                             const uint8_t* mult, const float* row_scale, int64_t v0, int64_t v1, int64_t V,
                             int64_t D);

}  // namespace tritter::cpu
