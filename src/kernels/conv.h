// The ops of an audio codec of the EnCodec family (SEANet encoder/decoder): 1-D convolution, transposed
// convolution, padding, ELU, the LSTM and weight normalization, as forward/backward pairs in PyTorch's layouts — activations (B, C, T), Conv1d
// weights (Cout, Cin, K), ConvTranspose1d weights (Cin, Cout, K) — so Hugging Face tensors load as they are.
// Convolutions here are "valid" (no padding of their own): a codec pads first with pad1d (EnCodec pads causally,
// in reflect mode). Backwards accumulate into dx, dw and db (a null pointer skips that gradient). Products go through
// gemm_f32 (im2col / col2im); ctx.kernels == Reference runs kernels/ref's direct loops (double sums).
#pragma once
#include <cstdint>

#include "core/context.h"

namespace tritter {

struct Conv1dShape {
  int64_t B = 1, Cin = 1, Cout = 1;
  int64_t T = 1;  // input length
  int64_t K = 1, stride = 1, dilation = 1;
  // Conv1d: output length ⌊(T − dilation·(K−1) − 1) / stride⌋ + 1 (≥ 1, or the call is an Error).
  int64_t conv_out() const { return (T - dilation * (K - 1) - 1) / stride + 1; }
  // ConvTranspose1d: (T − 1)·stride + dilation·(K−1) + 1 (PyTorch's with padding 0, output_padding 0).
  int64_t transpose_out() const { return (T - 1) * stride + dilation * (K - 1) + 1; }
};

// y (B, Cout, T') = w ⋆ x + b, T' = s.conv_out(); b (Cout) may be null.
void conv1d_forward(const Context& ctx, float* y, const float* x, const float* w, const float* b,
                    const Conv1dShape& s);
// dx (B, Cin, T) +=, dw (Cout, Cin, K) +=, db (Cout) += from dy (B, Cout, T'); any of dx, dw, db may be null.
void conv1d_backward(const Context& ctx, float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv1dShape& s);

// y (B, Cout, T') = ConvTranspose1d(x; w (Cin, Cout, K)) + b, T' = s.transpose_out(): each input step t adds
// w[c, :, k]·x[c, t] at output step t·stride + k·dilation.
void conv_transpose1d_forward(const Context& ctx, float* y, const float* x, const float* w, const float* b,
                              const Conv1dShape& s);
void conv_transpose1d_backward(const Context& ctx, float* dx, float* dw, float* db, const float* dy, const float* x,
                               const float* w, const Conv1dShape& s);

// Padding of the last axis: rows (B·C) of length T → left + T + right. Zero, or Reflect (PyTorch's: the edge sample
// is not repeated, x[−i] = x[i]; needs left, right < T).
enum class PadMode { Zero, Reflect };
void pad1d_forward(const Context& ctx, float* y, const float* x, int64_t rows, int64_t T, int64_t left, int64_t right,
                   PadMode mode);
// dx (rows, T) += the gradient of dy (rows, left + T + right) through the padding.
void pad1d_backward(const Context& ctx, float* dx, const float* dy, int64_t rows, int64_t T, int64_t left,
                    int64_t right, PadMode mode);

// ELU: y = x for x > 0, alpha·(exp(x) − 1) otherwise. The backward overwrites dx = dy·(x > 0 ? 1 : alpha·exp(x)).
void elu_forward(const Context& ctx, float* y, const float* x, int64_t n, float alpha);
void elu_backward(const Context& ctx, float* dx, const float* dy, const float* x, int64_t n, float alpha);

// ---- LSTM, one layer (PyTorch's nn.LSTM, batch_first): gates in the order i, f, g, o; weights w_ih (4H, I),
// w_hh (4H, H), biases b_ih, b_hh (4H); the initial state is zero. x (B, T, I) → y (B, T, H), the hidden state of
// every step. Saves: gates (B, T, 4H) after their activations (σ, σ, tanh, σ) and c (B, T, H), the cell states.
void lstm_forward(const Context& ctx, float* y, float* gates, float* c, const float* x, const float* w_ih,
                  const float* w_hh, const float* b_ih, const float* b_hh, int64_t B, int64_t T, int64_t I, int64_t H);
// Backpropagation through time from dy (B, T, H): dx (B, T, I) +=, dw_ih, dw_hh, db (4H, for both biases: they
// have the same gradient) +=; any may be null. y, gates, c are the forward's.
void lstm_backward(const Context& ctx, float* dx, float* dw_ih, float* dw_hh, float* db, const float* dy,
                   const float* x, const float* y, const float* gates, const float* c, const float* w_ih,
                   const float* w_hh, int64_t B, int64_t T, int64_t I, int64_t H);

// ---- Weight normalization (PyTorch's weight_norm over dim 0, as EnCodec's weight_g / weight_v): each of O rows of
// n weights is w = g·v/‖v‖. The backward adds dg (O) = dw·v̂ and dv (O, n) = (g/‖v‖)·(dw − (dw·v̂)·v̂), v̂ = v/‖v‖.
void weight_norm_forward(const Context& ctx, float* w, const float* g, const float* v, int64_t O, int64_t n);
void weight_norm_backward(const Context& ctx, float* dg, float* dv, const float* dw, const float* g, const float* v,
                          int64_t O, int64_t n);

// ---- Vector quantization (a codebook of the residual VQ): ids (N) of the rows of table (V, D) nearest to each row
// of x (N, D) in squared distance, ties to the lowest id; table_sq (V) = ‖table_v‖². Computed as the argmax of
// 2·x·table_v − ‖table_v‖² (‖x‖² is common to a row), the same expansion transformers' EnCodec uses.
void vq_nearest(const Context& ctx, int32_t* ids, const float* x, const float* table, const float* table_sq, int64_t N,
                int64_t D, int64_t V);

}  // namespace tritter
