// Whole-model forward/backward for training (training-spec §5–7) over one flat parameter buffer.
#include "train/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>

#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/ternary_matmul.h"
#include "model/init.h"
#include "model/projections.h"
#include "train/arena.h"

namespace tritter::train {

const char* op_name(Op op) {
  static const char* const names[] = {"rmsnorm fwd+bwd", "activation quantize", "BitLinear fwd (int8 x ternary)",
                                      "BitLinear dx (ternary^T)", "dW GEMM (sgemm)", "attention fwd",
                                      "attention bwd", "rope/relu2/residual/embed", "LM head + CE",
                                      "weight quantize+pack"};
  return names[static_cast<int>(op)];
}

namespace {

// Adds the wall time of its scope to one op family.
class OpTimer {
 public:
  OpTimer(OpTimes& t, Op op) : t_(t), op_(op), start_(std::chrono::steady_clock::now()) {}
  ~OpTimer() {
    t_.seconds[static_cast<int>(op_)] +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  OpTimes& t_;
  Op op_;
  std::chrono::steady_clock::time_point start_;
};
#define TIMED(op, ...)                      \
  do {                                      \
    OpTimer timer_(times_, Op::op);         \
    __VA_ARGS__;                            \
  } while (0)

BitInput take_input(Carver& c, int64_t N, int64_t I, bool quant) {
  BitInput in;
  if (quant) {
    in.q = c.take<int8_t>(N * I);
    in.s = c.take<float>(N);
  } else {
    in.f = c.take<float>(N * I);
  }
  return in;
}

void carve(Carver& c, ArenaViews& v, const TritterConfig& cfg, int64_t B, int64_t T, bool recompute) {
  const int64_t N = B * T, D = cfg.hidden_size, F = cfg.intermediate_size, V = cfg.vocab_size;
  const int64_t Hd = cfg.q_dim(), Kd = cfg.kv_dim(), H = cfg.num_attention_heads, K = cfg.num_key_value_heads;
  const int64_t L = cfg.num_hidden_layers, big = std::max({D, Hd, F});
  const bool quant = cfg.quant;
  v.xs.assign(static_cast<size_t>(L + 1), nullptr);
  for (auto& x : v.xs) x = c.take<float>(N * D);
  v.acts.assign(static_cast<size_t>(recompute ? 1 : L), LayerActs{});
  for (auto& a : v.acts) {
    a.r_in = c.take<float>(N);
    a.a = take_input(c, N, D, quant);
    if (cfg.qk_norm) {
      a.qraw = c.take<float>(N * Hd);
      a.rq = c.take<float>(N * H);
      a.kraw = c.take<float>(N * Kd);
      a.rk = c.take<float>(N * K);
    }
    a.q = c.take<float>(N * Hd);
    a.k = c.take<float>(N * Kd);
    a.v = c.take<float>(N * Kd);
    a.att = c.take<float>(N * Hd);
    a.lse = c.take<float>(B * H * T);
    if (cfg.sub_norm) a.r_att = c.take<float>(N);
    a.o = take_input(c, N, Hd, quant);
    if (cfg.post_norm == "both") {
      a.y = c.take<float>(N * D);
      a.r_y = c.take<float>(N);
    }
    a.h = c.take<float>(N * D);
    a.r_h = c.take<float>(N);
    a.m = take_input(c, N, D, quant);
    a.u = c.take<float>(N * F);
    if (cfg.gated_mlp()) a.gt = c.take<float>(N * F);
    if (cfg.sub_norm) {
      a.spre = c.take<float>(N * F);
      a.r_s = c.take<float>(N);
    }
    a.s = take_input(c, N, F, quant);
    if (cfg.post_norm != "none") {
      a.f = c.take<float>(N * D);
      a.r_f = c.take<float>(N);
    }
  }
  v.r_final = c.take<float>(N);
  v.hhat = c.take<float>(N * D);
  v.logits = c.take<float>(N * V);
  v.dz = c.take<float>(N * V);
  v.tmp_big = c.take<float>(N * big);
  v.tmp_d = c.take<float>(N * D);
  v.dres = c.take<float>(N * D);
  v.d_d1 = c.take<float>(N * D);
  v.d_d2 = c.take<float>(N * D);
  v.d_hd1 = c.take<float>(N * Hd);
  v.d_hd2 = c.take<float>(N * Hd);
  v.d_f1 = c.take<float>(N * F);
  v.d_f2 = c.take<float>(N * F);
  v.d_f3 = c.take<float>(N * F);
  v.d_q = c.take<float>(N * Hd);
  v.d_k = c.take<float>(N * Kd);
  v.d_v = c.take<float>(N * Kd);
  v.d_q2 = c.take<float>(N * Hd);
  v.d_k2 = c.take<float>(N * Kd);
  v.xt = c.take<float>(N * big);
}

}  // namespace

int64_t train_activation_bytes(const TritterConfig& config, int64_t B, int64_t T, bool recompute) {
  Carver c(nullptr);
  ArenaViews v;
  carve(c, v, config, B, T, recompute);
  return c.bytes();
}

TrainModel::TrainModel(const TritterConfig& config, Context& ctx) : config_(config), ctx_(ctx) {
  config_.validate();
  table_ = tensor_table(config_);
  num_params_ = parameter_count(config_);
  params_ = Buffer(static_cast<size_t>(num_params_) * sizeof(float), MemCategory::Weights, &ctx_.memory);
  grads_ = Buffer(static_cast<size_t>(num_params_) * sizeof(float), MemCategory::Gradients, &ctx_.memory);
  // The quantized weight cache: every BitLinear of every layer, packed.
  size_t cache = 0;
  int64_t total_bit = 0;
  for (const auto& t : table_) {
    if (t.role != TensorRole::BitLinear) continue;
    cache += (ternary_matrix_bytes(t.shape[0], t.shape[1]) + 63) & ~size_t{63};
    total_bit += t.numel();
  }
  if (config_.quant) {
    wcache_ = Buffer(cache, MemCategory::Weights, &ctx_.memory);
    wscratch_ = Buffer(static_cast<size_t>(total_bit), MemCategory::Scratch, &ctx_.memory);
  }
  bits_.resize(static_cast<size_t>(config_.num_hidden_layers));
  size_t off = 0;
  float* p = params_.as<float>().data();
  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    for (const auto& t : table_) {
      if (t.layer != i || t.role != TensorRole::BitLinear) continue;
      LayerBits& lb = bits_[static_cast<size_t>(i)];
      BitWeight* const by_proj[kProjCount] = {&lb.q, &lb.k, &lb.v, &lb.o, &lb.gate, &lb.up, &lb.down};  // Proj order
      BitWeight* bw = by_proj[proj_index(*proj_from_name(t.kind))];
      bw->w = p + t.offset;
      bw->O = t.shape[0];
      bw->I = t.shape[1];
      bw->quant = config_.quant;
      if (config_.quant) {
        bw->packed = static_cast<uint8_t*>(wcache_.data()) + off;
        off += (ternary_matrix_bytes(t.shape[0], t.shape[1]) + 63) & ~size_t{63};
      }
    }
  }
  set_dx_kernel(false);
}

TrainModel::TrainModel(TrainModel& primary, Context& ctx)
    : config_(primary.config_), ctx_(ctx), primary_(&primary), table_(primary.table_),
      num_params_(primary.num_params_), weights_stale_(false) {
  grads_ = Buffer(static_cast<size_t>(num_params_) * sizeof(float), MemCategory::Gradients, &ctx_.memory);
}

LayerTensors TrainModel::layer_tensors(float* base, int layer) const {
  LayerTensors lt;
  for (const auto& t : table_) {
    if (t.layer != layer) continue;
    float* p = base + t.offset;
    const std::string& k = t.kind;
    if (k == "input_layernorm") lt.input_layernorm = p;
    else if (k == "q_proj") lt.q_proj = p;
    else if (k == "k_proj") lt.k_proj = p;
    else if (k == "v_proj") lt.v_proj = p;
    else if (k == "q_norm") lt.q_norm = p;
    else if (k == "k_norm") lt.k_norm = p;
    else if (k == "attn_sub_norm") lt.attn_sub_norm = p;
    else if (k == "o_proj") lt.o_proj = p;
    else if (k == "post_attention_layernorm") lt.post_attention_layernorm = p;
    else if (k == "pre_feedforward_layernorm") lt.pre_feedforward_layernorm = p;
    else if (k == "gate_proj") lt.gate_proj = p;
    else if (k == "up_proj") lt.up_proj = p;
    else if (k == "ffn_sub_norm") lt.ffn_sub_norm = p;
    else if (k == "down_proj") lt.down_proj = p;
    else if (k == "post_feedforward_layernorm") lt.post_feedforward_layernorm = p;
  }
  return lt;
}

void TrainModel::init_weights(uint64_t seed) {
  init_parameters(params(), config_, seed);  // model/init: the same values `tritter init` writes
}

void TrainModel::set_dx_kernel(bool kernel) {
  if (!config_.quant || primary_) return;  // a replica uses its primary's weight cache
  if (kernel) {
    for (auto& lb : bits_)
      for (BitWeight* bw : {&lb.q, &lb.k, &lb.v, &lb.o, &lb.gate, &lb.up, &lb.down}) bw->wt = nullptr;
    wtilde_ = Buffer();
    return;
  }
  int64_t total = 0;
  for (const auto& t : table_)
    if (t.role == TensorRole::BitLinear) total += t.numel();
  wtilde_ = Buffer(static_cast<size_t>(total) * sizeof(float), MemCategory::Weights, &ctx_.memory);
  float* p = wtilde_.as<float>().data();
  for (auto& lb : bits_)
    for (BitWeight* bw : {&lb.q, &lb.k, &lb.v, &lb.o, &lb.gate, &lb.up, &lb.down}) {
      if (!bw->w) continue;
      bw->wt = p;
      p += bw->O * bw->I;
    }
  weights_stale_ = true;
}

void TrainModel::zero_grad() { std::memset(grads_.data(), 0, grads_.bytes()); }

void TrainModel::prepare_weights() {
  if (primary_ || !weights_stale_) return;
  if (config_.quant) {
    // Every matrix is independent: one per OpenMP iteration, each with its own int8 scratch.
    std::vector<BitWeight*> all;
    std::vector<int64_t> scratch_off;
    int64_t off = 0;
    for (auto& lb : bits_) {
      for (BitWeight* bw : {&lb.q, &lb.k, &lb.v, &lb.o, &lb.gate, &lb.up, &lb.down}) {
        if (!bw->w) continue;
        all.push_back(bw);
        scratch_off.push_back(off);
        off += bw->O * bw->I;
      }
    }
    int8_t* scratch = static_cast<int8_t*>(wscratch_.data());
    OpTimer timer(times_, Op::WeightQuant);
    std::vector<std::exception_ptr> errors(all.size());  // non-finite weights: rethrown outside the region
#pragma omp parallel for num_threads(std::max(1, ctx_.threads)) schedule(dynamic, 1)
    for (size_t i = 0; i < all.size(); ++i) {
      try {
        bitweight_prepare(*all[i], scratch + scratch_off[i]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  weights_stale_ = false;
}

void TrainModel::reserve(int64_t B, int64_t T, bool recompute) {
  if (B == B_ && T == T_ && recompute == recompute_ && !arena_.empty()) return;
  if (B < 1 || T < 1) throw_error("train: batch shape: found B=", B, " T=", T, ", expected both >= 1");
  if (T > config_.max_position_embeddings) {
    throw_error("train: sequence length: found T=", T, ", expected <= max_position_embeddings (",
                config_.max_position_embeddings, ")");
  }
  arena_ = Buffer();
  arena_ = Buffer(static_cast<size_t>(train_activation_bytes(config_, B, T, recompute)), MemCategory::Activations,
                  &ctx_.memory);
  Carver c(static_cast<uint8_t*>(arena_.data()));
  carve(c, v_, config_, B, T, recompute);
  TRITTER_CHECK(static_cast<size_t>(c.bytes()) == arena_.bytes(), c.bytes(), " vs ", arena_.bytes());
  attn_ = AttnShape{B, T, config_.num_attention_heads, config_.num_key_value_heads, config_.head_dim,
                    config_.sliding_window};
  attn_scratch_ = Buffer(static_cast<size_t>(attention_scratch_floats(attn_, std::max(1, ctx_.threads))) *
                             sizeof(float), MemCategory::Scratch, &ctx_.memory);
  const int64_t half = config_.head_dim / 2;
  rope_ = Buffer(static_cast<size_t>(2 * T * half) * sizeof(float), MemCategory::Scratch, &ctx_.memory);
  rope_cos_ = rope_.as<float>().data();
  rope_sin_ = rope_cos_ + T * half;
  rope_tables(rope_cos_, rope_sin_, T, config_.head_dim, config_.rope_theta, 0);
  B_ = B;
  T_ = T;
  recompute_ = recompute;
}

void TrainModel::layer_forward(int i, const LayerActs& A, float* x_out) {
  const TritterConfig& c = config_;
  const int64_t N = B_ * T_, D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, d = c.head_dim;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const bool quant = c.quant;
  const LayerTensors P = layer_tensors(const_cast<float*>(pdata()), i);
  const LayerBits& W = (primary_ ? primary_->bits_ : bits_)[static_cast<size_t>(i)];  // shared σ, packed
  const float* x = A.x;
  float* tmp = v_.tmp_big;

  TIMED(Norm, rmsnorm_forward(ctx_, tmp, A.r_in, x, P.input_layernorm, N, D, eps));
  TIMED(Quantize, bitinput_set(ctx_, A.a, tmp, N, D, quant));
  TIMED(BitFwd, bitlinear_forward(ctx_, c.qk_norm ? A.qraw : A.q, A.a, W.q, N));
  TIMED(BitFwd, bitlinear_forward(ctx_, c.qk_norm ? A.kraw : A.k, A.a, W.k, N));
  TIMED(BitFwd, bitlinear_forward(ctx_, A.v, A.a, W.v, N));
  if (c.qk_norm) {
    TIMED(Norm, rmsnorm_forward(ctx_, A.q, A.rq, A.qraw, P.q_norm, N * H, d, eps));
    TIMED(Norm, rmsnorm_forward(ctx_, A.k, A.rk, A.kraw, P.k_norm, N * K, d, eps));
  }
  TIMED(Elementwise, rope_forward(ctx_, A.q, rope_cos_, rope_sin_, B_, T_, H, d));
  TIMED(Elementwise, rope_forward(ctx_, A.k, rope_cos_, rope_sin_, B_, T_, K, d));
  TIMED(AttnFwd, attention_forward(ctx_, A.att, A.lse, A.q, A.k, A.v, attn_, attn_scratch_.as<float>().data()));
  if (c.sub_norm) {
    TIMED(Norm, rmsnorm_forward(ctx_, tmp, A.r_att, A.att, P.attn_sub_norm, N, Hd, eps));
    TIMED(Quantize, bitinput_set(ctx_, A.o, tmp, N, Hd, quant));
  } else {
    TIMED(Quantize, bitinput_set(ctx_, A.o, A.att, N, Hd, quant));
  }
  const float* ybr;
  if (c.post_norm == "both") {
    TIMED(BitFwd, bitlinear_forward(ctx_, A.y, A.o, W.o, N));
    TIMED(Norm, rmsnorm_forward(ctx_, v_.tmp_d, A.r_y, A.y, P.post_attention_layernorm, N, D, eps));
  } else {
    TIMED(BitFwd, bitlinear_forward(ctx_, v_.tmp_d, A.o, W.o, N));
  }
  ybr = v_.tmp_d;
#pragma omp parallel for num_threads(std::max(1, ctx_.threads)) schedule(static)
  for (int64_t j = 0; j < N * D; ++j) A.h[j] = x[j] + ybr[j];

  TIMED(Norm, rmsnorm_forward(ctx_, tmp, A.r_h, A.h, P.pre_feedforward_layernorm, N, D, eps));
  TIMED(Quantize, bitinput_set(ctx_, A.m, tmp, N, D, quant));
  TIMED(BitFwd, bitlinear_forward(ctx_, A.u, A.m, W.up, N));
  float* s_out = c.sub_norm ? A.spre : tmp;
  if (c.gated_mlp()) {
    TIMED(BitFwd, bitlinear_forward(ctx_, A.gt, A.m, W.gate, N));
    TIMED(Elementwise, relu2_glu_forward(ctx_, s_out, A.gt, A.u, N * F));
  } else {
    TIMED(Elementwise, relu2_forward(ctx_, s_out, A.u, N * F));
  }
  if (c.sub_norm) TIMED(Norm, rmsnorm_forward(ctx_, tmp, A.r_s, A.spre, P.ffn_sub_norm, N, F, eps));
  TIMED(Quantize, bitinput_set(ctx_, A.s, tmp, N, F, quant));
  if (c.post_norm != "none") {
    TIMED(BitFwd, bitlinear_forward(ctx_, A.f, A.s, W.down, N));
    TIMED(Norm, rmsnorm_forward(ctx_, v_.tmp_d, A.r_f, A.f, P.post_feedforward_layernorm, N, D, eps));
  } else {
    TIMED(BitFwd, bitlinear_forward(ctx_, v_.tmp_d, A.s, W.down, N));
  }
  const float* fbr = v_.tmp_d;
  (void)Kd;
#pragma omp parallel for num_threads(std::max(1, ctx_.threads)) schedule(static)
  for (int64_t j = 0; j < N * D; ++j) x_out[j] = A.h[j] + fbr[j];
}

void TrainModel::layer_backward(int i, const LayerActs& A, float* dres) {
  const TritterConfig& c = config_;
  const int64_t N = B_ * T_, D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, d = c.head_dim;
  const bool quant = c.quant;
  const LayerTensors P = layer_tensors(const_cast<float*>(pdata()), i);
  const LayerTensors G = layer_tensors(grads_.as<float>().data(), i);
  const LayerBits& W = (primary_ ? primary_->bits_ : bits_)[static_cast<size_t>(i)];  // shared σ, packed
  auto zero = [](float* p, int64_t n) { std::memset(p, 0, static_cast<size_t>(n) * sizeof(float)); };
  float* xt = v_.xt;

  // MLP branch: out = h + f.
  const float* df = dres;
  if (c.post_norm != "none") {
    zero(v_.d_d2, N * D);
    TIMED(Norm, rmsnorm_backward(ctx_, v_.d_d2, G.post_feedforward_layernorm, dres, A.f, A.r_f,
        P.post_feedforward_layernorm, N, D));
    df = v_.d_d2;
  }
  TIMED(GemmDw, bitlinear_backward_dw(G.down_proj, df, bitinput_float(A.s, xt, N, F, quant), N, D, F));
  TIMED(BitDx, bitlinear_backward_dx(ctx_, v_.d_f1, df, W.down, N, false, xt));
  const float* ds = v_.d_f1;
  if (c.sub_norm) {
    zero(v_.d_f2, N * F);
    TIMED(Norm, rmsnorm_backward(ctx_, v_.d_f2, G.ffn_sub_norm, v_.d_f1, A.spre, A.r_s, P.ffn_sub_norm, N, F));
    ds = v_.d_f2;
  }
  float* du = ds == v_.d_f1 ? v_.d_f2 : v_.d_f1;
  float* dgt = v_.d_f3;
  if (c.gated_mlp()) {
    TIMED(Elementwise, relu2_glu_backward(ctx_, dgt, du, ds, A.gt, A.u, N * F));
  } else {
    TIMED(Elementwise, relu2_backward(ctx_, du, ds, A.u, N * F));
  }
  const float* mt = bitinput_float(A.m, xt, N, D, quant);
  TIMED(GemmDw, bitlinear_backward_dw(G.up_proj, du, mt, N, F, D));
  if (c.gated_mlp()) TIMED(GemmDw, bitlinear_backward_dw(G.gate_proj, dgt, mt, N, F, D));
  TIMED(BitDx, bitlinear_backward_dx(ctx_, v_.d_d1, du, W.up, N, false, xt));
  if (c.gated_mlp()) TIMED(BitDx, bitlinear_backward_dx(ctx_, v_.d_d1, dgt, W.gate, N, true, xt));
  TIMED(Norm, rmsnorm_backward(ctx_, dres, G.pre_feedforward_layernorm, v_.d_d1, A.h, A.r_h,
      P.pre_feedforward_layernorm, N, D));

  // Attention branch: h = x + y; dres now holds dh.
  const float* dy = dres;
  if (c.post_norm == "both") {
    zero(v_.d_d2, N * D);
    TIMED(Norm, rmsnorm_backward(ctx_, v_.d_d2, G.post_attention_layernorm, dres, A.y, A.r_y,
        P.post_attention_layernorm, N, D));
    dy = v_.d_d2;
  }
  TIMED(GemmDw, bitlinear_backward_dw(G.o_proj, dy, bitinput_float(A.o, xt, N, Hd, quant), N, D, Hd));
  TIMED(BitDx, bitlinear_backward_dx(ctx_, v_.d_hd1, dy, W.o, N, false, xt));
  const float* dout = v_.d_hd1;
  if (c.sub_norm) {
    zero(v_.d_hd2, N * Hd);
    TIMED(Norm, rmsnorm_backward(ctx_, v_.d_hd2, G.attn_sub_norm, v_.d_hd1, A.att, A.r_att, P.attn_sub_norm, N, Hd));
    dout = v_.d_hd2;
  }
  TIMED(AttnBwd, attention_backward(ctx_, v_.d_q, v_.d_k, v_.d_v, dout, A.q, A.k, A.v, A.att, A.lse, attn_,
      attn_scratch_.as<float>().data()));
  TIMED(Elementwise, rope_backward(ctx_, v_.d_q, rope_cos_, rope_sin_, B_, T_, H, d));
  TIMED(Elementwise, rope_backward(ctx_, v_.d_k, rope_cos_, rope_sin_, B_, T_, K, d));
  const float* dq = v_.d_q;
  const float* dk = v_.d_k;
  if (c.qk_norm) {
    zero(v_.d_q2, N * Hd);
    zero(v_.d_k2, N * Kd);
    TIMED(Norm, rmsnorm_backward(ctx_, v_.d_q2, G.q_norm, v_.d_q, A.qraw, A.rq, P.q_norm, N * H, d));
    TIMED(Norm, rmsnorm_backward(ctx_, v_.d_k2, G.k_norm, v_.d_k, A.kraw, A.rk, P.k_norm, N * K, d));
    dq = v_.d_q2;
    dk = v_.d_k2;
  }
  const float* at = bitinput_float(A.a, xt, N, D, quant);
  TIMED(GemmDw, bitlinear_backward_dw(G.q_proj, dq, at, N, Hd, D));
  TIMED(GemmDw, bitlinear_backward_dw(G.k_proj, dk, at, N, Kd, D));
  TIMED(GemmDw, bitlinear_backward_dw(G.v_proj, v_.d_v, at, N, Kd, D));
  TIMED(BitDx, bitlinear_backward_dx(ctx_, v_.d_d1, dq, W.q, N, false, xt));
  TIMED(BitDx, bitlinear_backward_dx(ctx_, v_.d_d1, dk, W.k, N, true, xt));
  TIMED(BitDx, bitlinear_backward_dx(ctx_, v_.d_d1, v_.d_v, W.v, N, true, xt));
  TIMED(Norm, rmsnorm_backward(ctx_, dres, G.input_layernorm, v_.d_d1, A.x, A.r_in, P.input_layernorm, N, D));
}

double TrainModel::forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale) {
  if (B != B_ || T != T_) reserve(B, T, recompute_);
  prepare_weights();
  const TritterConfig& c = config_;
  const int64_t N = B * T, D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  const float* p = pdata();
  const float* E = p + table_.front().offset;
  const TensorInfo* head = c.tie_word_embeddings ? &table_.front() : find_tensor(table_, "lm_head.weight");
  const TensorInfo* fnorm = find_tensor(table_, "model.norm.weight");
  ids_.assign(inputs, inputs + N);
  TIMED(Elementwise, embedding_forward(v_.xs[0], E, inputs, N, D, V));
  for (int64_t i = 0; i < L; ++i) {
    LayerActs A = v_.acts[recompute_ ? 0 : static_cast<size_t>(i)];
    A.x = v_.xs[static_cast<size_t>(i)];
    layer_forward(static_cast<int>(i), A, v_.xs[static_cast<size_t>(i + 1)]);
  }
  TIMED(Norm, rmsnorm_forward(ctx_, v_.hhat, v_.r_final, v_.xs[static_cast<size_t>(L)], p + fnorm->offset, N,
      D, static_cast<float>(c.rms_norm_eps)));
  TIMED(Head, linear_forward(v_.logits, v_.hhat, p + head->offset, N, D, V));
  if (!targets) return 0.0;
  OpTimer timer(times_, Op::Head);
  return cross_entropy_forward_backward(ctx_, v_.dz, v_.logits, targets, N, V, c.z_loss, grad_scale);
}

void TrainModel::backward() {
  TRITTER_CHECK(!ids_.empty(), "backward before forward");
  const TritterConfig& c = config_;
  const int64_t N = B_ * T_, D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  const float* p = pdata();
  float* g = grads_.as<float>().data();
  const TensorInfo* head = c.tie_word_embeddings ? &table_.front() : find_tensor(table_, "lm_head.weight");
  const TensorInfo* fnorm = find_tensor(table_, "model.norm.weight");
  TIMED(Head, linear_backward(v_.d_d1, g + head->offset, v_.dz, v_.hhat, p + head->offset, N, D, V, false));
  std::memset(v_.dres, 0, static_cast<size_t>(N * D) * sizeof(float));
  TIMED(Norm, rmsnorm_backward(ctx_, v_.dres, g + fnorm->offset, v_.d_d1, v_.xs[static_cast<size_t>(L)],
      v_.r_final, p + fnorm->offset, N, D));
  for (int64_t i = L - 1; i >= 0; --i) {
    LayerActs A = v_.acts[recompute_ ? 0 : static_cast<size_t>(i)];
    A.x = v_.xs[static_cast<size_t>(i)];
    if (recompute_) layer_forward(static_cast<int>(i), A, v_.tmp_d);
    layer_backward(static_cast<int>(i), A, v_.dres);
  }
  TIMED(Elementwise, embedding_backward(g + table_.front().offset, v_.dres, ids_.data(), N, D));
}

}  // namespace tritter::train
