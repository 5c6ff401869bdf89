// The one transformer layer (model/block.h): forward, saved set, backward.
#include "model/block.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/parallel.h"
#include "kernels/quantize.h"

namespace tritter {

const char* op_name(Op op) {
  static const char* const names[] = {"rmsnorm fwd+bwd", "activation quantize", "BitLinear fwd (int8 x ternary)",
                                      "BitLinear dx (ternary^T)", "dW GEMM (sgemm)", "attention fwd",
                                      "attention bwd", "rope/relu2/residual/embed", "LM head + CE",
                                      "weight quantize+pack", "LoRA adapters"};
  return names[static_cast<int>(op)];
}

void LoraHook::backward(const Context&, int layer, int proj, const float*, int64_t, float*) const {
  TRITTER_CHECK(false, "this LoRA hook has no backward (layer ", layer, ", projection ", proj, ")");
}

namespace {
void bind(const float*& dst, const float* src) { dst = src; }
void bind(BitWeight& dst, const TernaryMatrix& m) {
  dst.O = m.rows;
  dst.I = m.cols;
  dst.quant = true;
  dst.packed = const_cast<uint8_t*>(m.data);  // read only: the kernels take it as const
  dst.sigma = m.sigma;
  dst.layout = m.layout;
}
}  // namespace

BlockWeights block_weights(const LayerSlots<const float*, TernaryMatrix>& L) {
  BlockWeights w;
#define TRITTER_BIND(field, ...) bind(w.field, L.field);
  TRITTER_LAYER_TENSORS(TRITTER_BIND)
#undef TRITTER_BIND
  return w;
}

namespace {

#define TIMED(op, ...)                    \
  do {                                    \
    OpTimer timer_(run.times, Op::op);    \
    __VA_ARGS__;                          \
  } while (0)

float eps_of(const BlockRun& run) { return static_cast<float>(run.config.rms_norm_eps); }

// y (rows, n) = RMSNorm(x)·g: training keeps rstd (y must not alias x); inference may run in place.
void norm(const BlockRun& run, float* y, float* rstd, const float* x, const float* g, int64_t rows, int64_t n) {
  if (run.save) {
    TIMED(Norm, rmsnorm_forward(run.ctx, y, rstd, x, g, rows, n, eps_of(run)));
  } else {
    TIMED(Norm, rmsnorm(run.ctx, y, x, g, rows, n, eps_of(run)));
  }
}

// x (N, n) → the BitLinear input `in` of the projections reading input `which`, normalized by g unless g is null.
// Returns the fp input the adapters read, or null when none reads it. Training builds the fp row first (kept in
// `fp`, the fp model's input), inference fuses the norm with the quantization and builds the fp row only for an
// adapter.
const float* to_input(const BlockRun& run, const BitInput& in, float* rstd, const float* x, const float* g,
                      int64_t n, int which, float* fp) {
  const int64_t N = run.N();
  const bool adapters = run.lora && run.lora->reads_input(run.layer, which);
  const float* src = x;
  if (run.save) {
    if (g) {
      norm(run, fp, rstd, x, g, N, n);
      src = fp;
    }
    TIMED(Quantize, bitinput_set(run.ctx, in, src, N, n, run.config.quant));
  } else {
    if (g) {
      TIMED(Quantize, rmsnorm_quantize(run.ctx, in.q, in.s, x, g, N, n, eps_of(run)));
    } else {
      TIMED(Quantize, quantize_activations(run.ctx, in.q, in.s, x, N, n));
    }
    if (adapters && g) {
      norm(run, fp, nullptr, x, g, N, n);
      src = fp;
    }
  }
  if (!adapters) return nullptr;
  return run.lora->take_input(run.layer, which, src, N, n);
}

void project(const BlockRun& run, const BlockWeights& w, Proj p, float* y, const BitInput& in, const float* lora_x) {
  TIMED(BitFwd, bitlinear_forward(run.ctx, y, in, w.proj(p), run.N()));
  if (lora_x && run.lora->targets(run.layer, static_cast<int>(p))) {
    TIMED(Lora, run.lora->forward(run.ctx, run.layer, static_cast<int>(p), lora_x, run.N(), y));
  }
}

// x (N, heads, d) rotated in place by its positions.
void rope(const BlockRun& run, float* x, int64_t heads) {
  const int64_t d = run.config.head_dim, half = d / 2;
  if (run.kvs) {
    for (int64_t b = 0; b < run.B; ++b) {
      const int64_t p = run.positions[b];
      TIMED(Elementwise, rope_apply(run.ctx, x + b * heads * d, run.rope_cos + p * half, run.rope_sin + p * half, 1,
                                    heads, d));
    }
  } else if (run.kv) {
    TIMED(Elementwise, rope_apply(run.ctx, x, run.rope_cos + run.pos0 * half, run.rope_sin + run.pos0 * half, run.T,
                                  heads, d));
  } else {
    TIMED(Elementwise, rope_forward(run.ctx, x, run.rope_cos, run.rope_sin, run.B, run.T, heads, d));
  }
}

void attention(const BlockRun& run, const BlockActs& A, const BlockScratch& s) {
  const TritterConfig& c = run.config;
  if (run.kvs) {  // batched decode: each row against its own sequence's store
    const CachedAttnShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim, run.mask};
    const int64_t Hd = c.q_dim(), Kd = c.kv_dim();
    // Writes in row order (a store's positions arrive in order), then the rows' attention in parallel (a row's
    // result does not depend on the thread that runs it; each reads positions ≤ its own).
    TIMED(Elementwise, for (int64_t b = 0; b < run.B; ++b) {
      run.kvs[b]->write(run.layer, run.positions[b], 1, A.k + b * Kd, A.v + b * Kd);
    });
    TIMED(AttnFwd, parallel_for(run.ctx.threads, run.B, [&](int64_t b, int) {
      attention_cached(run.ctx, A.att + b * Hd, A.q + b * Hd, run.kvs[b]->rows(run.layer), run.positions[b], 1,
                       shape);
    }));
    return;
  }
  if (!run.kv) {
    TIMED(AttnFwd, attention_forward(run.ctx, A.att, A.lse, A.q, A.k, A.v, run.attn, s.attn));
    return;
  }
  TIMED(Elementwise, run.kv->write(run.layer, run.pos0, run.T, A.k, A.v));
  const CachedAttnShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim, run.mask};
  TIMED(AttnFwd, attention_cached(run.ctx, A.att, A.q, run.kv->rows(run.layer), run.pos0, run.T, shape));
}

void zero(float* p, int64_t n) { std::memset(p, 0, static_cast<size_t>(n) * sizeof(float)); }

}  // namespace

void block_forward(const BlockRun& run, const BlockWeights& w, const BlockActs& A, float* x_out,
                   const BlockScratch& s) {
  const TritterConfig& c = run.config;
  const Context& ctx = run.ctx;
  const int64_t N = run.N(), D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, d = c.head_dim;
  const float* x = A.x;
  TRITTER_CHECK(!run.kvs || (run.T == 1 && !run.kv && !run.save && run.positions), "batched decode: T ", run.T,
                " (expected 1), kv ", run.kv != nullptr, ", save ", run.save);

  // Attention: h = x + [post_attn_norm](o(attention(rope(qk_norm(q, k)), v))).
  const float* la = to_input(run, A.a, A.r_in, x, w.input_norm, D, 0, s.fp);
  project(run, w, Proj::Q, c.qk_norm ? A.qraw : A.q, A.a, la);
  project(run, w, Proj::K, c.qk_norm ? A.kraw : A.k, A.a, la);
  project(run, w, Proj::V, A.v, A.a, la);
  if (c.qk_norm) {
    norm(run, A.q, A.rq, A.qraw, w.q_norm, N * H, d);
    norm(run, A.k, A.rk, A.kraw, w.k_norm, N * K, d);
  }
  rope(run, A.q, H);
  rope(run, A.k, K);
  attention(run, A, s);
  const float* lo = to_input(run, A.o, A.r_att, A.att, c.sub_norm ? w.attn_sub_norm : nullptr, Hd, 1, s.fp);
  if (c.post_norm == PostNorm::Both) {
    project(run, w, Proj::O, A.y, A.o, lo);
    norm(run, s.tmp_d, A.r_y, A.y, w.post_attn_norm, N, D);
  } else {
    project(run, w, Proj::O, s.tmp_d, A.o, lo);
  }
  TIMED(Elementwise, add(ctx, A.h, x, s.tmp_d, N * D));

  // MLP: out = h + [post_ff_norm](down([sub_norm](relu2(up) or relu2(gate)·up))).
  const float* lm = to_input(run, A.m, A.r_h, A.h, w.pre_ff_norm, D, 2, s.fp);
  project(run, w, Proj::Up, A.u, A.m, lm);
  float* act = c.sub_norm ? A.spre : s.act;
  if (c.gated_mlp()) {
    project(run, w, Proj::Gate, A.gt, A.m, lm);
    if (run.save) {
      TIMED(Elementwise, relu2_glu_forward(ctx, act, A.gt, A.u, N * F));
    } else {
      TIMED(Elementwise, relu2_glu(ctx, act, A.gt, A.u, N * F));
    }
  } else if (run.save) {
    TIMED(Elementwise, relu2_forward(ctx, act, A.u, N * F));
  } else {
    TIMED(Elementwise, relu2(ctx, act, A.u, N * F));
  }
  const float* ls = to_input(run, A.s, A.r_s, act, c.sub_norm ? w.ffn_sub_norm : nullptr, F, 3, s.fp);
  if (c.post_norm != PostNorm::None) {
    project(run, w, Proj::Down, A.f, A.s, ls);
    norm(run, s.tmp_d, A.r_f, A.f, w.post_ff_norm, N, D);
  } else {
    project(run, w, Proj::Down, s.tmp_d, A.s, ls);
  }
  TIMED(Elementwise, add(ctx, x_out, A.h, s.tmp_d, N * D));
}

void block_backward(const BlockRun& run, const BlockWeights& w, const BlockGrads& g, const BlockActs& A,
                    float* dres, const BlockScratch& s, bool need_dx) {
  const TritterConfig& c = run.config;
  const Context& ctx = run.ctx;
  TRITTER_CHECK(run.save && !run.kv, "block_backward needs a training forward (save, in-batch attention)");
  const int64_t N = run.N(), D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, d = c.head_dim;
  const bool quant = c.quant;
  auto gain = [&](float* dg) { return dg ? dg : s.dg; };  // frozen gains: a scratch never read
  auto norm_bwd = [&](float* dx, float* dg, const float* dy, const float* x, const float* rstd, const float* gw,
                      int64_t rows, int64_t n) {
    TIMED(Norm, rmsnorm_backward(ctx, dx, gain(dg), dy, x, rstd, gw, rows, n));
  };
  // x̃ (N, I) of a saved BitInput when some projection reading it learns (dW needs it), else null.
  auto xt_for = [&](const BitInput& in, int64_t I, std::initializer_list<Proj> ps) -> const float* {
    const float* xt = nullptr;
    for (Proj p : ps)
      if (g.proj(p)) {
        TIMED(GemmDw, xt = bitinput_float(in, s.xt, N, I, quant));  // dW's operand: timed with dW
        break;
      }
    return xt;
  };
  auto dw = [&](Proj p, const float* dy, const float* xt) {
    if (!g.proj(p)) return;
    const BitWeight& bw = w.proj(p);
    TIMED(GemmDw, bitlinear_backward_dw(ctx, g.proj(p), dy, xt, N, bw.O, bw.I));
  };
  // After every dW of the input: the accumulate path of the ternary dx uses s.xt as scratch.
  auto dx = [&](Proj p, float* out, const float* dy, bool accumulate) {
    TIMED(BitDx, bitlinear_backward_dx(ctx, out, dy, w.proj(p), N, accumulate, s.xt));
  };
  auto lora_bwd = [&](Proj p, const float* dy, float* out) {
    if (run.lora && run.lora->targets(run.layer, static_cast<int>(p))) {
      TIMED(Lora, run.lora->backward(ctx, run.layer, static_cast<int>(p), dy, N, out));
    }
  };

  // MLP branch: out = h + f.
  const float* df = dres;
  if (c.post_norm != PostNorm::None) {
    zero(s.d_d2, N * D);
    norm_bwd(s.d_d2, g.post_ff_norm, dres, A.f, A.r_f, w.post_ff_norm, N, D);
    df = s.d_d2;
  }
  dw(Proj::Down, df, xt_for(A.s, F, {Proj::Down}));
  dx(Proj::Down, s.d_f1, df, false);
  lora_bwd(Proj::Down, df, s.d_f1);
  const float* ds = s.d_f1;
  if (c.sub_norm) {
    zero(s.d_f2, N * F);
    norm_bwd(s.d_f2, g.ffn_sub_norm, s.d_f1, A.spre, A.r_s, w.ffn_sub_norm, N, F);
    ds = s.d_f2;
  }
  float* du = ds == s.d_f1 ? s.d_f2 : s.d_f1;
  float* dgt = s.d_f3;
  if (c.gated_mlp()) {
    TIMED(Elementwise, relu2_glu_backward(ctx, dgt, du, ds, A.gt, A.u, N * F));
  } else {
    TIMED(Elementwise, relu2_backward(ctx, du, ds, A.u, N * F));
  }
  const float* mt = xt_for(A.m, D, {Proj::Up, Proj::Gate});
  dw(Proj::Up, du, mt);
  if (c.gated_mlp()) dw(Proj::Gate, dgt, mt);
  dx(Proj::Up, s.d_d1, du, false);
  if (c.gated_mlp()) dx(Proj::Gate, s.d_d1, dgt, true);
  lora_bwd(Proj::Up, du, s.d_d1);
  if (c.gated_mlp()) lora_bwd(Proj::Gate, dgt, s.d_d1);
  norm_bwd(dres, g.pre_ff_norm, s.d_d1, A.h, A.r_h, w.pre_ff_norm, N, D);

  // Attention branch: h = x + y; dres now holds dh.
  const float* dy = dres;
  if (c.post_norm == PostNorm::Both) {
    zero(s.d_d2, N * D);
    norm_bwd(s.d_d2, g.post_attn_norm, dres, A.y, A.r_y, w.post_attn_norm, N, D);
    dy = s.d_d2;
  }
  dw(Proj::O, dy, xt_for(A.o, Hd, {Proj::O}));
  dx(Proj::O, s.d_hd1, dy, false);
  lora_bwd(Proj::O, dy, s.d_hd1);
  const float* dout = s.d_hd1;
  if (c.sub_norm) {
    zero(s.d_hd2, N * Hd);
    norm_bwd(s.d_hd2, g.attn_sub_norm, s.d_hd1, A.att, A.r_att, w.attn_sub_norm, N, Hd);
    dout = s.d_hd2;
  }
  TIMED(AttnBwd, attention_backward(ctx, s.d_q, s.d_k, s.d_v, dout, A.q, A.k, A.v, A.att, A.lse, run.attn, s.attn));
  TIMED(Elementwise, rope_backward(ctx, s.d_q, run.rope_cos, run.rope_sin, run.B, run.T, H, d));
  TIMED(Elementwise, rope_backward(ctx, s.d_k, run.rope_cos, run.rope_sin, run.B, run.T, K, d));
  const float* dq = s.d_q;
  const float* dk = s.d_k;
  if (c.qk_norm) {
    zero(s.d_q2, N * Hd);
    zero(s.d_k2, N * Kd);
    norm_bwd(s.d_q2, g.q_norm, s.d_q, A.qraw, A.rq, w.q_norm, N * H, d);
    norm_bwd(s.d_k2, g.k_norm, s.d_k, A.kraw, A.rk, w.k_norm, N * K, d);
    dq = s.d_q2;
    dk = s.d_k2;
  }
  const float* at = xt_for(A.a, D, {Proj::Q, Proj::K, Proj::V});
  dw(Proj::Q, dq, at);
  dw(Proj::K, dk, at);
  dw(Proj::V, s.d_v, at);
  if (need_dx) {
    dx(Proj::Q, s.d_d1, dq, false);
    dx(Proj::K, s.d_d1, dk, true);
    dx(Proj::V, s.d_d1, s.d_v, true);
  }
  lora_bwd(Proj::Q, dq, need_dx ? s.d_d1 : nullptr);
  lora_bwd(Proj::K, dk, need_dx ? s.d_d1 : nullptr);
  lora_bwd(Proj::V, s.d_v, need_dx ? s.d_d1 : nullptr);
  if (need_dx) norm_bwd(dres, g.input_norm, s.d_d1, A.x, A.r_in, w.input_norm, N, D);
}

}  // namespace tritter
