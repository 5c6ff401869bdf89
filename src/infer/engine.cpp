#include "infer/engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <initializer_list>

#include "core/error.h"
#include "infer/attention.h"
#include "infer/lm_head.h"
#include "infer/lora_apply.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

Engine::Engine(Context& ctx, const ModelWeights& weights, const EngineOptions& options)
    : ctx_(ctx),
      w_(weights),
      options_(resolve_engine_options(weights.config, options)),
      cache_(weights.config, options_.context, options_.kv_dtype, options_.max_batch,
             &ctx.memory) {
  const TritterConfig& c = w_.config;
  if (!c.quant) throw_error("engine: quant=false models are not supported (no packed form)");
  const int64_t d = c.head_dim, half = d / 2;
  MemoryAccount* account = &ctx.memory;
  rope_ = Buffer(2 * options_.context * half * sizeof(float), MemCategory::Activations, account);
  float* cosv = rope_.as<float>().data();
  rope_tables(cosv, cosv + options_.context * half, options_.context, d, c.rope_theta, 0);

  const int64_t B = options_.max_batch, D = c.hidden_size, F = c.intermediate_size;
  const int64_t widest = std::max({D, c.q_dim(), F});
  const size_t floats = B * (D + c.q_dim() + 2 * c.kv_dim() + c.q_dim() + D + 2 * F + 1);
  scratch_ = Buffer(floats * sizeof(float) + B * widest, MemCategory::Activations, account);
  float* p = scratch_.as<float>().data();
  auto take = [&](int64_t n) {
    float* r = p;
    p += n;
    return r;
  };
  x_ = take(B * D);
  q_ = take(B * c.q_dim());
  k_ = take(B * c.kv_dim());
  v_ = take(B * c.kv_dim());
  o_ = take(B * c.q_dim());
  y_ = take(B * D);
  u_ = take(B * F);
  g_ = take(B * F);
  xs_ = take(B);
  xq_ = reinterpret_cast<int8_t*>(p);
}

void Engine::set_lora(const LoraSet* lora) {
  lora_ = lora && !lora->empty() ? lora : nullptr;
  if (lora_ && !lora_x_.bytes()) {
    const TritterConfig& c = w_.config;
    const int64_t widest = std::max({c.hidden_size, c.q_dim(), c.intermediate_size});
    lora_x_ = Buffer(options_.max_batch * widest * sizeof(float), MemCategory::Activations, &ctx_.memory);
  }
}

void Engine::reset() {
  pos_ = 0;
  cache_.clear();
}

void Engine::forward(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  const TritterConfig& c = w_.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  check_input(tokens);
  for (int64_t start = 0; start < n; start += options_.max_batch) {
    const int64_t T = std::min(options_.max_batch, n - start);
    const bool last = start + T == n;
    float* out = all_logits ? logits + start * c.vocab_size : (last ? logits : nullptr);
    forward_chunk(tokens.data() + start, T, out, all_logits);
  }
}

void Engine::check_input(std::span<const int32_t> tokens) const {
  const TritterConfig& c = w_.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 1) throw_error("engine: no tokens to run (an empty prompt?)");
  if (pos_ + n > options_.context) {
    throw_error("engine: context full: ", pos_, " positions used + ", n, " new tokens exceed the context of ",
                options_.context, " (raise --ctx, at most max_position_embeddings = ", c.max_position_embeddings, ")");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      throw_error("engine: token ", i, ": id ", tokens[i], ", expected 0 .. ", c.vocab_size - 1);
    }
  }
}

void Engine::forward_chunk(const int32_t* tokens, int64_t T, float* logits, bool all_logits) {
  const TritterConfig& c = w_.config;
  const int64_t D = c.hidden_size;
  auto t0 = Clock::now();
  for (int64_t t = 0; t < T; ++t) std::memcpy(x_ + t * D, w_.embed + static_cast<int64_t>(tokens[t]) * D, D * sizeof(float));
  timings_.other_s += seconds_since(t0);
  for (int l = 0; l < c.num_hidden_layers; ++l) layer_forward(w_.layers[l], l, T);
  pos_ += T;
  if (!logits) return;
  t0 = Clock::now();
  const int64_t r0 = all_logits ? 0 : T - 1, rows = T - r0;
  rmsnorm(ctx_, y_, x_ + r0 * D, w_.final_norm, rows, D, static_cast<float>(c.rms_norm_eps));
  lm_head_forward(ctx_, logits, y_, rows, w_.head, c.vocab_size, D, xq_, xs_);
  timings_.head_s += seconds_since(t0);
}

void Engine::layer_forward(const LayerWeights& L, int layer, int64_t T) {
  const TritterConfig& c = w_.config;
  const int64_t D = c.hidden_size, F = c.intermediate_size, H = c.num_attention_heads, K = c.num_key_value_heads;
  const int64_t d = c.head_dim, HD = c.q_dim();
  const float eps = static_cast<float>(c.rms_norm_eps);
  double& mm = timings_.matmul_s;
  double& other = timings_.other_s;
  auto t0 = Clock::now();
  auto lap = [&](double& into) {
    const auto now = Clock::now();
    into += std::chrono::duration<double>(now - t0).count();
    t0 = now;
  };

  // LoRA (set_lora): lx = the fp32 normalized input of the targeted projections; lora_add adds their deltas.
  float* lx = lora_ ? lora_x_.as<float>().data() : nullptr;
  auto lora_on = [&](std::initializer_list<Proj> kinds) {
    if (lora_) for (Proj k : kinds) if (lora_->targets(layer, k)) return true;
    return false;
  };
  auto lora_add = [&](Proj kind, const float* in, float* out) {
    if (lora_ && lora_->targets(layer, kind)) lora_->apply(ctx_, layer, kind, in, T, out);
  };

  // Attention block. a = RMSNorm(x) quantized once for q, k, v (§5).
  rmsnorm_quantize(ctx_, xq_, xs_, x_, L.input_norm, T, D, eps);
  const bool lora_qkv = lora_on({Proj::Q, Proj::K, Proj::V});
  if (lora_qkv) rmsnorm(ctx_, lx, x_, L.input_norm, T, D, eps);
  lap(other);
  ternary_matmul(ctx_, q_, xq_, xs_, L.q, T);  // q (T, H·d)
  ternary_matmul(ctx_, k_, xq_, xs_, L.k, T);  // k (T, K·d)
  ternary_matmul(ctx_, v_, xq_, xs_, L.v, T);  // v (T, K·d)
  if (lora_qkv) {
    lora_add(Proj::Q, lx, q_);
    lora_add(Proj::K, lx, k_);
    lora_add(Proj::V, lx, v_);
  }
  lap(mm);
  if (c.qk_norm) {
    rmsnorm(ctx_, q_, q_, L.q_norm, T * H, d, eps);
    rmsnorm(ctx_, k_, k_, L.k_norm, T * K, d, eps);
  }
  const int64_t half = d / 2;
  const float* cosv = rope_.as<float>().data();
  const float* sinv = cosv + options_.context * half;
  rope_apply(ctx_, q_, cosv + pos_ * half, sinv + pos_ * half, T, H, d);
  rope_apply(ctx_, k_, cosv + pos_ * half, sinv + pos_ * half, T, K, d);
  cache_.write(layer, pos_, T, k_, v_);
  lap(other);
  attention_forward(ctx_, o_, q_, cache_, layer, pos_, T, c);  // o (T, H·d)
  lap(timings_.attention_s);
  if (c.sub_norm) {
    rmsnorm_quantize(ctx_, xq_, xs_, o_, L.attn_sub_norm, T, HD, eps);
  } else {
    quantize_activations(ctx_, xq_, xs_, o_, T, HD);
  }
  const float* lora_o_in = o_;
  if (c.sub_norm && lora_on({Proj::O})) {
    rmsnorm(ctx_, lx, o_, L.attn_sub_norm, T, HD, eps);
    lora_o_in = lx;
  }
  lap(other);
  ternary_matmul(ctx_, y_, xq_, xs_, L.o, T);  // y (T, D)
  lora_add(Proj::O, lora_o_in, y_);
  lap(mm);
  if (L.post_attn_norm) rmsnorm(ctx_, y_, y_, L.post_attn_norm, T, D, eps);
  for (int64_t i = 0; i < T * D; ++i) x_[i] += y_[i];  // h = x + y

  // MLP block.
  rmsnorm_quantize(ctx_, xq_, xs_, x_, L.pre_ff_norm, T, D, eps);
  const bool lora_ff = lora_on({Proj::Gate, Proj::Up});
  if (lora_ff) rmsnorm(ctx_, lx, x_, L.pre_ff_norm, T, D, eps);
  lap(other);
  ternary_matmul(ctx_, u_, xq_, xs_, L.up, T);  // u (T, F)
  if (c.gated_mlp()) ternary_matmul(ctx_, g_, xq_, xs_, L.gate, T);  // gt (T, F)
  if (lora_ff) {
    lora_add(Proj::Up, lx, u_);
    if (c.gated_mlp()) lora_add(Proj::Gate, lx, g_);
  }
  lap(mm);
  if (c.gated_mlp()) {
    relu2_glu(ctx_, u_, g_, u_, T * F);  // s = relu(gt)² ⊙ u
  } else {
    relu2(ctx_, u_, u_, T * F);  // s = relu(u)²
  }
  if (c.sub_norm) {
    rmsnorm_quantize(ctx_, xq_, xs_, u_, L.ffn_sub_norm, T, F, eps);
  } else {
    quantize_activations(ctx_, xq_, xs_, u_, T, F);
  }
  const float* lora_down_in = u_;
  if (c.sub_norm && lora_on({Proj::Down})) {
    rmsnorm(ctx_, lx, u_, L.ffn_sub_norm, T, F, eps);
    lora_down_in = lx;
  }
  lap(other);
  ternary_matmul(ctx_, y_, xq_, xs_, L.down, T);  // f (T, D)
  lora_add(Proj::Down, lora_down_in, y_);
  lap(mm);
  if (L.post_ff_norm) rmsnorm(ctx_, y_, y_, L.post_ff_norm, T, D, eps);
  for (int64_t i = 0; i < T * D; ++i) x_[i] += y_[i];  // out = h + f
  lap(other);
}

EngineOptions resolve_engine_options(const TritterConfig& c, EngineOptions o) {
  if (o.context == 0) o.context = std::min<int64_t>(c.max_position_embeddings, 4096);
  if (o.context < 1 || o.context > c.max_position_embeddings) {
    throw_error("engine: context ", o.context, ", expected 1 .. ", c.max_position_embeddings,
                " (the model's max_position_embeddings)");
  }
  if (o.max_batch < 1) throw_error("engine: max batch ", o.max_batch, ", expected at least 1");
  o.max_batch = std::min(o.max_batch, o.context);
  return o;
}

}  // namespace tritter
