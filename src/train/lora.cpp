// LoRA on the frozen packed ternary base: the model's forward/backward (training-spec §5–7 with the §9 branch; see
// lora.h for the maths and the choice of the branch's input). Config, adapter table and init: model/lora.h.
#include "train/lora.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/ops.h"
#include "train/arena.h"

namespace tritter::train {

namespace {

// The layer bodies index per-layer arrays (slot_, xa) by int; these are Proj's indices (model/projections.h).
enum Kind : int {
  kQ = proj_index(Proj::Q), kK = proj_index(Proj::K), kV = proj_index(Proj::V), kO = proj_index(Proj::O),
  kGate = proj_index(Proj::Gate), kUp = proj_index(Proj::Up), kDown = proj_index(Proj::Down)
};

BitWeight base_weight(const TernaryMatrix& m) {
  BitWeight b;
  b.O = m.rows;
  b.I = m.cols;
  b.quant = true;
  b.packed = const_cast<uint8_t*>(m.data);  // read only: the kernels take it as const
  b.sigma = m.sigma;
  return b;  // wt = null: dx = dy·Wq/σ through kernels' ternary_matmul_t, no fp32 copy of W̃
}

const TernaryMatrix& layer_matrix(const LayerWeights& w, int kind) {
  return tritter::layer_matrix(w, static_cast<Proj>(kind));
}

int nthreads(const Context& ctx) { return std::max(1, ctx.threads); }

}  // namespace

// ---------------------------------------------------------------- the arena

namespace {
struct LayerSave {
  float* r_in = nullptr;                         // (N)
  float *lin[4] = {};                            // LoRA inputs (fp, after dropout): a (N,D), o (N,Hd), m (N,D), s (N,F)
  float *qraw = nullptr, *rq = nullptr, *kraw = nullptr, *rk = nullptr;  // (N,H·d), (N·H), (N,K·d), (N·K)
  float *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *lse = nullptr, *r_att = nullptr;
  float *y = nullptr, *r_y = nullptr, *h = nullptr, *r_h = nullptr;
  float *u = nullptr, *gt = nullptr, *spre = nullptr, *r_s = nullptr, *f = nullptr, *r_f = nullptr;
  float* xa[7] = {};                             // x·Aᵀ (N, r) per targeted kind
};
// Which LoRA input a kind reads (model/projections.h proj_input): q/k/v → a (0), o → o (1), gate/up → m (2),
// down → s (3).
constexpr std::array<int, kProjCount> kInputOf = [] {
  std::array<int, kProjCount> in{};
  for (Proj p : kProjs) in[static_cast<size_t>(proj_index(p))] = static_cast<int>(proj_input(p));
  return in;
}();
}  // namespace

struct LoraModel::Views {
  std::vector<LayerSave> layers;
  std::vector<float*> xs;  // L+1 residual streams (N, D)
  float *r_final = nullptr, *hhat = nullptr, *logits = nullptr, *dz = nullptr, *tmp_big = nullptr, *tmp_d = nullptr;
  BitInput qin;  // (N, max) i8 + (N): the current BitLinear input, not saved (no dW for a frozen base)
  float *dres = nullptr, *d_d1 = nullptr, *d_d2 = nullptr, *d_hd1 = nullptr, *d_hd2 = nullptr, *d_f1 = nullptr,
        *d_f2 = nullptr, *d_f3 = nullptr, *d_q = nullptr, *d_k = nullptr, *d_v = nullptr, *d_q2 = nullptr,
        *d_k2 = nullptr, *xt = nullptr, *dg = nullptr, *g_r = nullptr;
};

namespace {
void carve(Carver& c, LoraModel::Views* vp, const TritterConfig& cfg, const LoraConfig& lora, int64_t B, int64_t T,
           bool recompute);
}

int64_t lora_activation_bytes(const TritterConfig& config, const LoraConfig& lora, int64_t B, int64_t T,
                              bool recompute) {
  Carver c(nullptr);
  carve(c, nullptr, config, lora, B, T, recompute);
  return c.bytes();
}

namespace {
void carve(Carver& c, LoraModel::Views* vp, const TritterConfig& cfg, const LoraConfig& lora, int64_t B, int64_t T,
           bool recompute) {
  LoraModel::Views scratch;
  LoraModel::Views& v = vp ? *vp : scratch;
  const int64_t N = B * T, D = cfg.hidden_size, F = cfg.intermediate_size, V = cfg.vocab_size;
  const int64_t Hd = cfg.q_dim(), Kd = cfg.kv_dim(), H = cfg.num_attention_heads, K = cfg.num_key_value_heads;
  const int64_t L = cfg.num_hidden_layers, big = std::max({D, Hd, F}), r = lora.rank;
  const int64_t in_width[4] = {D, Hd, D, F};
  bool uses_input[4] = {};
  for (Proj p : kProjs)
    if (lora.targets_proj(p)) uses_input[kInputOf[proj_index(p)]] = true;
  v.xs.assign(static_cast<size_t>(L + 1), nullptr);
  for (auto& x : v.xs) x = c.take<float>(N * D);
  v.layers.assign(static_cast<size_t>(recompute ? 1 : L), LayerSave{});
  for (auto& a : v.layers) {
    a.r_in = c.take<float>(N);
    for (int j = 0; j < 4; ++j)
      if (uses_input[j]) a.lin[j] = c.take<float>(N * in_width[j]);
    for (Proj p : kProjs)
      if (lora.targets_proj(p)) a.xa[proj_index(p)] = c.take<float>(N * r);
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
    if (cfg.post_norm == "both") {
      a.y = c.take<float>(N * D);
      a.r_y = c.take<float>(N);
    }
    a.h = c.take<float>(N * D);
    a.r_h = c.take<float>(N);
    a.u = c.take<float>(N * F);
    if (cfg.gated_mlp()) a.gt = c.take<float>(N * F);
    if (cfg.sub_norm) {
      a.spre = c.take<float>(N * F);
      a.r_s = c.take<float>(N);
    }
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
  v.qin.q = c.take<int8_t>(N * big);
  v.qin.s = c.take<float>(N);
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
  v.dg = c.take<float>(std::max(big, cfg.head_dim));
  v.g_r = c.take<float>(N * r);
}
}  // namespace

// ---------------------------------------------------------------- the model

LoraModel::LoraModel(const ModelWeights& base, const LoraConfig& lora, Context& ctx)
    : base_(base), lora_(lora), ctx_(ctx), v_(std::make_unique<Views>()) {
  lora_.validate();
  const TritterConfig& c = base_.config;
  if (!c.quant) throw_error("lora: base model: found quant=false, expected a packed ternary base (quant=true)");
  if (base_.layers.size() != static_cast<size_t>(c.num_hidden_layers)) {
    throw_error("lora: base model: found ", base_.layers.size(), " layers, expected ", c.num_hidden_layers);
  }
  table_ = lora_table(c, lora_);  // a target the base lacks (gate_proj without GLU) matches nothing, as in PEFT
  if (table_.empty()) throw_error("lora: target modules: none of them is in the base model");
  infos_ = lora_tensor_infos(table_, lora_.rank);
  num_params_ = lora_num_params(table_, lora_.rank);
  params_ = Buffer(static_cast<size_t>(num_params_) * sizeof(float), MemCategory::Weights, &ctx_.memory);
  grads_ = Buffer(static_cast<size_t>(num_params_) * sizeof(float), MemCategory::Gradients, &ctx_.memory);
  zero_grad();
  slot_.assign(static_cast<size_t>(c.num_hidden_layers), {-1, -1, -1, -1, -1, -1, -1});
  for (size_t j = 0; j < table_.size(); ++j) {
    slot_[static_cast<size_t>(table_[j].layer)][static_cast<size_t>(proj_index(table_[j].proj))] = static_cast<int>(j);
  }
  if (base_.head.format == HeadFormat::F32) {
    head_ = base_.head.f32;
  } else {  // int8 head: one fp32 copy, w[v, :] = i8[v, :] · row_scale[v]
    const int64_t V = c.vocab_size, D = c.hidden_size;
    head_f32_ = Buffer(static_cast<size_t>(V * D) * sizeof(float), MemCategory::Weights, &ctx_.memory);
    float* h = head_f32_.as<float>().data();
    for (int64_t r = 0; r < V; ++r)
      for (int64_t j = 0; j < D; ++j) h[r * D + j] = static_cast<float>(base_.head.i8[r * D + j]) * base_.head.row_scale[r];
    head_ = h;
  }
}

LoraModel::~LoraModel() = default;

void LoraModel::zero_grad() {
  if (grads_.bytes()) std::memset(grads_.data(), 0, grads_.bytes());
}

void LoraModel::reserve(int64_t B, int64_t T, bool recompute) {
  if (B == B_ && T == T_ && recompute == recompute_ && !arena_.empty()) return;
  const TritterConfig& c = base_.config;
  if (B < 1 || T < 1) throw_error("lora: batch shape: found B=", B, " T=", T, ", expected both >= 1");
  if (T > c.max_position_embeddings) {
    throw_error("lora: sequence length: found T=", T, ", expected <= max_position_embeddings (",
                c.max_position_embeddings, ")");
  }
  arena_ = Buffer();
  arena_ = Buffer(static_cast<size_t>(lora_activation_bytes(c, lora_, B, T, recompute)), MemCategory::Activations,
                  &ctx_.memory);
  Carver cv(static_cast<uint8_t*>(arena_.data()));
  carve(cv, v_.get(), c, lora_, B, T, recompute);
  recompute_ = recompute;
  layer_rng_.assign(static_cast<size_t>(c.num_hidden_layers), {});
  TRITTER_CHECK(static_cast<size_t>(cv.bytes()) == arena_.bytes(), cv.bytes(), " vs ", arena_.bytes());
  attn_ = AttnShape{B, T, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.sliding_window};
  attn_scratch_ = Buffer(static_cast<size_t>(attention_scratch_floats(attn_, nthreads(ctx_))) * sizeof(float),
                         MemCategory::Scratch, &ctx_.memory);
  const int64_t half = c.head_dim / 2;
  rope_ = Buffer(static_cast<size_t>(2 * T * half) * sizeof(float), MemCategory::Scratch, &ctx_.memory);
  rope_cos_ = rope_.as<float>().data();
  rope_sin_ = rope_cos_ + T * half;
  rope_tables(rope_cos_, rope_sin_, T, c.head_dim, c.rope_theta, 0);
  B_ = B;
  T_ = T;
  have_backward_state_ = false;
}

namespace {

// Keeps x (N, I) as the LoRA input `dst`, with inverted dropout when p > 0 (drop with probability p, scale the rest
// by 1/(1−p)). A dropped element is stored as 0; the backward reads the mask back as dst != 0 (an element that was
// exactly 0 before dropout gets no gradient through the branch either way, since its value contributes nothing).
void keep_lora_input(float* dst, const float* x, int64_t n, double p, bool train, Rng& rng) {
  if (!train || p <= 0) {
    std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t j = 0; j < n; ++j) dst[j] = rng.uniform_double() < p ? 0.0f : x[j] * keep;
}

}  // namespace

void LoraModel::layer_forward(int i, float* x_out, bool train) {
  const TritterConfig& c = base_.config;
  const int64_t N = B_ * T_, D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, d = c.head_dim, r = lora_.rank;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float sc = lora_.scale();
  const LayerWeights& W = base_.layers[static_cast<size_t>(i)];
  const auto& slots = slot_[static_cast<size_t>(i)];
  LayerSave& A = v_->layers[recompute_ ? 0 : static_cast<size_t>(i)];
  Views& v = *v_;
  const float* x = v.xs[static_cast<size_t>(i)];
  float* tmp = v.tmp_big;
  const float* p = params_.as<float>().data();

  // The base BitLinear of `kind` on the quantized input, then y += (α/r)·(x Aᵀ) Bᵀ on the fp LoRA input.
  auto linear = [&](int kind, float* y, int64_t I) {
    const BitWeight bw = base_weight(layer_matrix(W, kind));
    bitlinear_forward(ctx_, y, v.qin, bw, N);
    const int s = slots[static_cast<size_t>(kind)];
    if (s < 0) return;
    const LoraTensor& t = table_[static_cast<size_t>(s)];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(N), static_cast<int>(r), static_cast<int>(I),
                1.0f, A.lin[kInputOf[kind]], static_cast<int>(I), p + t.a_offset, static_cast<int>(I), 0.0f,
                A.xa[kind], static_cast<int>(r));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(N), static_cast<int>(t.O),
                static_cast<int>(r), sc, A.xa[kind], static_cast<int>(r), p + t.b_offset, static_cast<int>(r), 1.0f, y,
                static_cast<int>(t.O));
  };
  auto set_input = [&](int which, const float* xin, int64_t I) {
    bitinput_set(ctx_, v.qin, xin, N, I, true);
    if (A.lin[which]) keep_lora_input(A.lin[which], xin, N * I, lora_.dropout, train, drop_rng_);
  };

  rmsnorm_forward(ctx_, tmp, A.r_in, x, W.input_norm, N, D, eps);
  set_input(0, tmp, D);
  linear(kQ, c.qk_norm ? A.qraw : A.q, D);
  linear(kK, c.qk_norm ? A.kraw : A.k, D);
  linear(kV, A.v, D);
  if (c.qk_norm) {
    rmsnorm_forward(ctx_, A.q, A.rq, A.qraw, W.q_norm, N * H, d, eps);
    rmsnorm_forward(ctx_, A.k, A.rk, A.kraw, W.k_norm, N * K, d, eps);
  }
  rope_forward(ctx_, A.q, rope_cos_, rope_sin_, B_, T_, H, d);
  rope_forward(ctx_, A.k, rope_cos_, rope_sin_, B_, T_, K, d);
  attention_forward(ctx_, A.att, A.lse, A.q, A.k, A.v, attn_, attn_scratch_.as<float>().data());
  if (c.sub_norm) {
    rmsnorm_forward(ctx_, tmp, A.r_att, A.att, W.attn_sub_norm, N, Hd, eps);
    set_input(1, tmp, Hd);
  } else {
    set_input(1, A.att, Hd);
  }
  if (c.post_norm == "both") {
    linear(kO, A.y, Hd);
    rmsnorm_forward(ctx_, v.tmp_d, A.r_y, A.y, W.post_attn_norm, N, D, eps);
  } else {
    linear(kO, v.tmp_d, Hd);
  }
#pragma omp parallel for num_threads(nthreads(ctx_)) schedule(static)
  for (int64_t j = 0; j < N * D; ++j) A.h[j] = x[j] + v.tmp_d[j];

  rmsnorm_forward(ctx_, tmp, A.r_h, A.h, W.pre_ff_norm, N, D, eps);
  set_input(2, tmp, D);
  linear(kUp, A.u, D);
  float* s_out = c.sub_norm ? A.spre : tmp;
  if (c.gated_mlp()) {
    linear(kGate, A.gt, D);
    relu2_glu_forward(ctx_, s_out, A.gt, A.u, N * F);
  } else {
    relu2_forward(ctx_, s_out, A.u, N * F);
  }
  if (c.sub_norm) rmsnorm_forward(ctx_, tmp, A.r_s, A.spre, W.ffn_sub_norm, N, F, eps);
  set_input(3, tmp, F);
  if (c.post_norm != "none") {
    linear(kDown, A.f, F);
    rmsnorm_forward(ctx_, v.tmp_d, A.r_f, A.f, W.post_ff_norm, N, D, eps);
  } else {
    linear(kDown, v.tmp_d, F);
  }
#pragma omp parallel for num_threads(nthreads(ctx_)) schedule(static)
  for (int64_t j = 0; j < N * D; ++j) x_out[j] = A.h[j] + v.tmp_d[j];
}

void LoraModel::layer_backward(int i, float* dres) {
  const TritterConfig& c = base_.config;
  const int64_t N = B_ * T_, D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, d = c.head_dim, r = lora_.rank;
  const float sc = lora_.scale();
  const LayerWeights& W = base_.layers[static_cast<size_t>(i)];
  const auto& slots = slot_[static_cast<size_t>(i)];
  const LayerSave& A = v_->layers[recompute_ ? 0 : static_cast<size_t>(i)];
  Views& v = *v_;
  const float* p = params_.as<float>().data();
  float* g = grads_.as<float>().data();
  const bool need_dx = i > 0;  // layer 0's input gradient would only feed the frozen embedding
  auto zero = [](float* q, int64_t n) { std::memset(q, 0, static_cast<size_t>(n) * sizeof(float)); };
  float* dg = v.dg;  // frozen gains: their gradient goes to a scratch that is never read

  // dB += (α/r)·dyᵀ xa ; g_r = (α/r)·dy B ; dA += g_rᵀ x ; and, when dx is wanted, dx += g_r A (⊙ dropout mask).
  auto lora_backward = [&](int kind, const float* dy, float* dx, int64_t I) {
    const int s = slots[static_cast<size_t>(kind)];
    if (s < 0) return;
    const LoraTensor& t = table_[static_cast<size_t>(s)];
    const float* x = A.lin[kInputOf[kind]];
    const int n = static_cast<int>(N), o = static_cast<int>(t.O), in = static_cast<int>(I), rr = static_cast<int>(r);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o, rr, n, sc, dy, o, A.xa[kind], rr, 1.0f, g + t.b_offset, rr);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, rr, o, sc, dy, o, p + t.b_offset, rr, 0.0f, v.g_r, rr);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rr, in, n, 1.0f, v.g_r, rr, x, in, 1.0f, g + t.a_offset, in);
    if (!dx) return;
    if (lora_.dropout <= 0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, rr, 1.0f, v.g_r, rr, p + t.a_offset, in, 1.0f, dx, in);
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, rr, 1.0f, v.g_r, rr, p + t.a_offset, in, 0.0f, v.xt, in);
    const float keep = static_cast<float>(1.0 / (1.0 - lora_.dropout));
    for (int64_t j = 0; j < N * I; ++j) dx[j] += x[j] != 0.0f ? v.xt[j] * keep : 0.0f;
  };
  auto base_dx = [&](int kind, float* dx, const float* dy, bool accumulate) {
    bitlinear_backward_dx(ctx_, dx, dy, base_weight(layer_matrix(W, kind)), N, accumulate, v.xt);
  };

  // MLP branch: out = h + f.
  const float* df = dres;
  if (c.post_norm != "none") {
    zero(v.d_d2, N * D);
    rmsnorm_backward(ctx_, v.d_d2, dg, dres, A.f, A.r_f, W.post_ff_norm, N, D);
    df = v.d_d2;
  }
  base_dx(kDown, v.d_f1, df, false);
  lora_backward(kDown, df, v.d_f1, F);
  const float* ds = v.d_f1;
  if (c.sub_norm) {
    zero(v.d_f2, N * F);
    rmsnorm_backward(ctx_, v.d_f2, dg, v.d_f1, A.spre, A.r_s, W.ffn_sub_norm, N, F);
    ds = v.d_f2;
  }
  float* du = ds == v.d_f1 ? v.d_f2 : v.d_f1;
  float* dgt = v.d_f3;
  if (c.gated_mlp()) {
    relu2_glu_backward(ctx_, dgt, du, ds, A.gt, A.u, N * F);
  } else {
    relu2_backward(ctx_, du, ds, A.u, N * F);
  }
  base_dx(kUp, v.d_d1, du, false);
  if (c.gated_mlp()) base_dx(kGate, v.d_d1, dgt, true);
  lora_backward(kUp, du, v.d_d1, D);
  if (c.gated_mlp()) lora_backward(kGate, dgt, v.d_d1, D);
  rmsnorm_backward(ctx_, dres, dg, v.d_d1, A.h, A.r_h, W.pre_ff_norm, N, D);

  // Attention branch: h = x + y; dres holds dh.
  const float* dy = dres;
  if (c.post_norm == "both") {
    zero(v.d_d2, N * D);
    rmsnorm_backward(ctx_, v.d_d2, dg, dres, A.y, A.r_y, W.post_attn_norm, N, D);
    dy = v.d_d2;
  }
  base_dx(kO, v.d_hd1, dy, false);
  lora_backward(kO, dy, v.d_hd1, Hd);
  const float* dout = v.d_hd1;
  if (c.sub_norm) {
    zero(v.d_hd2, N * Hd);
    rmsnorm_backward(ctx_, v.d_hd2, dg, v.d_hd1, A.att, A.r_att, W.attn_sub_norm, N, Hd);
    dout = v.d_hd2;
  }
  attention_backward(ctx_, v.d_q, v.d_k, v.d_v, dout, A.q, A.k, A.v, A.att, A.lse, attn_,
                     attn_scratch_.as<float>().data());
  rope_backward(ctx_, v.d_q, rope_cos_, rope_sin_, B_, T_, H, d);
  rope_backward(ctx_, v.d_k, rope_cos_, rope_sin_, B_, T_, K, d);
  const float* dq = v.d_q;
  const float* dk = v.d_k;
  if (c.qk_norm) {
    zero(v.d_q2, N * Hd);
    zero(v.d_k2, N * Kd);
    rmsnorm_backward(ctx_, v.d_q2, dg, v.d_q, A.qraw, A.rq, W.q_norm, N * H, d);
    rmsnorm_backward(ctx_, v.d_k2, dg, v.d_k, A.kraw, A.rk, W.k_norm, N * K, d);
    dq = v.d_q2;
    dk = v.d_k2;
  }
  if (need_dx) {
    base_dx(kQ, v.d_d1, dq, false);
    base_dx(kK, v.d_d1, dk, true);
    base_dx(kV, v.d_d1, v.d_v, true);
  }
  lora_backward(kQ, dq, need_dx ? v.d_d1 : nullptr, D);
  lora_backward(kK, dk, need_dx ? v.d_d1 : nullptr, D);
  lora_backward(kV, v.d_v, need_dx ? v.d_d1 : nullptr, D);
  if (need_dx) rmsnorm_backward(ctx_, dres, dg, v.d_d1, v.xs[static_cast<size_t>(i)], A.r_in, W.input_norm, N, D);
}

double LoraModel::forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale,
                          bool train) {
  if (B != B_ || T != T_ || arena_.empty()) reserve(B, T, recompute_);
  const TritterConfig& c = base_.config;
  const int64_t N = B * T, D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  Views& v = *v_;
  ids_.assign(inputs, inputs + N);
  embedding_forward(v.xs[0], base_.embed, inputs, N, D, V);
  last_train_ = train;
  for (int64_t i = 0; i < L; ++i) {
    layer_rng_[static_cast<size_t>(i)] = drop_rng_.state();
    layer_forward(static_cast<int>(i), v.xs[static_cast<size_t>(i + 1)], train);
  }
  rmsnorm_forward(ctx_, v.hhat, v.r_final, v.xs[static_cast<size_t>(L)], base_.final_norm, N, D,
                  static_cast<float>(c.rms_norm_eps));
  linear_forward(v.logits, v.hhat, head_, N, D, V);
  logits_ = v.logits;
  have_backward_state_ = false;
  if (!targets) return 0.0;
  const double loss = cross_entropy_forward_backward(ctx_, v.dz, v.logits, targets, N, V, c.z_loss, grad_scale);
  have_backward_state_ = true;
  return loss;
}

void LoraModel::backward() {
  TRITTER_CHECK(have_backward_state_, "lora backward without a forward with targets");
  const TritterConfig& c = base_.config;
  const int64_t N = B_ * T_, D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  Views& v = *v_;
  std::memset(v.dg, 0, static_cast<size_t>(std::max({D, c.q_dim(), c.intermediate_size, c.head_dim})) * sizeof(float));
  // dĥ (N, D) = dz (N, V) · W_head (V, D): the head is frozen, no dW.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), static_cast<int>(D), static_cast<int>(V),
              1.0f, v.dz, static_cast<int>(V), head_, static_cast<int>(D), 0.0f, v.d_d1, static_cast<int>(D));
  std::memset(v.dres, 0, static_cast<size_t>(N * D) * sizeof(float));
  rmsnorm_backward(ctx_, v.dres, v.dg, v.d_d1, v.xs[static_cast<size_t>(L)], v.r_final, base_.final_norm, N, D);
  const auto rng_after_forward = drop_rng_.state();
  for (int64_t i = L - 1; i >= 0; --i) {
    if (recompute_) {  // rebuild layer i's saved set; its output xs[i+1] is rewritten with the same values
      drop_rng_.set_state(layer_rng_[static_cast<size_t>(i)]);
      layer_forward(static_cast<int>(i), v.xs[static_cast<size_t>(i + 1)], last_train_);
    }
    layer_backward(static_cast<int>(i), v.dres);
  }
  drop_rng_.set_state(rng_after_forward);
}

}  // namespace tritter::train
