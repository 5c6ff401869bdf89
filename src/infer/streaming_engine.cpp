#include "infer/streaming_engine.h"

#include <algorithm>
#include <chrono>
#include <sstream>

#include "core/buffer.h"
#include "core/error.h"
#include "infer/engine_sizes.h"
#include "infer/kv_cache.h"
#include "kernels/head.h"
#include "model/tensor_table.h"

namespace tritter {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }


// Slot bytes of `rows` head rows (PackedFileLayout::head_chunk_bytes from the config).
int64_t head_chunk_bytes(const TritterConfig& c, HeadFormat head, int64_t rows) {
  return head_piece_bytes(head, rows, c.hidden_size);
}

// Releases a held piece also when the layer computation throws.
struct Held {
  LayerLoader& loader;
  int piece;
  ~Held() { loader.release(piece); }
};

}  // namespace

int64_t streamed_group_bytes(const TritterConfig& c, int l0, int l1, TernaryLayout layout) {
  int64_t n = 0;
  for (const TensorInfo& t : tensor_table(c)) {
    if (t.layer < l0 || t.layer >= l1) continue;
    if (t.role == TensorRole::BitLinear) n += align64(ternary_matrix_bytes(t.shape[0], t.shape[1], layout)) + align64(4);
    if (t.role == TensorRole::Norm) n += align64(4 * t.numel());
  }
  return n;
}

StreamingPlan plan_streaming(const TritterConfig& c, HeadFormat head, const EngineOptions& e, int64_t budget,
                             int group, bool prefetch, TernaryLayout layout) {
  const int L = c.num_hidden_layers;
  if (group < 0 || group > L) {
    throw_error("--layer-group-size: found ", group, ", expected 1 .. ", L, " (the model's layers), or 0 to choose from the budget");
  }
  const int64_t D = c.hidden_size, B = e.max_batch, V = c.vocab_size;
  StreamingPlan p;
  p.budget = budget;
  p.kv_cache = static_cast<int64_t>(kv_cache_bytes(c, e.context, e.kv_dtype, B));
  p.engine_buffers = static_cast<int64_t>(engine_buffer_bytes(c, e));
  p.resident = D * 4 + B * D * 4 + B * D + B * 4;  // final norm, the head's input, int8 levels and scales
  p.slots = prefetch ? 2 : 1;
  const int64_t first = p.kv_cache + p.engine_buffers;
  if (first > budget) {
    p.problem = budget_shortfall(first, std::string("the KV cache (") + kv_dtype_name(e.kv_dtype) + ", " +
                                            std::to_string(e.context) + " positions: " +
                                            format_bytes(static_cast<double>(p.kv_cache)) + ") and the engine's activations",
                                 budget, 0);
    return p;
  }
  if (first + p.resident > budget) {
    p.problem = budget_shortfall(p.resident, "the final norm and the head's scratch", budget, first);
    return p;
  }
  const int64_t left = budget - first - p.resident;
  int g = group;
  if (g == 0) {  // the largest group (the first is as large as any) whose buffers fit
    g = 1;
    for (int n = L; n >= 1; --n) {
      if (p.slots * streamed_group_bytes(c, 0, n, layout) <= left) {
        g = n;
        break;
      }
    }
  }
  const int64_t gb = streamed_group_bytes(c, 0, g, layout);
  const int64_t row_bytes = head_stored_row_bytes(head, D);
  int64_t rows = std::clamp<int64_t>(gb / row_bytes, 1, V);
  while (rows > 1 && head_chunk_bytes(c, head, rows) > gb) --rows;
  p.layer_group_size = g;
  p.groups = (L + g - 1) / g;
  p.head_rows = rows;
  p.head_chunks = (V + rows - 1) / rows;
  p.slot_bytes = std::max(gb, head_chunk_bytes(c, head, rows));
  if (p.slots * p.slot_bytes > left) {
    p.problem = budget_shortfall(p.slots * p.slot_bytes,
                                 "layer group 0-" + std::to_string(g - 1) +
                                     (p.slots == 2 ? " (2 buffers: active + prefetch)" : " (1 buffer, no prefetch)"),
                                 budget, first + p.resident);
    return p;
  }
  p.fits = true;
  return p;
}

StreamedWeights::StreamedWeights(Context& ctx, const std::filesystem::path& path, const StreamingOptions& o)
    : layout_(path), memory_(o.memory_budget, ctx.memory) {
  const TritterConfig& c = layout_.config();
  engine_options_ = resolve_engine_options(c, o.engine);
  shell_.config = c;
  shell_.head.format = layout_.head_format();
  shell_.bytes_per_token = layout_.layers_bytes() + layout_.head_chunk_bytes(c.vocab_size) + 4 * c.hidden_size;
  plan_ = plan_streaming(c, layout_.head_format(), engine_options_, memory_.budget(), o.layer_group_size, o.prefetch,
                         layout_.qweight_layout());
  if (!plan_.fits) throw Error(plan_.problem);
  const EngineOptions& e = engine_options_;
  // The Engine allocates the cache and its buffers after this source: both are checked now, before anything.
  memory_.require(plan_.kv_cache + plan_.engine_buffers,
                  std::string("the KV cache (") + kv_dtype_name(e.kv_dtype) + ") and the engine's activations");
  memory_.require(plan_.total(), "the streaming plan (KV cache, activations, final norm, layer buffers)");
  const int64_t D = c.hidden_size;
  final_norm_ = memory_.allocate(D * sizeof(float), MemCategory::Weights, "the final norm");
  const int g = plan_.layer_group_size;
  const int64_t planned = streamed_group_bytes(c, 0, g, layout_.qweight_layout());
  TRITTER_CHECK(static_cast<int64_t>(layout_.group_bytes(0, g)) == planned, "layout of ", g, " layers: ",
                layout_.group_bytes(0, g), " bytes, planned ", planned);
  loader_ = std::make_unique<LayerLoader>(layout_, layout_.pieces(g, plan_.head_rows), o.prefetch, memory_);
  TRITTER_CHECK(static_cast<int64_t>(loader_->slot_bytes()) == plan_.slot_bytes, loader_->slot_bytes(), " vs ",
                plan_.slot_bytes);
  loader_->read_range(layout_.final_norm_offset(), D * sizeof(float), final_norm_.data());
}

void StreamedWeights::embed_rows(const int32_t* tokens, int64_t T, float* out) {
  const auto t0 = Clock::now();
  const int64_t D = shell_.config.hidden_size;
  for (int64_t t = 0; t < T; ++t) loader_->read_embedding_row(tokens[t], out + t * D);
  embed_s_ += seconds_since(t0);
}

LayerGroup StreamedWeights::acquire_layers(int l, bool head_next) {
  const int G = plan_.groups, g = l / plan_.layer_group_size;
  const int next = g + 1 < G ? g + 1 : (head_next ? G : 0);  // after the last group: the head, or the next chunk
  const LoadedPiece& piece = loader_->acquire(g, next);
  return {piece.layers.data(), piece.layout->layer0, static_cast<int>(piece.layers.size())};
}

void StreamedWeights::release_layers(const LayerGroup& group) {
  loader_->release(group.first / plan_.layer_group_size);
}

void StreamedWeights::head_forward(const Context& ctx, float* logits, const float* h, int64_t rows, int8_t* hq,
                                   float* hs) {
  const auto t0 = Clock::now();
  const TritterConfig& c = shell_.config;
  const int64_t D = c.hidden_size, V = c.vocab_size;
  const int G = plan_.groups, P = loader_->piece_count();
  for (int p = G; p < P; ++p) {
    const LoadedPiece& piece = loader_->acquire(p, p + 1 < P ? p + 1 : 0);  // then group 0 of the next step
    Held held{*loader_, p};
    const int64_t v0 = piece.layout->row0, Vc = piece.layout->row1 - v0;
    for (int64_t r = 0; r < rows; ++r) {  // one row at a time: the output is strided by V
      lm_head_forward(ctx, logits + r * V + v0, h + r * D, 1, piece.head, Vc, D, hq, hs);
    }
  }
  head_s_ += seconds_since(t0);
}

StreamingEngine::StreamingEngine(Context& ctx, const std::filesystem::path& path, const StreamingOptions& options)
    : weights_(ctx, path, options), engine_(ctx, weights_, weights_.engine_options()) {}

std::string StreamedWeights::report() const {
  const LoaderStats s = loader_->stats();
  std::ostringstream o;
  o << "streaming: groups of " << plan_.layer_group_size << " layers (" << plan_.groups << " groups), head in "
    << plan_.head_chunks << " chunks of " << plan_.head_rows << " rows, " << plan_.slots << " buffer"
    << (plan_.slots > 1 ? "s" : "") << " of " << format_bytes(static_cast<double>(plan_.slot_bytes))
    << (plan_.slots > 1 ? " (prefetch on)" : " (prefetch off)") << "\n";
  o << "memory: " << memory_.report() << "\n";
  const double overlap = s.read_s > 0 ? std::clamp(1.0 - s.wait_s / s.read_s, 0.0, 1.0) : 0.0;
  char line[256];
  std::snprintf(line, sizeof line,
                "io: %s read in %lld loads (%lld ready before needed), read %.3f s, compute waited %.3f s "
                "(overlap %.0f%%), embedding rows %.3f s, head %.3f s\n",
                format_bytes(static_cast<double>(s.bytes_read)).c_str(), static_cast<long long>(s.loads),
                static_cast<long long>(s.hits), s.read_s, s.wait_s, 100.0 * overlap, embed_s_, head_s_);
  o << line;
  return o.str();
}

}  // namespace tritter
