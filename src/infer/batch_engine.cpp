// The batched engine (infer/batch_engine.h): slots of KV caches over one weight set; prefill per slot, decode as
// one forward of B rows.
#include "infer/batch_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "infer/embed_pool.h"
#include "infer/engine_sizes.h"
#include "infer/lora_apply.h"
#include "kernels/ops.h"

namespace tritter {

namespace {
// The engine options of the shared buffers: max_batch = the rows one forward holds (a prefill chunk, or a step of
// every slot's token plus a chunk of prompt tokens).
EngineOptions engine_options(const TritterConfig& c, const BatchEngineOptions& o) {
  EngineOptions e;
  e.context = o.context;
  e.kv_dtype = o.kv_dtype;
  e.max_batch = o.max_batch;
  e = resolve_engine_options(c, e);
  e.max_batch += o.slots;
  return e;
}
int64_t chunk_of(const TritterConfig& c, const BatchEngineOptions& o) {
  return engine_options(c, o).max_batch - o.slots;  // the prefill chunk, ≤ context
}

// Input and output widths of projection p (x (N, I) → y (N, O)).
std::pair<int64_t, int64_t> proj_dims(const TritterConfig& c, int proj) {
  const int64_t D = c.hidden_size, F = c.intermediate_size;
  switch (static_cast<Proj>(proj)) {
    case Proj::Q: return {D, c.q_dim()};
    case Proj::K:
    case Proj::V: return {D, c.kv_dim()};
    case Proj::O: return {c.q_dim(), D};
    case Proj::Gate:
    case Proj::Up: return {D, F};
    case Proj::Down: break;
  }
  return {F, D};
}

// The LoRA hook of one forward: every row gets the base adapters (over all rows at once), then each run of
// consecutive rows with the same set gets that set's delta. Rows are independent in the delta (kernels/lora.h),
// so a row's sum is the single Engine's with base + set in that order.
class RowAdapters final : public LoraHook {
 public:
  RowAdapters(const TritterConfig& c, const LoraSet* base, const std::vector<const LoraSet*>& sets,
              const int* row_set, int64_t N)
      : c_(c), base_(base), sets_(sets), row_set_(row_set), N_(N) {
    for (int64_t b = 0; b < N; ++b) {
      const int s = row_set[b];
      if (s >= 0 && std::find(used_.begin(), used_.end(), s) == used_.end()) used_.push_back(s);
    }
  }
  bool any() const { return base_ || !used_.empty(); }
  bool targets(int layer, int proj) const override {
    if (base_ && base_->targets(layer, static_cast<Proj>(proj))) return true;
    for (int s : used_) {
      if (sets_[static_cast<size_t>(s)]->targets(layer, static_cast<Proj>(proj))) return true;
    }
    return false;
  }
  void forward(const Context& ctx, int layer, int proj, const float* x, int64_t N, float* y) const override {
    TRITTER_CHECK(N == N_, "lora rows ", N, ", expected ", N_);
    const Proj p = static_cast<Proj>(proj);
    if (base_ && base_->targets(layer, p)) base_->apply(ctx, layer, p, x, N, y);
    if (used_.empty()) return;
    const auto [I, O] = proj_dims(c_, proj);
    for (int64_t b = 0; b < N;) {
      int64_t e = b + 1;
      while (e < N && row_set_[e] == row_set_[b]) ++e;
      const int s = row_set_[b];
      if (s >= 0 && sets_[static_cast<size_t>(s)]->targets(layer, p)) {
        sets_[static_cast<size_t>(s)]->apply(ctx, layer, p, x + b * I, e - b, y + b * O);
      }
      b = e;
    }
  }

 private:
  const TritterConfig& c_;
  const LoraSet* base_;
  const std::vector<const LoraSet*>& sets_;
  const int* row_set_;
  int64_t N_;
  std::vector<int> used_;
};
}  // namespace

size_t batch_engine_bytes(const TritterConfig& c, const BatchEngineOptions& o) {
  const EngineOptions e = engine_options(c, o);
  return static_cast<size_t>(o.slots) * kv_cache_bytes(c, e.context, e.kv_dtype, chunk_of(c, o)) +
         engine_buffer_bytes(c, e);
}

BatchEngine::BatchEngine(Context& ctx, const ModelWeights& weights, const BatchEngineOptions& options)
    : ctx_(ctx), source_(weights), c_(weights.config), options_(options),
      timed_(ctx.log_level >= LogLevel::Verbose) {
  if (options.slots < 1) throw_error("batch engine: slots ", options.slots, ", expected at least 1");
  if (!c_.quant) throw_error("batch engine: quant=false models are not supported (no packed form)");
  const EngineOptions e = engine_options(c_, options);
  options_.context = e.context;
  options_.max_batch = chunk_of(c_, options);
  rows_ = e.max_batch;
  for (int s = 0; s < options.slots; ++s) {
    // A slot's cache takes writes of a prefill chunk (max_batch) or one decode token.
    caches_.push_back(std::make_unique<KvCache>(c_, e.context, e.kv_dtype, options_.max_batch, &ctx.memory));
  }
  pos_.assign(static_cast<size_t>(options.slots), 0);
  const int64_t half = c_.head_dim / 2;
  rope_ = Buffer(engine_rope_bytes(c_, e), MemCategory::Activations, &ctx.memory);
  float* cosv = rope_.as<float>().data();
  rope_tables(cosv, cosv + e.context * half, e.context, c_.head_dim, c_.rope_theta, 0, c_.rope_scaling,
              c_.max_position_embeddings, e.context);
  scratch_ = Buffer(engine_scratch_bytes(c_, e), MemCategory::Activations, &ctx.memory);
  engine_views(static_cast<uint8_t*>(scratch_.data()), c_, e.max_batch, v_);
  slot_set_.assign(static_cast<size_t>(options.slots), -1);
}

void BatchEngine::ensure_lora_buffer() {
  if (!lora_x_.bytes()) {
    const EngineOptions e{.context = options_.context, .kv_dtype = options_.kv_dtype, .max_batch = rows_};
    lora_x_ = Buffer(engine_lora_bytes(c_, e), MemCategory::Activations, &ctx_.memory);  // a step's rows
  }
  v_.scratch.fp = lora_x_.as<float>().data();
}

void BatchEngine::set_lora(const LoraSet* lora) {
  lora_ = lora && !lora->empty() ? lora : nullptr;
  if (lora_) ensure_lora_buffer();
}

int BatchEngine::add_adapter(const LoraSet* set) {
  TRITTER_CHECK(set != nullptr, "add_adapter: null set");
  sets_.push_back(set);
  ensure_lora_buffer();
  return static_cast<int>(sets_.size()) - 1;
}

void BatchEngine::set_slot_adapter(int slot, int adapter) {
  if (slot < 0 || slot >= slots()) throw_error("batch engine: slot ", slot, ", expected 0 .. ", slots() - 1);
  if (adapter < -1 || adapter >= adapters()) {
    throw_error("batch engine: adapter ", adapter, ", expected -1 .. ", adapters() - 1);
  }
  int& current = slot_set_[static_cast<size_t>(slot)];
  if (current == adapter) return;
  current = adapter;
  reset(slot);
}

int64_t BatchEngine::copy_prefix(int from, int to, int64_t n) {
  for (int s : {from, to}) {
    if (s < 0 || s >= slots()) throw_error("batch engine: slot ", s, ", expected 0 .. ", slots() - 1);
  }
  if (from == to) return truncate(to, n);
  if (slot_set_[static_cast<size_t>(from)] != slot_set_[static_cast<size_t>(to)]) return 0;
  const int64_t m = caches_[static_cast<size_t>(to)]->copy_prefix(*caches_[static_cast<size_t>(from)],
                                                                   std::min(n, pos_[static_cast<size_t>(from)]));
  pos_[static_cast<size_t>(to)] = m;
  return m;
}

void BatchEngine::reset(int slot) {
  caches_.at(static_cast<size_t>(slot))->clear();
  pos_[static_cast<size_t>(slot)] = 0;
}

int64_t BatchEngine::truncate(int slot, int64_t n) {
  const int64_t kept = caches_.at(static_cast<size_t>(slot))->truncate(std::min(n, pos_[static_cast<size_t>(slot)]));
  pos_[static_cast<size_t>(slot)] = kept;
  return kept;
}

void BatchEngine::check(int slot, int64_t n, const int32_t* tokens) const {
  if (slot < 0 || slot >= slots()) throw_error("batch engine: slot ", slot, ", expected 0 .. ", slots() - 1);
  if (n < 1) throw_error("batch engine: no tokens to run (an empty prompt?)");
  const int64_t pos = pos_[static_cast<size_t>(slot)];
  if (pos + n > options_.context) {
    throw_error("batch engine: context full: ", pos, " positions used + ", n, " new tokens exceed the context of ",
                options_.context);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c_.vocab_size) {
      throw_error("batch engine: token ", i, ": id ", tokens[i], ", expected 0 .. ", c_.vocab_size - 1);
    }
  }
}

void BatchEngine::layers(int64_t N, int slot, KvStore* const* kvs, const int64_t* positions, const int* row_set) {
  const int64_t half = c_.head_dim / 2;
  if (!row_set) {  // a prefill of one slot: its set on every row
    row_set_.assign(static_cast<size_t>(N), slot_set_[static_cast<size_t>(slot)]);
    row_set = row_set_.data();
  }
  const RowAdapters adapters(c_, lora_, sets_, row_set, N);
  const LayerGroup g = source_.acquire_layers(0, true);
  for (int l = 0; l < g.count; ++l) {
    BlockRun run{ctx_, c_};
    run.layer = g.first + l;
    run.mask = AttnMask::causal(c_.sliding_window);
    run.rope_cos = rope_.as<float>().data();
    run.rope_sin = run.rope_cos + options_.context * half;
    run.lora = adapters.any() ? &adapters : nullptr;
    run.times = timed_ ? &times_ : nullptr;
    if (kvs) {
      run.B = N;
      run.kvs = kvs;
      run.positions = positions;
    } else {
      run.T = N;
      run.kv = caches_[static_cast<size_t>(slot)].get();
      run.pos0 = pos_[static_cast<size_t>(slot)];
    }
    block_forward(run, block_weights(g.layers[l]), v_.acts, v_.x, v_.scratch);
  }
  source_.release_layers(g);
}

void BatchEngine::prefill(int slot, std::span<const int32_t> tokens, float* logits) {
  const int64_t n = static_cast<int64_t>(tokens.size()), D = c_.hidden_size;
  check(slot, n, tokens.data());
  for (int64_t start = 0; start < n; start += options_.max_batch) {
    const int64_t T = std::min(options_.max_batch, n - start);
    source_.embed_rows(tokens.data() + start, T, v_.x);
    layers(T, slot, nullptr, nullptr, nullptr);
    pos_[static_cast<size_t>(slot)] += T;
    if (logits && start + T == n) {
      rmsnorm(ctx_, v_.normed, v_.x + (T - 1) * D, source_.final_norm(), 1, D, static_cast<float>(c_.rms_norm_eps));
      source_.head_forward(ctx_, logits, v_.normed, 1, v_.hq, v_.hs);
    }
  }
}

void BatchEngine::step(std::span<const int> slots, std::span<const int32_t> tokens, const uint8_t* want,
                       float* logits) {
  const int64_t B = static_cast<int64_t>(slots.size()), D = c_.hidden_size;
  TRITTER_CHECK(B >= 1 && tokens.size() == slots.size(), "step: ", B, " slots, ", tokens.size(), " tokens");
  if (B > rows_) throw_error("batch engine: a step of ", B, " rows, expected at most ", rows_);
  kv_rows_.resize(static_cast<size_t>(B));
  positions_.resize(static_cast<size_t>(B));
  row_set_.resize(static_cast<size_t>(B));
  step_pos_ = pos_;  // each row takes its slot's next position
  for (int64_t b = 0; b < B; ++b) {
    const int s = slots[static_cast<size_t>(b)];
    if (s < 0 || s >= this->slots()) throw_error("batch engine: slot ", s, ", expected 0 .. ", this->slots() - 1);
    const int32_t t = tokens[static_cast<size_t>(b)];
    if (t < 0 || t >= c_.vocab_size) throw_error("batch engine: token ", b, ": id ", t, ", expected 0 .. ", c_.vocab_size - 1);
    int64_t& p = step_pos_[static_cast<size_t>(s)];
    if (p >= options_.context) {
      throw_error("batch engine: context full: slot ", s, " holds ", p, " positions of ", options_.context);
    }
    kv_rows_[static_cast<size_t>(b)] = caches_[static_cast<size_t>(s)].get();
    positions_[static_cast<size_t>(b)] = p++;
    row_set_[static_cast<size_t>(b)] = slot_set_[static_cast<size_t>(s)];
  }
  source_.embed_rows(tokens.data(), B, v_.x);
  layers(B, -1, kv_rows_.data(), positions_.data(), row_set_.data());
  pos_ = step_pos_;
  OpTimer timer(timed_ ? &times_ : nullptr, Op::Head);
  rmsnorm(ctx_, v_.normed, v_.x, source_.final_norm(), B, D, static_cast<float>(c_.rms_norm_eps));
  int64_t rows = B;
  if (want) {  // the head only for the rows that need logits, packed in order
    rows = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (!want[b]) continue;
      if (rows != b) std::memmove(v_.normed + rows * D, v_.normed + b * D, static_cast<size_t>(D) * sizeof(float));
      ++rows;
    }
  }
  if (rows > 0) source_.head_forward(ctx_, logits, v_.normed, rows, v_.hq, v_.hs);
}

std::vector<float> BatchEngine::embed(int slot, std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size()), D = c_.hidden_size;
  reset(slot);
  check(slot, n, tokens.data());
  EmbeddingPool pool(D);  // the pooling Session::embed uses (infer/embed_pool.h)
  for (int64_t start = 0; start < n; start += options_.max_batch) {
    const int64_t T = std::min(options_.max_batch, n - start);
    source_.embed_rows(tokens.data() + start, T, v_.x);
    layers(T, slot, nullptr, nullptr, nullptr);
    pos_[static_cast<size_t>(slot)] += T;
    rmsnorm(ctx_, v_.normed, v_.x, source_.final_norm(), T, D, static_cast<float>(c_.rms_norm_eps));
    pool.add(v_.normed, T);
  }
  reset(slot);
  return pool.finish();
}

}  // namespace tritter
