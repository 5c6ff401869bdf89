// The transformer's float ops as forward/backward pairs (training-spec §4), llm.c style: outputs first, then
// inputs, then sizes. Every forward says what it saves for the backward; every backward ACCUMULATES into parameter
// gradients (dg, dW, dE) and says whether it overwrites or accumulates its input gradient. Threads: OpenMP over
// rows with ctx.threads; dense products through gemm_f32. ctx.kernels == Reference runs kernels/ref's version of
// each op (same signature minus the Context). Attention is kernels/attention.h; the layer that composes these is
// model/block.h.
#pragma once
#include <cstdint>

#include "core/context.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

// ---- RMSNorm (§4.1) over rows of length n. Saves x (the caller keeps it) and rstd.
// y (N, n) = x · r · g, rstd (N) = r = 1/sqrt(mean x² + eps). y must not alias x.
void rmsnorm_forward(const Context& ctx, float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n,
                     float eps);
// dx (N, n) += r ⊙ (dn − n̂ mean(dn ⊙ n̂)) with dn = dy ⊙ g, n̂ = x·r;  dg (n) += Σ_rows dy ⊙ n̂.
// dx must not alias dy or x. dg sums in a fixed per-thread order (deterministic for a fixed thread count).
void rmsnorm_backward(const Context& ctx, float* dx, float* dg, const float* dy, const float* x, const float* rstd,
                      const float* g, int64_t N, int64_t n);

// ---- BitLinear (§4.2). The weight is prepared once per optimizer step (latent W does not change during gradient
// accumulation): Wq packed in the kernel layout and σ. quant=false keeps only the latent pointer.
struct BitWeight {
  const float* w = nullptr;  // latent (O, I)
  int64_t O = 0, I = 0;
  bool quant = true;
  uint8_t* packed = nullptr;  // ternary_matrix_bytes(O, I), owned by the model's weight-cache buffer
  float sigma = 1.0f;
  // Optional (O, I) f32 W̃ = Wq / σ (true division, §4.2): when set, the dx backward is a dense sgemm dy·W̃ instead
  // of kernels' ternary_matmul_t (same maths, float sums in another order; faster while the ternary kernel is not).
  float* wt = nullptr;
  TernaryLayout layout = TernaryLayout::T16;  // of `packed`; T20 only in inference (no backward kernel)
  TernaryMatrix matrix() const { return {packed, O, I, sigma, layout}; }
};
// σ = ternary_sigma(w), Wq = clamp(rne(w·σ)), packed into bw.packed (scratch_q: O·I int8), and W̃ into bw.wt when
// set. No-op when !quant.
void bitweight_prepare(BitWeight& bw, int8_t* scratch_q);

// The saved input of a BitLinear: quant → xq (N, I) i8 + scale (N) (4× smaller than x̃); fp → x (N, I) f32.
struct BitInput {
  int8_t* q = nullptr;
  float* s = nullptr;
  float* f = nullptr;
};
// Stores x (N, I) as the BitLinear input (quantize_activations, or a copy when quant=false).
void bitinput_set(const Context& ctx, const BitInput& in, const float* x, int64_t N, int64_t I, bool quant);
// x̃ (N, I): the dequantized activation xq / s (true division, §3) in `scratch`, or in.f when quant=false.
const float* bitinput_float(const BitInput& in, float* scratch, int64_t N, int64_t I, bool quant);

// y (N, O) = x̃ W̃ᵀ: integer form (xq · Wqᵀ)/(s·σ) through kernels/ternary_matmul, or x Wᵀ (sgemm). Overwrites y.
void bitlinear_forward(const Context& ctx, float* y, const BitInput& in, const BitWeight& w, int64_t N);
// dx (N, I) (=, or += when accumulate) dy W̃: kernels ternary_matmul_t (dy·Wq/σ), sgemm with the cached W̃ (w.wt),
// or, quant=false, sgemm with the latent W.
// scratch (N, I) is used only for quant && accumulate.
void bitlinear_backward_dx(const Context& ctx, float* dx, const float* dy, const BitWeight& w, int64_t N,
                           bool accumulate, float* scratch);
// dW (O, I) += dyᵀ x̃ (dense fp32 GEMM).
void bitlinear_backward_dw(const Context& ctx, float* dw, const float* dy, const float* xt, int64_t N, int64_t O,
                           int64_t I);

// ---- Dense linear for the LM head: y (N, O) = x (N, I) Wᵀ, W (O, I).
void linear_forward(const Context& ctx, float* y, const float* x, const float* w, int64_t N, int64_t I, int64_t O);
// dx (N, I) (= or +=) dy W (skipped when dx is null); dW (O, I) += dyᵀ x (skipped when dw is null: a frozen head).
void linear_backward(const Context& ctx, float* dx, float* dw, const float* dy, const float* x, const float* w,
                     int64_t N, int64_t I, int64_t O, bool accumulate_dx);

// ---- Residual adds. y (n) += x (n); y (n) = a + b (y may alias a or b).
void add_into(const Context& ctx, float* y, const float* x, int64_t n);
void add(const Context& ctx, float* y, const float* a, const float* b, int64_t n);

// ---- RoPE (§4.4), rotate-half. x (B·T, heads, d) in place; cos/sin (T, d/2) from kernels rope_tables.
void rope_forward(const Context& ctx, float* x, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t heads, int64_t d);
// The backward is the rotation by −φ, in place on dx.
void rope_backward(const Context& ctx, float* dx, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t heads, int64_t d);

// ---- Squared ReLU (§4.6). Saves u (and the gate).
void relu2_forward(const Context& ctx, float* s, const float* u, int64_t n);              // s = relu(u)²
void relu2_backward(const Context& ctx, float* du, const float* ds, const float* u, int64_t n);  // du = ds·2relu(u)
void relu2_glu_forward(const Context& ctx, float* s, const float* gate, const float* up, int64_t n);  // relu(g)²·u
// dgate = ds ⊙ up ⊙ 2relu(gate), dup = ds ⊙ relu(gate)² (both overwritten).
void relu2_glu_backward(const Context& ctx, float* dgate, float* dup, const float* ds, const float* gate,
                        const float* up, int64_t n);

// ---- Embedding (§4.7). x (N, D) = E[ids]; ids checked against V (Error on an out-of-range token).
void embedding_forward(float* x, const float* E, const int32_t* ids, int64_t N, int64_t D, int64_t V);
// dE[id_n] += dx[n] (serial scatter-add: repeated ids accumulate, deterministic).
void embedding_backward(float* dE, const float* dx, const int32_t* ids, int64_t N, int64_t D);

// ---- Cross-entropy + z-loss (§4.7) on logits z (N, V). Targets of −100 are ignored; N_v = #valid (min 1).
// Returns the loss (accumulated in double). When dz is non-null it is overwritten with
// dz = (softmax − onehot + 2·z_loss·lse·softmax)/N_v · grad_scale (0 on ignored rows).
// Throws Error on a target outside [0, V) other than −100.
double cross_entropy_forward_backward(const Context& ctx, float* dz, const float* z, const int32_t* targets,
                                      int64_t N, int64_t V, double z_loss, float grad_scale);

// ---- The cosine head (docs/embedding-prediction.md): z_nv = s·ĥ_n·Ê_v with ĥ, Ê the L2-normalized rows of the
// final norm's output and of the embedding table, s the learned scale; plus the auxiliary embedding-prediction term.
// Row L2 normalization: y (N, n) = x·r, r (N) = 1/sqrt(Σx² + 1e-12) (sum in double: every tier and the reference
// get the same unit rows, so the KNN exit compares like with like). Saves y and r. y must not alias x.
inline constexpr double kL2NormEps = 1e-12;
void l2norm_rows_forward(const Context& ctx, float* y, float* r, const float* x, int64_t N, int64_t n);
// dx (N, n) (= or += when accumulate) r ⊙ (dy − (dy·y) y) — exact for the ε-inside-the-root form.
void l2norm_rows_backward(const Context& ctx, float* dx, const float* dy, const float* y, const float* r, int64_t N,
                          int64_t n, bool accumulate);
// z (N, V) = s · hn (N, D) · Enᵀ (V, D).
void cosine_logits_forward(const Context& ctx, float* z, const float* hn, const float* En, float s, int64_t N,
                           int64_t D, int64_t V);
// From dz (N, V) (CE's gradient; scaled by s in place): returns ds = Σ dz·z/s (in double); dhn (N, D) (= or +=
// when accumulate) s·dz·En; dEn (V, D) += s·dzᵀ·hn.
double cosine_logits_backward(const Context& ctx, float* dhn, float* dEn, float* dz, const float* z,
                              const float* hn, const float* En, float s, int64_t N, int64_t D, int64_t V,
                              bool accumulate);
// The auxiliary term β·(1/N_v) Σ_valid (1 − hn_n·En_{y_n}) (targets −100 ignored, N_v = #valid, min 1); returns it
// (β included). dhn (N, D) += −β·grad_scale/N_v · En_y. The targets are stop-gradient unless dEn is non-null:
// then dEn_y += −β·grad_scale/N_v · hn_n. Also returns, through mean_cos when non-null, mean_valid hn_n·En_{y_n}.
double embed_pred_forward_backward(const Context& ctx, float* dhn, float* dEn, const float* hn, const float* En,
                                   const int32_t* targets, int64_t N, int64_t D, int64_t V, double beta,
                                   float grad_scale, double* mean_cos);

// ---- AdamW on n parameters, element-wise in float (the optimizer computes the per-step constants in double):
// p ← p·decay; m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; p ← p − step_size · m / (√v / bc2_sqrt + eps).
struct AdamWStep {
  float decay = 1, b1 = 0.9f, b2 = 0.95f, step_size = 0, bc2_sqrt = 1, eps = 1e-8f;
};
void adamw_update(const Context& ctx, float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s);

}  // namespace tritter
