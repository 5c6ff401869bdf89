// Reference kernels: the plain scalar definitions every fast path is tested against (DESIGN.md principle 1), and
// what `--kernels ref` runs. Written for obviousness, never for speed; never deleted.
#pragma once
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/head.h"
#include "kernels/kv_quant.h"
#include "kernels/nn.h"
#include "kernels/ops.h"
#include "kernels/spectral.h"
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
// RoPE scaling's inverse frequencies and attention factor (kernels/ops.h rope_frequencies), HF's formulas as written.
RopeFrequencies rope_frequencies(int64_t dim, double base, const RopeScaling& s, int64_t max_position_embeddings,
                                 int64_t seq_len);
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

// ---- The transformer's forward/backward ops (kernels/nn.h contracts, without the Context). Sums in double,
// one rounding to float per output; element-wise ops are the formula in the header, in float where the fast op's
// result is a single rounding anyway (add) and in double otherwise.
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n, float eps);
void rmsnorm_backward(float* dx, float* dg, const float* dy, const float* x, const float* rstd, const float* g,
                      int64_t N, int64_t n);
void bitinput_set(const BitInput& in, const float* x, int64_t N, int64_t I, bool quant);
const float* bitinput_float(const BitInput& in, float* scratch, int64_t N, int64_t I, bool quant);
void bitlinear_forward(float* y, const BitInput& in, const BitWeight& w, int64_t N);
void bitlinear_backward_dx(float* dx, const float* dy, const BitWeight& w, int64_t N, bool accumulate);
void bitlinear_backward_dw(float* dw, const float* dy, const float* xt, int64_t N, int64_t O, int64_t I);
void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t I, int64_t O);
void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t I,
                     int64_t O, bool accumulate_dx);
void add_into(float* y, const float* x, int64_t n);
void add(float* y, const float* a, const float* b, int64_t n);
void rope_forward(float* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t heads, int64_t d);
void rope_backward(float* dx, const float* cos, const float* sin, int64_t B, int64_t T, int64_t heads, int64_t d);
void relu2_backward(float* du, const float* ds, const float* u, int64_t n);
void relu2_glu_backward(float* dgate, float* dup, const float* ds, const float* gate, const float* up, int64_t n);
void embedding_forward(float* x, const float* E, const int32_t* ids, int64_t N, int64_t D, int64_t V);
void embedding_backward(float* dE, const float* dx, const int32_t* ids, int64_t N, int64_t D);
double cross_entropy_forward_backward(float* dz, const float* z, const int32_t* targets, int64_t N, int64_t V,
                                      double z_loss, float grad_scale);
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s);
void l2norm_rows_forward(float* y, float* r, const float* x, int64_t N, int64_t n);
void l2norm_rows_backward(float* dx, const float* dy, const float* y, const float* r, int64_t N, int64_t n,
                          bool accumulate);
void cosine_logits_forward(float* z, const float* hn, const float* En, float s, int64_t N, int64_t D, int64_t V);
double cosine_logits_backward(float* dhn, float* dEn, float* dz, const float* z, const float* hn, const float* En,
                              float s, int64_t N, int64_t D, int64_t V, bool accumulate);
double embed_pred_forward_backward(float* dhn, float* dEn, const float* hn, const float* En, const int32_t* targets,
                                   int64_t N, int64_t D, int64_t V, double beta, float grad_scale, double* mean_cos);
// (relu2_forward and relu2_glu_forward are relu2 and relu2_glu above; rope_tables is plain double code already.)

// ---- Attention (kernels/attention.h contracts, no scratch): the scores of every (query, key) pair materialized,
// the mask read through AttnMask::visible(i, j, n) one pair at a time, softmax and products in double.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const AttnShape& s);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const AttnShape& s);
// Each query reads its visible rows through kv_rows.fetch (one call per kv head and query).
void attention_cached(float* o, const float* q, const KvRows& kv_rows, int64_t pos0, int64_t T,
                      const CachedAttnShape& s);

// ---- LM head (kernels/head.h contract). f32: sums in double. i8: the exact int32 sum and the same float
// epilogue as the fast head ((float)acc · row_scale / hs), so both agree bit for bit.
void lm_head_forward(float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V, int64_t D,
                     int8_t* hq, float* hs);

// ---- KV cache quantizers (kernels/kv_quant.h contracts): per element, the levels written one at a time.
void kv_minmax_params(const float* x, int64_t n, int64_t stride, int levels, float* mn, float* scale);
void kv_quantize_key_group(uint8_t* data, size_t row_bytes, float* params, const float* x, int64_t G, int64_t d,
                           int bits);
void kv_dequantize_key_row(float* out, const uint8_t* row, const float* params, int64_t d, int bits);
void kv_quantize_value_row(uint8_t* row, float* params, const float* x, int64_t d, int64_t gv, int bits);
void kv_dequantize_value_row(float* out, const uint8_t* row, const float* params, int64_t d, int64_t gv, int bits);
// IEEE binary16 by bit manipulation (round to nearest even, subnormals, inf/NaN), not the compiler's _Float16.
void kv_f16_encode(uint16_t* out, const float* x, int64_t n);
void kv_f16_decode(float* out, const uint16_t* in, int64_t n);

// The epilogue every tier shares so the float outputs agree bit for bit: acc / (scale · σ), one rounding each.
inline float ternary_epilogue(int32_t acc, float x_scale, float sigma) {
  return static_cast<float>(acc) / (x_scale * sigma);
}

// 1-D convolution ops (kernels/conv.h): direct loops over the definition, sums in double.
void conv1d_forward(float* y, const float* x, const float* w, const float* b, const Conv1dShape& s);
void conv1d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                     const Conv1dShape& s);
void conv_transpose1d_forward(float* y, const float* x, const float* w, const float* b, const Conv1dShape& s);
void conv_transpose1d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                               const Conv1dShape& s);
void pad1d_forward(float* y, const float* x, int64_t rows, int64_t T, int64_t left, int64_t right, PadMode mode);
void pad1d_backward(float* dx, const float* dy, int64_t rows, int64_t T, int64_t left, int64_t right, PadMode mode);
void elu_forward(float* y, const float* x, int64_t n, float alpha);
void elu_backward(float* dx, const float* dy, const float* x, int64_t n, float alpha);
void lstm_forward(float* y, float* gates, float* c, const float* x, const float* w_ih, const float* w_hh,
                  const float* b_ih, const float* b_hh, int64_t B, int64_t T, int64_t I, int64_t H);
void lstm_backward(float* dx, float* dw_ih, float* dw_hh, float* db, const float* dy, const float* x, const float* y,
                   const float* gates, const float* c, const float* w_ih, const float* w_hh, int64_t B, int64_t T,
                   int64_t I, int64_t H);
void weight_norm_forward(float* w, const float* g, const float* v, int64_t O, int64_t n);
void vq_nearest(int32_t* ids, const float* x, const float* table, const float* table_sq, int64_t N, int64_t D,
                int64_t V);
void weight_norm_backward(float* dg, float* dv, const float* dw, const float* g, const float* v, int64_t O, int64_t n);

// Mel spectrogram (kernels/spectral.h): Hann window and DFT by their definitions, sums in double.
void mel_spectrogram_forward(float* mel, float* spec, float* mag, const float* x, const MelBasis& m, int64_t B,
                             int64_t T);
void mel_spectrogram_backward(float* dx, const float* dmel, const float* spec, const float* mag, const MelBasis& m,
                              int64_t B, int64_t T);

}  // namespace tritter::ref
