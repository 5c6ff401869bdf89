#include "infer/engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <memory>

#include "core/error.h"
#include "infer/engine_sizes.h"
#include "infer/lora_apply.h"
#include "kernels/knn.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

size_t engine_views(uint8_t* base, const TritterConfig& c, int64_t B, EngineViews& v) {
  const int64_t D = c.hidden_size, F = c.intermediate_size, Hd = c.q_dim(), Kd = c.kv_dim();
  const int64_t widest = std::max({D, Hd, F});
  size_t off = 0;
  auto take = [&](int64_t bytes) {
    uint8_t* p = base ? base + off : nullptr;
    off += (static_cast<size_t>(bytes) + 63) & ~size_t{63};
    return p;
  };
  auto f32 = [&](int64_t n) { return reinterpret_cast<float*>(take(n * 4)); };
  v.x = f32(B * D);
  BlockActs& A = v.acts;
  A.x = A.h = v.x;  // in place: h = x + y, out = h + f
  A.q = A.qraw = f32(B * Hd);
  A.k = A.kraw = f32(B * Kd);
  A.v = f32(B * Kd);
  A.att = f32(B * Hd);
  A.y = A.f = v.scratch.tmp_d = f32(B * D);
  A.u = A.spre = v.scratch.act = f32(B * F);
  A.gt = f32(B * F);
  BitInput in;  // one quantized input for every projection (nothing is kept for a backward)
  in.s = f32(B);
  in.q = reinterpret_cast<int8_t*>(take(B * widest));
  A.a = A.o = A.m = A.s = in;
  v.hq = in.q;  // the head quantizes the final norm's output into the same buffer
  v.hs = in.s;
  v.normed = A.u;  // the final norm's output (B, D) reuses the MLP buffer (F ≥ D is not assumed: see below)
  if (F < D) v.normed = f32(B * D);
  return off;
}

// The size function of engine_sizes.h: the same carve the constructor binds.
size_t engine_scratch_bytes(const TritterConfig& c, const EngineOptions& resolved) {
  EngineViews v;
  return engine_views(nullptr, c, resolved.max_batch, v);
}

Engine::Engine(Context& ctx, const ModelWeights& weights, const EngineOptions& options)
    : Engine(ctx, std::make_unique<ResidentWeights>(weights), options) {}

Engine::Engine(Context& ctx, std::unique_ptr<WeightSource> owned, const EngineOptions& options)
    : Engine(ctx, *owned, options) {
  owned_ = std::move(owned);
}

Engine::Engine(Context& ctx, WeightSource& source, const EngineOptions& options)
    : ctx_(ctx),
      source_(source),
      c_(source.weights().config),
      options_(resolve_engine_options(c_, options)),
      cache_(c_, options_.context, options_.kv_dtype, options_.max_batch, &ctx.memory),
      timed_(ctx.log_level >= LogLevel::Verbose) {
  const TritterConfig& c = c_;
  mask_ = AttnMask::causal(c.sliding_window);
  if (!c.quant) throw_error("engine: quant=false models are not supported (no packed form)");
  const int64_t d = c.head_dim, half = d / 2;
  MemoryAccount* account = &ctx.memory;
  rope_ = Buffer(engine_rope_bytes(c, options_), MemCategory::Activations, account);
  float* cosv = rope_.as<float>().data();
  rope_tables(cosv, cosv + options_.context * half, options_.context, d, c.rope_theta, 0, c.rope_scaling,
              c.max_position_embeddings, options_.context);

  scratch_ = Buffer(engine_scratch_bytes(c, options_), MemCategory::Activations, account);
  engine_views(static_cast<uint8_t*>(scratch_.data()), c, options_.max_batch, v_);
}

EngineTimings Engine::timings() const {
  EngineTimings t;
  t.matmul_s = times_.of(Op::BitFwd) + times_.of(Op::Lora);
  t.attention_s = times_.of(Op::AttnFwd);
  t.head_s = times_.of(Op::Head);
  double all = 0;
  for (double s : times_.seconds) all += s;
  t.other_s = all - t.matmul_s - t.attention_s - t.head_s;
  return t;
}

void Engine::set_lora(const LoraSet* lora) {
  lora_ = lora && !lora->empty() ? lora : nullptr;
  if (lora_ && !lora_x_.bytes()) {
    lora_x_ = Buffer(engine_lora_bytes(c_, options_), MemCategory::Activations, &ctx_.memory);
  }
  v_.scratch.fp = lora_ ? lora_x_.as<float>().data() : nullptr;
}

void Engine::knn_exit(int32_t* ids, float* scores, int64_t k) {
  const TritterConfig& c = c_;
  const HeadWeights& head = source_.weights().head;
  if (!c.cosine_head() || !(head.cos_scale > 0.0f) || (!head.f32 && !head.i8 && !head.q4)) {
    throw_error("engine: the KNN exit needs a resident cosine-head model (head_type cosine_tied); found head_type ",
                head_type_name(c.head_type));
  }
  TRITTER_CHECK(last_T_ > 0, "knn_exit before forward");
  const int64_t D = c.hidden_size;
  OpTimer timer(timed_ ? &times_ : nullptr, Op::Head);
  rmsnorm(ctx_, v_.normed, v_.x + (last_T_ - 1) * D, source_.final_norm(), 1, D, static_cast<float>(c.rms_norm_eps));
  knn_topk(ctx_, ids, scores, v_.normed, 1, head, c.vocab_size, D, k);
}

void Engine::reset() {
  pos_ = 0;
  cache_.clear();
}

void Engine::fill_cache(int64_t n, uint64_t seed) {
  if (n < 0 || pos_ + n > options_.context) {
    throw_error("engine: filling ", n, " positions after ", pos_, " exceeds the context of ", options_.context);
  }
  cache_.append_random(n, seed);
  pos_ += n;
}

void Engine::forward(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  const TritterConfig& c = c_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  check_input(tokens);
  for (int64_t start = 0; start < n; start += options_.max_batch) {
    const int64_t T = std::min(options_.max_batch, n - start);
    const bool last = start + T == n;
    float* out = all_logits ? logits + start * c.vocab_size : (last ? logits : nullptr);
    forward_chunk(tokens.data() + start, T, out, all_logits);
  }
}

void Engine::forward_embeddings(std::span<const float> x, float* logits, bool all_logits) {
  const TritterConfig& c = c_;
  const int64_t D = c.hidden_size, n = static_cast<int64_t>(x.size()) / D;
  if (n < 1 || static_cast<int64_t>(x.size()) != n * D) {
    throw_error("engine: input vectors hold ", x.size(), " floats, expected a positive multiple of hidden_size ", D);
  }
  check_positions(n);
  for (int64_t start = 0; start < n; start += options_.max_batch) {
    const int64_t T = std::min(options_.max_batch, n - start);
    const bool last = start + T == n;
    float* out = all_logits ? logits + start * c.vocab_size : (last ? logits : nullptr);
    {
      OpTimer timer(timed_ ? &times_ : nullptr, Op::Elementwise);
      std::memcpy(v_.x, x.data() + start * D, static_cast<size_t>(T * D) * sizeof(float));
    }
    run_chunk(T, out, all_logits);
  }
}

void Engine::last_hidden(std::span<float> out) {
  const int64_t D = c_.hidden_size;
  if (last_T_ < 1) throw_error("engine: last_hidden before any forward");
  if (static_cast<int64_t>(out.size()) != D) throw_error("engine: last_hidden into ", out.size(), " floats, expected ", D);
  rmsnorm(ctx_, out.data(), v_.x + (last_T_ - 1) * D, source_.final_norm(), 1, D, static_cast<float>(c_.rms_norm_eps));
}

void Engine::check_positions(int64_t n) const {
  if (n < 1) throw_error("engine: no tokens to run (an empty prompt?)");
  if (pos_ + n > options_.context) {
    throw_error("engine: context full: ", pos_, " positions used + ", n, " new tokens exceed the context of ",
                options_.context, " (raise --ctx, at most max_position_embeddings = ", c_.max_position_embeddings, ")");
  }
  if (mask_.kind == AttnMask::Kind::Bidirectional && (pos_ > 0 || n > options_.max_batch)) {
    throw_error("engine: a bidirectional mask needs the whole sequence in one first forward of at most ",
                options_.max_batch, " tokens (found ", n, " tokens at position ", pos_, ")");
  }
  if (mask_.kind == AttnMask::Kind::Prefix && pos_ < mask_.prefix &&
      (pos_ > 0 || n < mask_.prefix || mask_.prefix > options_.max_batch)) {
    throw_error("engine: prefix_lm(", mask_.prefix, ") needs the prefix prefilled in one first forward chunk (found ",
                n, " tokens at position ", pos_, ", chunks of ", options_.max_batch, ")");
  }
}

void Engine::check_input(std::span<const int32_t> tokens) const {
  const TritterConfig& c = c_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  check_positions(n);
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      throw_error("engine: token ", i, ": id ", tokens[i], ", expected 0 .. ", c.vocab_size - 1);
    }
  }
}

namespace {
// Releases a held layer group also when the layer computation throws.
struct HeldGroup {
  WeightSource& source;
  LayerGroup group;
  ~HeldGroup() { source.release_layers(group); }
};
}  // namespace

void Engine::forward_chunk(const int32_t* tokens, int64_t T, float* logits, bool all_logits) {
  {
    OpTimer timer(timed_ ? &times_ : nullptr, Op::Elementwise);
    source_.embed_rows(tokens, T, v_.x);
  }
  run_chunk(T, logits, all_logits);
}

void Engine::run_chunk(int64_t T, float* logits, bool all_logits) {
  const TritterConfig& c = c_;
  const int64_t D = c.hidden_size;
  for (int l = 0; l < c.num_hidden_layers;) {
    const HeldGroup held{source_, source_.acquire_layers(l, logits != nullptr)};
    const LayerGroup& g = held.group;
    TRITTER_CHECK(g.first <= l && l < g.first + g.count, "weight source: layer ", l, " not in group ", g.first,
                  " + ", g.count);
    for (int i = l - g.first; i < g.count; ++i) layer_forward(g.layers[i], g.first + i, T);
    l = g.first + g.count;
  }
  pos_ += T;
  last_T_ = T;
  if (!logits) return;
  OpTimer timer(timed_ ? &times_ : nullptr, Op::Head);
  const int64_t r0 = all_logits ? 0 : T - 1, rows = T - r0;
  rmsnorm(ctx_, v_.normed, v_.x + r0 * D, source_.final_norm(), rows, D, static_cast<float>(c.rms_norm_eps));
  source_.head_forward(ctx_, logits, v_.normed, rows, v_.hq, v_.hs);
}

void Engine::layer_forward(const LayerWeights& L, int layer, int64_t T) {
  const TritterConfig& c = c_;
  const int64_t half = c.head_dim / 2;
  BlockRun run{ctx_, c};
  run.layer = layer;
  run.T = T;
  run.kv = &cache_;
  run.pos0 = pos_;
  run.mask = mask_;
  run.rope_cos = rope_.as<float>().data();
  run.rope_sin = run.rope_cos + options_.context * half;
  run.lora = lora_;
  run.times = timed_ ? &times_ : nullptr;
  block_forward(run, block_weights(L), v_.acts, v_.x, v_.scratch);
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
