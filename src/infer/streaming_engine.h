// Layer streaming (issue 7): the resident Engine's forward pass with weights that do not stay in memory_. Layers
// come from the packed file in groups through a LayerLoader (double-buffered on a loader thread), the output head
// in row chunks through the same slots, embedding rows one token at a time; the KV cache, the engine's
// activations and the final norm stay resident. Everything is checked against a MemoryManager budget at
// construction, so a run that cannot fit fails at start with the numbers, never mid-way. Same arithmetic as
// Engine (its layer_forward; the head per row), hence the same logits bit for bit (tests/infer/streaming_test.cpp).
// Design goals / non-goals: docs/streaming.md.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "core/buffer.h"
#include "core/context.h"
#include "infer/engine.h"
#include "infer/layer_loader.h"
#include "infer/memory_manager.h"

namespace tritter {

struct StreamingOptions {
  EngineOptions engine;
  int64_t memory_budget = 0;  // bytes, ≥ 1 (resolve_memory_budget turns the user's value into this)
  int layer_group_size = 0;   // 0: the largest group whose buffers fit the budget
  bool prefetch = true;       // two buffers (read group g+1 while g computes) or one (read on demand)
};

// The budget's decisions, from the config alone, before anything is allocated: what StreamingEngine allocates
// (it checks the file's layout against it) and what `tritter hw check --mode infer` prints for streaming.
struct StreamingPlan {
  int64_t budget = 0;
  int64_t kv_cache = 0, engine_buffers = 0, resident = 0;  // resident: final norm + the head's scratch
  int layer_group_size = 0, groups = 0;
  int64_t head_rows = 0, head_chunks = 0;
  int slots = 0;
  int64_t slot_bytes = 0;
  bool fits = false;
  std::string problem;  // when !fits: "memory budget: need ... for ..., budget ..., in use ..."
  int64_t total() const { return kv_cache + engine_buffers + resident + slots * slot_bytes; }
};

// Slot bytes of layers [l0, l1) of `c` as the loader lays them out (each tensor 64-byte aligned).
int64_t streamed_group_bytes(const TritterConfig& c, int l0, int l1);
// Plans streaming `c` under `budget` bytes. `engine` is resolved (context and max_batch as Engine uses them);
// group 0 = the largest that fits. Throws Error only on an invalid group size.
StreamingPlan plan_streaming(const TritterConfig& c, HeadFormat head, const EngineOptions& engine, int64_t budget,
                             int group, bool prefetch);

namespace detail {
// Base-from-member: the file layout, the budget and the check of the KV cache and engine buffers come before
// Engine's constructor allocates them.
struct StreamingSetup {
  StreamingSetup(Context& ctx, const std::filesystem::path& path, const StreamingOptions& options);
  PackedFileLayout layout_;
  MemoryManager memory_;
  EngineOptions engine_options_;
  ModelWeights shell_;  // config and head format only: Engine's weights() for callers such as generate()
  StreamingPlan plan_;
};
}  // namespace detail

class StreamingEngine : private detail::StreamingSetup, public Engine {
 public:
  // Opens `path` (header only), checks and allocates everything under options.memory_budget, starts the loader.
  // `ctx` must outlive the engine; its memory account must hold nothing else (it is the budget's ledger).
  StreamingEngine(Context& ctx, const std::filesystem::path& path, const StreamingOptions& options);

  // Engine::forward, streamed (same contract and errors).
  void forward(std::span<const int32_t> tokens, float* logits, bool all_logits) override;

  const StreamingPlan& plan() const { return plan_; }
  const MemoryManager& memory() const { return memory_; }
  LoaderStats loader_stats() const { return loader_->stats(); }
  double embed_seconds() const { return embed_s_; }
  double head_seconds() const { return head_s_; }
  // Lines for --verbose: the plan, peak use by category against the budget, I/O and overlap.
  std::string report() const;

 private:
  Context& ctx_;
  std::unique_ptr<LayerLoader> loader_;
  Buffer final_norm_;  // (D)
  Buffer normed_;      // (max_batch, D): the final norm's output
  Buffer hq_;          // (max_batch·D) i8: the int8 head's activation levels
  Buffer hs_;          // (max_batch): their scales
  double embed_s_ = 0, head_s_ = 0;
};

}  // namespace tritter
