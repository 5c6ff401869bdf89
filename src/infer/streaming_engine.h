// Layer streaming: a WeightSource (infer/weight_source.h) whose weights do not stay in memory. Layers come from the
// packed file in groups through a LayerLoader (double-buffered on a loader thread), the output head in row chunks
// through the same slots, embedding rows one token at a time; the final norm stays resident, and the Engine that
// runs the source keeps its KV cache and activations. Everything is checked against a MemoryManager budget at
// construction, so a run that cannot fit fails at start with the numbers, never mid-way. The Engine's forward pass
// is the resident one (the head per row here), hence the same logits bit for bit (tests/infer/streaming_test.cpp).
// Design goals / non-goals: docs/streaming.md.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/buffer.h"
#include "core/context.h"
#include "infer/engine.h"
#include "infer/layer_loader.h"
#include "infer/memory_manager.h"
#include "infer/weight_source.h"

namespace tritter {

struct StreamingOptions {
  EngineOptions engine;
  int64_t memory_budget = 0;  // bytes, ≥ 1 (resolve_memory_budget turns the user's value into this)
  int layer_group_size = 0;   // 0: the largest group whose buffers fit the budget
  bool prefetch = true;       // two buffers (read group g+1 while g computes) or one (read on demand)
};

// The budget's decisions, from the config alone, before anything is allocated: what StreamedWeights and its Engine
// allocate (the source checks the file's layout against it) and what `tritter hw check --mode infer` prints for
// streaming.
struct StreamingPlan {
  int64_t budget = 0;
  // resident: the final norm + the head's input (normed rows, int8 levels, scales). The engine's scratch holds the
  // head's input, so that part is headroom: a streamed run allocates total() − (resident − 4·D).
  int64_t kv_cache = 0, engine_buffers = 0, resident = 0;
  int layer_group_size = 0, groups = 0;
  int64_t head_rows = 0, head_chunks = 0;
  int slots = 0;
  int64_t slot_bytes = 0;
  bool fits = false;
  std::string problem;  // when !fits: "memory budget: need ... for ..., budget ..., in use ..."
  int64_t total() const { return kv_cache + engine_buffers + resident + slots * slot_bytes; }
};

// Slot bytes of layers [l0, l1) of `c` as the loader lays them out (each tensor 64-byte aligned).
int64_t streamed_group_bytes(const TritterConfig& c, int l0, int l1, TernaryLayout layout = TernaryLayout::T16);
// Plans streaming `c` under `budget` bytes. `engine` is resolved (context and max_batch as Engine uses them);
// group 0 = the largest that fits. Throws Error only on an invalid group size.
// `layout`: the file's qweight layout (a T20 file's groups are smaller).
StreamingPlan plan_streaming(const TritterConfig& c, HeadFormat head, const EngineOptions& engine, int64_t budget,
                             int group, bool prefetch, TernaryLayout layout = TernaryLayout::T16);

// The streamed weight source. Run it with Engine(ctx, source, source.engine_options()), or through
// StreamingEngine below, which owns both.
class StreamedWeights final : public WeightSource {
 public:
  // Opens `path` (header only), plans under options.memory_budget (Error with the numbers when the plan does not
  // fit, the KV cache and the engine's buffers included), allocates the final norm and the loader's buffers,
  // starts the loader. `ctx` must outlive the source; its memory account must hold nothing else (it is the
  // budget's ledger), and the Engine that runs the source must use the same Context.
  StreamedWeights(Context& ctx, const std::filesystem::path& path, const StreamingOptions& options);
  StreamedWeights(const StreamedWeights&) = delete;
  StreamedWeights& operator=(const StreamedWeights&) = delete;

  const ModelWeights& weights() const override { return shell_; }  // config, head format, bytes_per_token
  void embed_rows(const int32_t* tokens, int64_t T, float* out) override;
  LayerGroup acquire_layers(int l, bool head_next) override;
  void release_layers(const LayerGroup& group) override;
  const float* final_norm() const override { return final_norm_.as<float>().data(); }
  void head_forward(const Context& ctx, float* logits, const float* h, int64_t rows, int8_t* hq,
                    float* hs) override;

  const EngineOptions& engine_options() const { return engine_options_; }  // resolved, as planned
  const StreamingPlan& plan() const { return plan_; }
  const MemoryManager& memory() const { return memory_; }
  LoaderStats loader_stats() const { return loader_->stats(); }
  double embed_seconds() const { return embed_s_; }
  double head_seconds() const { return head_s_; }
  // Lines for --verbose: the plan, peak use by category against the budget, I/O and overlap.
  std::string report() const;

 private:
  PackedFileLayout layout_;
  MemoryManager memory_;
  EngineOptions engine_options_;
  ModelWeights shell_;  // config and head format only
  StreamingPlan plan_;
  Buffer final_norm_;  // (D)
  std::unique_ptr<LayerLoader> loader_;
  double embed_s_ = 0, head_s_ = 0;
};

// A streamed source and the Engine that runs it, owned together (the engine is destroyed first).
class StreamingEngine {
 public:
  // StreamedWeights(ctx, path, options), then Engine(ctx, weights, weights.engine_options()).
  StreamingEngine(Context& ctx, const std::filesystem::path& path, const StreamingOptions& options);

  Engine& engine() { return engine_; }
  StreamedWeights& weights() { return weights_; }
  const StreamingPlan& plan() const { return weights_.plan(); }
  const MemoryManager& memory() const { return weights_.memory(); }
  LoaderStats loader_stats() const { return weights_.loader_stats(); }
  std::string report() const { return weights_.report(); }

 private:
  StreamedWeights weights_;
  Engine engine_;
};

}  // namespace tritter
