// Whole-model forward/backward for training (training-spec §5–7) over one flat parameter buffer.
#include "train/model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>

#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/parallel.h"
#include "kernels/ternary_matmul.h"
#include "model/init.h"
#include "model/projections.h"
#include "train/arena.h"

namespace tritter::train {

namespace {

#define TIMED(op, ...)                  \
  do {                                  \
    OpTimer timer_(&times_, Op::op);    \
    __VA_ARGS__;                        \
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
  v.acts.assign(static_cast<size_t>(recompute ? 1 : L), BlockActs{});
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
    if (cfg.post_norm == PostNorm::Both) {
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
    if (cfg.post_norm != PostNorm::None) {
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
  if (cfg.cosine_head()) {
    v.hunit = c.take<float>(N * D);
    v.r_hunit = c.take<float>(N);
    v.eunit = c.take<float>(V * D);
    v.r_eunit = c.take<float>(V);
    v.d_hunit = c.take<float>(N * D);
    v.d_eunit = c.take<float>(V * D);
  }
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
  grad_views_.resize(bits_.size());
  size_t off = 0;
  float* p = params_.as<float>().data();
  float* g = grads_.as<float>().data();
  for (const auto& t : table_) {
    if (t.layer < 0) continue;
    BlockWeights& lw = bits_[static_cast<size_t>(t.layer)];
    BlockGrads& lg = grad_views_[static_cast<size_t>(t.layer)];
    if (t.role != TensorRole::BitLinear) {
      *lw.norm_slot(t.kind) = p + t.offset;
      *lg.norm_slot(t.kind) = g + t.offset;
      continue;
    }
    *lg.proj_slot(t.kind) = g + t.offset;
    BitWeight* bw = lw.proj_slot(t.kind);
    bw->w = p + t.offset;
    bw->O = t.shape[0];
    bw->I = t.shape[1];
    bw->quant = config_.quant;
    if (config_.quant) {
      bw->packed = static_cast<uint8_t*>(wcache_.data()) + off;
      off += (ternary_matrix_bytes(t.shape[0], t.shape[1]) + 63) & ~size_t{63};
    }
  }
  set_dx_kernel(false);
}

TrainModel::TrainModel(TrainModel& primary, Context& ctx)
    : config_(primary.config_), ctx_(ctx), primary_(&primary), table_(primary.table_),
      num_params_(primary.num_params_), weights_stale_(false) {
  grads_ = Buffer(static_cast<size_t>(num_params_) * sizeof(float), MemCategory::Gradients, &ctx_.memory);
  grad_views_.resize(static_cast<size_t>(config_.num_hidden_layers));
  float* g = grads_.as<float>().data();
  for (const auto& t : table_) {
    if (t.layer < 0) continue;
    BlockGrads& lg = grad_views_[static_cast<size_t>(t.layer)];
    if (t.role == TensorRole::BitLinear) {
      *lg.proj_slot(t.kind) = g + t.offset;
    } else {
      *lg.norm_slot(t.kind) = g + t.offset;
    }
  }
}

void TrainModel::init_weights(uint64_t seed) {
  init_parameters(params(), config_, seed);  // model/init: the same values `tritter init` writes
}

void TrainModel::set_dx_kernel(bool kernel) {
  if (!config_.quant || primary_) return;  // a replica uses its primary's weight cache
  if (kernel) {
    for (auto& lb : bits_)
      for (int q = 0; q < kProjCount; ++q) lb.proj(q).wt = nullptr;
    wtilde_ = Buffer();
    return;
  }
  int64_t total = 0;
  for (const auto& t : table_)
    if (t.role == TensorRole::BitLinear) total += t.numel();
  wtilde_ = Buffer(static_cast<size_t>(total) * sizeof(float), MemCategory::Weights, &ctx_.memory);
  float* p = wtilde_.as<float>().data();
  for (auto& lb : bits_)
    for (int q = 0; q < kProjCount; ++q) {
      BitWeight* bw = &lb.proj(q);
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
      for (int q = 0; q < kProjCount; ++q) {
        BitWeight* bw = &lb.proj(q);
        if (!bw->w) continue;
        all.push_back(bw);
        scratch_off.push_back(off);
        off += bw->O * bw->I;
      }
    }
    int8_t* scratch = static_cast<int8_t*>(wscratch_.data());
    OpTimer timer(&times_, Op::WeightQuant);
    parallel_for(std::max(1, ctx_.threads), static_cast<int64_t>(all.size()), [&](int64_t i, int) {
      bitweight_prepare(*all[size_t(i)], scratch + scratch_off[size_t(i)]);
    });
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
                    mask_.value_or(AttnMask::causal(config_.sliding_window))};
  attn_.prefix = prefix_.empty() ? nullptr : prefix_.data();
  attn_scratch_ = Buffer(static_cast<size_t>(attention_scratch_floats(attn_, std::max(1, ctx_.threads))) *
                             sizeof(float), MemCategory::Scratch, &ctx_.memory);
  const int64_t half = config_.head_dim / 2;
  rope_ = Buffer(static_cast<size_t>(2 * T * half) * sizeof(float), MemCategory::Scratch, &ctx_.memory);
  rope_cos_ = rope_.as<float>().data();
  rope_sin_ = rope_cos_ + T * half;
  rope_tables(rope_cos_, rope_sin_, T, config_.head_dim, config_.rope_theta, 0, config_.rope_scaling,
              config_.max_position_embeddings, T);
  B_ = B;
  T_ = T;
  recompute_ = recompute;
}

void TrainModel::set_mask(const AttnMask& mask, std::vector<int64_t> prefix) {
  for (int64_t P : prefix) {
    if (P < 0) throw_error("train: prefix length ", P, ", expected >= 0");
  }
  mask_ = mask;
  prefix_ = std::move(prefix);
  attn_.mask = mask;
  attn_.prefix = prefix_.empty() ? nullptr : prefix_.data();
}

void mask_prefix_targets(int32_t* targets, int64_t B, int64_t T, std::span<const int64_t> prefix) {
  if (static_cast<int64_t>(prefix.size()) != B) {
    throw_error("prefix lengths: found ", prefix.size(), ", expected one per sequence (", B, ")");
  }
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T && t + 1 < prefix[static_cast<size_t>(b)]; ++t) targets[b * T + t] = -100;
  }
}

BlockRun TrainModel::block_run(int layer) {
  BlockRun run = BlockRun::training(ctx_, config_, layer, attn_, rope_cos_, rope_sin_);
  run.times = &times_;
  return run;
}

BlockScratch TrainModel::block_scratch() const {
  BlockScratch s;
  s.fp = s.act = v_.tmp_big;
  s.tmp_d = v_.tmp_d;
  s.attn = const_cast<float*>(attn_scratch_.as<float>().data());
  s.d_d1 = v_.d_d1;
  s.d_d2 = v_.d_d2;
  s.d_hd1 = v_.d_hd1;
  s.d_hd2 = v_.d_hd2;
  s.d_f1 = v_.d_f1;
  s.d_f2 = v_.d_f2;
  s.d_f3 = v_.d_f3;
  s.d_q = v_.d_q;
  s.d_k = v_.d_k;
  s.d_v = v_.d_v;
  s.d_q2 = v_.d_q2;
  s.d_k2 = v_.d_k2;
  s.xt = v_.xt;
  return s;
}

double TrainModel::forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale) {
  if (B != B_ || T != T_) reserve(B, T, recompute_);
  if (!prefix_.empty() && static_cast<int64_t>(prefix_.size()) != B) {
    throw_error("train: prefix lengths: found ", prefix_.size(), ", expected one per sequence (B = ", B, ")");
  }
  prepare_weights();
  const TritterConfig& c = config_;
  const int64_t N = B * T, D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  const float* p = pdata();
  const float* E = p + table_.front().offset;
  const TensorInfo* head = c.tie_word_embeddings ? &table_.front() : find_tensor(table_, "lm_head.weight");
  const TensorInfo* fnorm = find_tensor(table_, "model.norm.weight");
  ids_.assign(inputs, inputs + N);
  const std::vector<BlockWeights>& W = primary_ ? primary_->bits_ : bits_;  // shared σ, packed
  const BlockScratch scratch = block_scratch();
  TIMED(Elementwise, embedding_forward(v_.xs[0], E, inputs, N, D, V));
  for (int64_t i = 0; i < L; ++i) {
    BlockActs A = v_.acts[recompute_ ? 0 : static_cast<size_t>(i)];
    A.x = v_.xs[static_cast<size_t>(i)];
    block_forward(block_run(static_cast<int>(i)), W[static_cast<size_t>(i)], A, v_.xs[static_cast<size_t>(i + 1)],
                  scratch);
  }
  TIMED(Norm, rmsnorm_forward(ctx_, v_.hhat, v_.r_final, v_.xs[static_cast<size_t>(L)], p + fnorm->offset, N,
      D, static_cast<float>(c.rms_norm_eps)));
  if (!c.cosine_head()) {
    TIMED(Head, linear_forward(ctx_, v_.logits, v_.hhat, p + head->offset, N, D, V));
    if (!targets) return 0.0;
    OpTimer timer(&times_, Op::Head);
    return cross_entropy_forward_backward(ctx_, v_.dz, v_.logits, targets, N, V, c.z_loss, grad_scale);
  }
  // Cosine head: z = s·ĥ Êᵀ; the auxiliary term's gradient goes into d_hunit now, the CE part in backward().
  OpTimer timer(&times_, Op::Head);
  const float s = cos_scale();
  l2norm_rows_forward(ctx_, v_.hunit, v_.r_hunit, v_.hhat, N, D);
  l2norm_rows_forward(ctx_, v_.eunit, v_.r_eunit, E, V, D);
  cosine_logits_forward(ctx_, v_.logits, v_.hunit, v_.eunit, s, N, D, V);
  aux_loss_ = mean_cos_ = 0.0;
  if (!targets) return 0.0;
  const double ce = cross_entropy_forward_backward(ctx_, v_.dz, v_.logits, targets, N, V, c.z_loss, grad_scale);
  std::memset(v_.d_hunit, 0, static_cast<size_t>(N * D) * sizeof(float));
  std::memset(v_.d_eunit, 0, static_cast<size_t>(V * D) * sizeof(float));
  const double beta = c.embed_pred_loss == EmbedPredLoss::Cosine ? beta_ : 0.0;
  aux_loss_ = embed_pred_forward_backward(ctx_, v_.d_hunit, c.embed_pred_stopgrad ? nullptr : v_.d_eunit, v_.hunit,
                                          v_.eunit, targets, N, D, V, beta, grad_scale, &mean_cos_);
  return ce;
}

float TrainModel::cos_scale() const {
  const TensorInfo* ls = find_tensor(table_, "lm_head.log_scale");
  TRITTER_CHECK(ls != nullptr, "cos_scale: the model has no cosine head");
  const double s = std::exp(static_cast<double>(pdata()[ls->offset]));
  return static_cast<float>(std::clamp(s, config_.cos_scale_min, config_.cos_scale_max));
}

void TrainModel::backward() {
  TRITTER_CHECK(!ids_.empty(), "backward before forward");
  const TritterConfig& c = config_;
  const int64_t N = B_ * T_, D = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  const float* p = pdata();
  float* g = grads_.as<float>().data();
  const TensorInfo* head = c.tie_word_embeddings ? &table_.front() : find_tensor(table_, "lm_head.weight");
  const TensorInfo* fnorm = find_tensor(table_, "model.norm.weight");
  if (!c.cosine_head()) {
    TIMED(Head, linear_backward(ctx_, v_.d_d1, g + head->offset, v_.dz, v_.hhat, p + head->offset, N, D, V, false));
  } else {
    OpTimer timer(&times_, Op::Head);
    const float s = cos_scale();
    const double ds = cosine_logits_backward(ctx_, v_.d_hunit, v_.d_eunit, v_.dz, v_.logits, v_.hunit, v_.eunit, s,
                                             N, D, V, /*accumulate=*/true);
    l2norm_rows_backward(ctx_, v_.d_d1, v_.d_hunit, v_.hunit, v_.r_hunit, N, D, false);
    l2norm_rows_backward(ctx_, g + head->offset, v_.d_eunit, v_.eunit, v_.r_eunit, V, D, true);
    // s = clamp(exp(log s)): d log s = ds·s inside the clamp range, 0 where it is clamped.
    const TensorInfo* ls = find_tensor(table_, "lm_head.log_scale");
    const double raw = std::exp(static_cast<double>(p[ls->offset]));
    if (raw >= c.cos_scale_min && raw <= c.cos_scale_max) g[ls->offset] += static_cast<float>(ds * raw);
  }
  std::memset(v_.dres, 0, static_cast<size_t>(N * D) * sizeof(float));
  TIMED(Norm, rmsnorm_backward(ctx_, v_.dres, g + fnorm->offset, v_.d_d1, v_.xs[static_cast<size_t>(L)],
      v_.r_final, p + fnorm->offset, N, D));
  const std::vector<BlockWeights>& W = primary_ ? primary_->bits_ : bits_;
  const BlockScratch scratch = block_scratch();
  for (int64_t i = L - 1; i >= 0; --i) {
    BlockActs A = v_.acts[recompute_ ? 0 : static_cast<size_t>(i)];
    A.x = v_.xs[static_cast<size_t>(i)];
    const size_t li = static_cast<size_t>(i);
    if (recompute_) block_forward(block_run(static_cast<int>(i)), W[li], A, v_.tmp_d, scratch);
    block_backward(block_run(static_cast<int>(i)), W[li], grad_views_[li], A, v_.dres, scratch);
  }
  TIMED(Elementwise, embedding_backward(g + table_.front().offset, v_.dres, ids_.data(), N, D));
}

}  // namespace tritter::train
