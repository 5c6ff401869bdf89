// The transformer layer, written once: forward, what it saves for the backward, and the backward, used by
// inference (prefill and decode over the KV cache), full quantization-aware training and LoRA training (the
// adapters as a hook, also used at inference). Every compute step is a kernels/ op.
//   x → RMSNorm_in → q, k, v (BitLinear) → [QK-Norm] → RoPE → attention → [sub-norm] → o → [post-attn norm] → + x
//     → RMSNorm_ff → up [, gate] → relu² [⊙ up] → [sub-norm] → down → [post-FFN norm] → + h
// The two uses differ only in how some ops run, never in the composition:
//   training (run.save): every norm keeps its rstd, BitLinear inputs are kept quantized (xq, scale) for dW, and
//     attention runs over the in-batch q, k, v of B sequences saving the row logsumexp;
//   inference: norms are fused with the int8 quantization (nothing to save), and attention writes k, v to a KvStore
//     and reads its rows (positions pos0 ..).
// Non-goals: a graph runtime; a second copy of this composition anywhere.
#pragma once
#include <chrono>
#include <cstdint>

#include "core/context.h"
#include "kernels/attention.h"
#include "kernels/nn.h"
#include "model/config.h"
#include "model/layer_view.h"

namespace tritter {

// A layer's weights as the block reads them: gains, and the projections as BitWeights (packed ternary + σ, or
// the fp latent when quant=false). Built once per model (train/) or per layer load (infer/).
using BlockWeights = LayerSlots<const float*, BitWeight>;
// Gradients of a layer's tensors (training): null = frozen (no dW, no dg) — LoRA's base.
using BlockGrads = LayerSlots<float*, float*>;
// The packed form (model/packed_model.h LayerWeights) as block weights.
BlockWeights block_weights(const LayerSlots<const float*, TernaryMatrix>& packed);

// What one layer's forward keeps for its backward (training), or the buffers it runs in (inference, where the
// BitInputs share one buffer, rstd pointers are null, h is x, and qraw/kraw/spre alias q/k/u).
struct BlockActs {
  float* x = nullptr;      // (N, D) layer input (the residual stream)
  float* r_in = nullptr;   // (N)
  BitInput a;              // (N, D) input of q/k/v
  float *qraw = nullptr, *rq = nullptr, *kraw = nullptr, *rk = nullptr;  // pre-QK-norm (N, H·d), (N·H) ...
  float *q = nullptr, *k = nullptr, *v = nullptr;  // post-RoPE q (N, H·d), k, v (N, K·d)
  float *att = nullptr, *lse = nullptr;            // (N, H·d), (B, H, T)
  float* r_att = nullptr;                          // (N) sub-norm
  BitInput o;                                      // (N, H·d) input of o_proj
  float *y = nullptr, *r_y = nullptr;              // (N, D) o_proj output, post_norm == Both
  float *h = nullptr, *r_h = nullptr;              // (N, D) mid residual
  BitInput m;                                      // (N, D) input of up/gate
  float *u = nullptr, *gt = nullptr;               // (N, F) up and gate outputs
  float *spre = nullptr, *r_s = nullptr;           // (N, F) MLP activation before the sub-norm
  BitInput s;                                      // (N, F) input of down_proj
  float *f = nullptr, *r_f = nullptr;              // (N, D) down_proj output before the post-FFN norm
};

// Temporaries of one layer (not saved).
struct BlockScratch {
  float* fp = nullptr;      // (N, max(D, H·d, F)): the fp normalized input of a projection (training; LoRA)
  float* act = nullptr;     // (N, F): the MLP activation when there is no sub-norm
  float* tmp_d = nullptr;   // (N, D): a branch output before it joins the residual
  float* attn = nullptr;    // prefill attention scratch (attention_scratch_floats)
  // Backward only.
  float *d_d1 = nullptr, *d_d2 = nullptr, *d_hd1 = nullptr, *d_hd2 = nullptr, *d_f1 = nullptr, *d_f2 = nullptr,
        *d_f3 = nullptr, *d_q = nullptr, *d_k = nullptr, *d_v = nullptr, *d_q2 = nullptr, *d_k2 = nullptr;
  float* xt = nullptr;      // (N, max(D, H·d, F)): x̃ for dW and the accumulate scratch of dx
  float* dg = nullptr;      // (max(D, H·d, F, d)): where the gradients of frozen gains go (never read)
};

// Adapters on the projections (LoRA). The block hands each targeted projection the fp, UN-quantized normalized
// input of its family (proj_input), and adds the adapter's output to the projection's.
class LoraHook {
 public:
  virtual ~LoraHook() = default;
  virtual bool targets(int layer, int proj) const = 0;
  bool reads_input(int layer, int input) const {
    for (int p = 0; p < kProjCount; ++p)
      if (static_cast<int>(proj_input(static_cast<Proj>(p))) == input && targets(layer, p)) return true;
    return false;
  }
  // x (N, I): the input `input` of `layer`, once per forward before its projections; returns what the adapters
  // read (training keeps it, with dropout).
  virtual const float* take_input(int /*layer*/, int /*input*/, const float* x, int64_t /*N*/,
                                  int64_t /*I*/) const {
    return x;
  }
  // y (N, O) += the adapters' output for input x (N, I).
  virtual void forward(const Context& ctx, int layer, int proj, const float* x, int64_t N, float* y) const = 0;
  // Training: accumulates the adapters' gradients for dy (N, O) and, when dx is not null, dx (N, I) += their
  // input gradient.
  virtual void backward(const Context& ctx, int layer, int proj, const float* dy, int64_t N, float* dx) const;
};

// Where inference keeps keys and values (infer's KvCache implements it).
class KvStore {
 public:
  virtual ~KvStore() = default;
  // k, v (T, K, d) of positions pos0 .. pos0+T−1 of `layer`.
  virtual void write(int layer, int64_t pos0, int64_t T, const float* k, const float* v) = 0;
  virtual KvRows rows(int layer) const = 0;
};

// Wall time per op family, accumulated over block and model calls (`tritter bench train`, --verbose).
enum class Op : int {
  Norm, Quantize, BitFwd, BitDx, GemmDw, AttnFwd, AttnBwd, Elementwise, Head, WeightQuant, Lora, Count
};
const char* op_name(Op op);
struct OpTimes {
  double seconds[static_cast<int>(Op::Count)] = {};
  void clear() { *this = OpTimes{}; }
  double of(Op op) const { return seconds[static_cast<int>(op)]; }
};
// Adds the wall time of its scope to one op family (no-op without OpTimes).
class OpTimer {
 public:
  OpTimer(OpTimes* t, Op op) : t_(t), op_(op), start_(t ? std::chrono::steady_clock::now() : Clock::time_point{}) {}
  ~OpTimer() {
    if (t_) t_->seconds[static_cast<int>(op_)] += std::chrono::duration<double>(Clock::now() - start_).count();
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  OpTimes* t_;
  Op op_;
  Clock::time_point start_;
};

// One call of the block: which layer, the rows, and where attention reads.
struct BlockRun {
  BlockRun(const Context& c, const TritterConfig& cfg) : ctx(c), config(cfg) {}
  const Context& ctx;
  const TritterConfig& config;
  int layer = 0;
  int64_t B = 1, T = 1;        // B sequences of T tokens: N = B·T rows
  bool save = false;           // training: keep what the backward needs
  // Attention source. kv == null: in-batch (prefill over q, k, v with `attn`, positions 0 .. T−1 of each
  // sequence, rope tables (T, d/2)); otherwise the store, positions pos0 .. pos0+T−1, rope tables (context, d/2).
  KvStore* kv = nullptr;
  int64_t pos0 = 0;
  // Batched rows (kvs not null, kv null, T = 1): row b of the B rows is one token at position positions[b] of the
  // sequence whose store is kvs[b] (B entries each); rows of one store come in order at consecutive positions.
  // Rope tables (context, d/2). Norms, quantization and the projections run once over all B rows (one GEMM);
  // RoPE and attention per row (every row's k, v are written before any row attends).
  KvStore* const* kvs = nullptr;
  const int64_t* positions = nullptr;
  AttnShape attn;              // in-batch shape and mask
  AttnMask mask;               // the store's mask (absolute positions)
  const float* rope_cos = nullptr;
  const float* rope_sin = nullptr;
  const LoraHook* lora = nullptr;
  OpTimes* times = nullptr;
  int64_t N() const { return B * T; }

  // A training call (in-batch attention over attn.B sequences of attn.T tokens, saving for the backward) with
  // rope tables (T, d/2) from position 0.
  static BlockRun training(const Context& ctx, const TritterConfig& config, int layer, const AttnShape& attn,
                           const float* rope_cos, const float* rope_sin) {
    BlockRun run(ctx, config);
    run.layer = layer;
    run.B = attn.B;
    run.T = attn.T;
    run.save = true;
    run.attn = attn;
    run.rope_cos = rope_cos;
    run.rope_sin = rope_sin;
    return run;
  }
};

// x_out (N, D) ← the layer applied to A.x (N, D). x_out may be A.x (inference runs in place).
void block_forward(const BlockRun& run, const BlockWeights& w, const BlockActs& A, float* x_out,
                   const BlockScratch& s);
// Backward of the last block_forward with these acts (run.save): dres (N, D) holds the gradient of the layer's
// output and is overwritten with the gradient of its input (unless !need_dx: the input gradient is not
// computed — layer 0 of a model whose embedding is frozen). Accumulates into the non-null grads.
void block_backward(const BlockRun& run, const BlockWeights& w, const BlockGrads& g, const BlockActs& A,
                    float* dres, const BlockScratch& s, bool need_dx = true);

}  // namespace tritter
