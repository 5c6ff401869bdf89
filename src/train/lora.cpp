// LoRA on the frozen packed ternary base: the model's forward/backward (training-spec §5–7 with the §9 branch; see
// lora.h for the maths and the choice of the branch's input). Config, adapter table and init: model/lora.h.
#include "train/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "train/arena.h"

namespace tritter::train {

namespace {

int nthreads(const Context& ctx) { return std::max(1, ctx.threads); }

}  // namespace

// ---------------------------------------------------------------- the arena

// One layer's saved set: the block's, plus the adapters' inputs and x·Aᵀ. Outside the anonymous namespace because
// LoraModel::Views (a member type of a class with linkage) holds it.
struct LoraLayerSave {
  BlockActs acts;
  float* lin[kProjInputCount] = {};  // LoRA inputs (fp, after dropout): a (N,D), o (N,Hd), m (N,D), s (N,F)
  float* xa[kProjCount] = {};    // x·Aᵀ (N, r) per targeted kind
};

struct LoraModel::Views {
  std::vector<LoraLayerSave> layers;
  std::vector<float*> xs;  // L+1 residual streams (N, D)
  float *r_final = nullptr, *hhat = nullptr, *logits = nullptr, *dz = nullptr;
  BitInput qin;  // (N, max) i8 + (N): the current BitLinear input, not saved (no dW for a frozen base)
  BlockScratch block;
  float *dres = nullptr, *g_r = nullptr, *lora_dx = nullptr;
};

// The adapters as the block's hook: inputs kept (with dropout) in the layer's saved set, x·Aᵀ saved for the
// backward, gradients accumulated into the model's grads.
class LoraModel::Hook : public LoraHook {
 public:
  explicit Hook(LoraModel& m) : m_(m) {}
  bool targets(int layer, int proj) const override {
    return m_.slot_[static_cast<size_t>(layer)][static_cast<size_t>(proj)] >= 0;
  }
  const float* take_input(int layer, int input, const float* x, int64_t N, int64_t I) const override;
  void forward(const Context& ctx, int layer, int proj, const float* x, int64_t N, float* y) const override;
  void backward(const Context& ctx, int layer, int proj, const float* dy, int64_t N, float* dx) const override;
  bool train = true;

 private:
  LoraLayerSave& save(int layer) const { return m_.v_->layers[m_.recompute_ ? 0 : static_cast<size_t>(layer)]; }
  const LoraTensor& tensor(int layer, int proj) const {
    return m_.table_[static_cast<size_t>(m_.slot_[static_cast<size_t>(layer)][static_cast<size_t>(proj)])];
  }
  LoraModel& m_;
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
  const int64_t in_width[kProjInputCount] = {D, Hd, D, F};
  bool uses_input[kProjInputCount] = {};
  for (Proj p : kProjs)
    if (lora.targets_proj(p)) uses_input[static_cast<int>(proj_input(p))] = true;
  v.xs.assign(static_cast<size_t>(L + 1), nullptr);
  for (auto& x : v.xs) x = c.take<float>(N * D);
  // The BitLinear input is one buffer every projection shares (carved below, bound after).
  v.layers.assign(static_cast<size_t>(recompute ? 1 : L), LoraLayerSave{});
  for (auto& ls : v.layers) {
    BlockActs& a = ls.acts;
    a.r_in = c.take<float>(N);
    for (int j = 0; j < kProjInputCount; ++j)
      if (uses_input[j]) ls.lin[j] = c.take<float>(N * in_width[j]);
    for (Proj p : kProjs)
      if (lora.targets_proj(p)) ls.xa[proj_index(p)] = c.take<float>(N * r);
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
    if (cfg.post_norm == PostNorm::Both) {
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
    if (cfg.post_norm != PostNorm::None) {
      a.f = c.take<float>(N * D);
      a.r_f = c.take<float>(N);
    }
  }
  v.r_final = c.take<float>(N);
  v.hhat = c.take<float>(N * D);
  v.logits = c.take<float>(N * V);
  v.dz = c.take<float>(N * V);
  BlockScratch& s = v.block;
  s.fp = s.act = c.take<float>(N * big);
  s.tmp_d = c.take<float>(N * D);
  v.qin.q = c.take<int8_t>(N * big);
  v.qin.s = c.take<float>(N);
  for (auto& ls : v.layers) ls.acts.a = ls.acts.o = ls.acts.m = ls.acts.s = v.qin;
  v.dres = c.take<float>(N * D);
  s.d_d1 = c.take<float>(N * D);
  s.d_d2 = c.take<float>(N * D);
  s.d_hd1 = c.take<float>(N * Hd);
  s.d_hd2 = c.take<float>(N * Hd);
  s.d_f1 = c.take<float>(N * F);
  s.d_f2 = c.take<float>(N * F);
  s.d_f3 = c.take<float>(N * F);
  s.d_q = c.take<float>(N * Hd);
  s.d_k = c.take<float>(N * Kd);
  s.d_v = c.take<float>(N * Kd);
  s.d_q2 = c.take<float>(N * Hd);
  s.d_k2 = c.take<float>(N * Kd);
  s.xt = c.take<float>(N * big);
  s.dg = c.take<float>(std::max(big, cfg.head_dim));
  v.g_r = c.take<float>(N * r);
  v.lora_dx = c.take<float>(N * big);
}
}  // namespace

// ---------------------------------------------------------------- the model

LoraModel::LoraModel(const ModelWeights& base, const LoraConfig& lora, Context& ctx)
    : base_(base), lora_(lora), ctx_(ctx), v_(std::make_unique<Views>()), hook_(std::make_unique<Hook>(*this)) {
  lora_.validate();
  const TritterConfig& c = base_.config;
  if (!c.quant) throw_error("lora: base model: found quant=false, expected a packed ternary base (quant=true)");
  if (c.cosine_head()) throw_error("lora: base model: head_type cosine_tied is not supported by LoRA fine-tuning yet");
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
  for (const auto& L : base_.layers) weights_.push_back(block_weights(L));  // wt = null: dx through the kernel
  if (base_.head.format == HeadFormat::F32) {
    head_ = base_.head.f32;
  } else {  // int8 or i4 head: one fp32 copy of the values the head runs
    const int64_t V = c.vocab_size, D = c.hidden_size;
    head_f32_ = Buffer(static_cast<size_t>(V * D) * sizeof(float), MemCategory::Weights, &ctx_.memory);
    float* h = head_f32_.as<float>().data();
    for (int64_t r = 0; r < V; ++r) head_row_values(base_.head, r, D, h + r * D);
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
  attn_ = AttnShape{B, T, c.num_attention_heads, c.num_key_value_heads, c.head_dim, AttnMask::causal(c.sliding_window)};
  attn_scratch_ = Buffer(static_cast<size_t>(attention_scratch_floats(attn_, nthreads(ctx_))) * sizeof(float),
                         MemCategory::Scratch, &ctx_.memory);
  v_->block.attn = attn_scratch_.as<float>().data();
  const int64_t half = c.head_dim / 2;
  rope_ = Buffer(static_cast<size_t>(2 * T * half) * sizeof(float), MemCategory::Scratch, &ctx_.memory);
  rope_cos_ = rope_.as<float>().data();
  rope_sin_ = rope_cos_ + T * half;
  rope_tables(rope_cos_, rope_sin_, T, c.head_dim, c.rope_theta, 0, c.rope_scaling, c.max_position_embeddings, T);
  B_ = B;
  T_ = T;
  have_backward_state_ = false;
}

// Keeps x (N, I) as the LoRA input of `input`, with inverted dropout when p > 0 (drop with probability p, scale the
// rest by 1/(1−p)). A dropped element is stored as 0; the backward reads the mask back as x != 0 (an element that
// was exactly 0 before dropout gets no gradient through the branch either way, since its value contributes nothing).
const float* LoraModel::Hook::take_input(int layer, int input, const float* x, int64_t N, int64_t I) const {
  float* dst = save(layer).lin[input];
  const int64_t n = N * I;
  const double p = m_.lora_.dropout;
  if (!train || p <= 0) {
    std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
    return dst;
  }
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t j = 0; j < n; ++j) dst[j] = m_.drop_rng_.uniform_double() < p ? 0.0f : x[j] * keep;
  return dst;
}

// y += (α/r)·(x Aᵀ) Bᵀ, keeping xa = x Aᵀ (N, r).
void LoraModel::Hook::forward(const Context& ctx, int layer, int proj, const float* x, int64_t N, float* y) const {
  const LoraTensor& t = tensor(layer, proj);
  const float* p = m_.params_.as<float>().data();
  const int64_t r = m_.lora_.rank;
  float* xa = save(layer).xa[proj];
  gemm_f32(ctx, xa, x, p + t.a_offset, N, r, t.I, false, true, 1.0f, 0.0f);
  gemm_f32(ctx, y, xa, p + t.b_offset, N, t.O, r, false, true, m_.lora_.scale(), 1.0f);
}

// dB += (α/r)·dyᵀ xa ; g_r = (α/r)·dy B ; dA += g_rᵀ x ; and, when dx is wanted, dx += g_r A (⊙ dropout mask).
void LoraModel::Hook::backward(const Context& ctx, int layer, int proj, const float* dy, int64_t N, float* dx) const {
  const LoraTensor& t = tensor(layer, proj);
  const LoraLayerSave& ls = save(layer);
  const float* x = ls.lin[static_cast<int>(proj_input(static_cast<Proj>(proj)))];
  const float* p = m_.params_.as<float>().data();
  float* g = m_.grads_.as<float>().data();
  const int64_t r = m_.lora_.rank, O = t.O, I = t.I;
  const float sc = m_.lora_.scale();
  float* g_r = m_.v_->g_r;
  gemm_f32(ctx, g + t.b_offset, dy, ls.xa[proj], O, r, N, true, false, sc, 1.0f);
  gemm_f32(ctx, g_r, dy, p + t.b_offset, N, r, O, false, false, sc, 0.0f);
  gemm_f32(ctx, g + t.a_offset, g_r, x, r, I, N, true, false, 1.0f, 1.0f);
  if (!dx) return;
  if (m_.lora_.dropout <= 0) {
    gemm_f32(ctx, dx, g_r, p + t.a_offset, N, I, r, false, false, 1.0f, 1.0f);
    return;
  }
  float* tmp = m_.v_->lora_dx;
  gemm_f32(ctx, tmp, g_r, p + t.a_offset, N, I, r, false, false, 1.0f, 0.0f);
  const float keep = static_cast<float>(1.0 / (1.0 - m_.lora_.dropout));
  for (int64_t j = 0; j < N * I; ++j) dx[j] += x[j] != 0.0f ? tmp[j] * keep : 0.0f;
}

BlockRun LoraModel::block_run(int layer) const {
  BlockRun run = BlockRun::training(ctx_, base_.config, layer, attn_, rope_cos_, rope_sin_);
  run.lora = hook_.get();
  return run;
}

void LoraModel::layer_forward(int i, float* x_out, bool train) {
  hook_->train = train;
  BlockActs A = v_->layers[recompute_ ? 0 : static_cast<size_t>(i)].acts;
  A.x = v_->xs[static_cast<size_t>(i)];
  block_forward(block_run(i), weights_[static_cast<size_t>(i)], A, x_out, v_->block);
}

void LoraModel::layer_backward(int i, float* dres) {
  BlockActs A = v_->layers[recompute_ ? 0 : static_cast<size_t>(i)].acts;
  A.x = v_->xs[static_cast<size_t>(i)];
  const BlockGrads frozen;  // the base learns nothing
  // Layer 0's input gradient would only feed the frozen embedding.
  block_backward(block_run(i), weights_[static_cast<size_t>(i)], frozen, A, dres, v_->block, i > 0);
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
  linear_forward(ctx_, v.logits, v.hhat, head_, N, D, V);
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
  // dĥ (N, D) = dz (N, V) · W_head (V, D): the head is frozen, no dW.
  linear_backward(ctx_, v.block.d_d1, nullptr, v.dz, v.hhat, head_, N, D, V, false);
  std::memset(v.dres, 0, static_cast<size_t>(N * D) * sizeof(float));
  rmsnorm_backward(ctx_, v.dres, v.block.dg, v.block.d_d1, v.xs[static_cast<size_t>(L)], v.r_final, base_.final_norm,
                   N, D);
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
