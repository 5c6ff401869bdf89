// The batched inference engine: S slots, each one sequence with its own KV cache and position, over one set of
// weights. A step runs B rows — one token of each generating slot, and prompt tokens of newcomers — as ONE forward
// pass (model/block's batched rows): the norms, quantization and every ternary projection and the head run as
// GEMMs over the B rows, which read the weights once for B tokens; RoPE and attention run per row at its own
// position against its slot's cache. prefill() runs one slot's chunk (up to max_batch tokens) the way Engine does. A row's logits do not depend on which other
// rows share its step (tests/serve/batch_engine_test.cpp: greedy tokens equal the single-sequence Engine's).
// Non-goals: a paged cache shared between slots, batching prefill chunks of several slots into one pass, streamed
// weights.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "infer/engine.h"
#include "infer/kv_cache.h"
#include "model/packed_model.h"

namespace tritter {

class LoraSet;

struct BatchEngineOptions {
  int slots = 4;           // sequences held at once (each its own KV cache)
  int64_t context = 0;     // positions per slot; 0 = min(max_position_embeddings, 4096)
  KvDtype kv_dtype = KvDtype::F32;
  int64_t max_batch = 64;  // prompt tokens per prefill chunk
};

// Bytes the batched engine allocates: the caches (slots × kv_cache_bytes), rope, and the rows' scratch.
size_t batch_engine_bytes(const TritterConfig& c, const BatchEngineOptions& o);

class BatchEngine {
 public:
  // `ctx` and `weights` must outlive the engine. Throws Error on options out of range (slots < 1, a context
  // outside 1 .. max_position_embeddings).
  BatchEngine(Context& ctx, const ModelWeights& weights, const BatchEngineOptions& options);
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  int slots() const { return static_cast<int>(caches_.size()); }
  int64_t context() const { return options_.context; }
  int64_t max_batch() const { return options_.max_batch; }
  const TritterConfig& config() const { return c_; }
  int64_t position(int slot) const { return pos_.at(static_cast<size_t>(slot)); }
  size_t slot_cache_bytes() const { return caches_.front()->bytes(); }
  void reset(int slot);
  // Keeps the first n positions of the slot's sequence (a new prompt that starts with them); returns how many
  // it kept (≤ n: KvCache::truncate).
  int64_t truncate(int slot, int64_t n);

  // Runs tokens (n ≥ 1) of `slot` at positions position(slot) .. +n−1 in chunks of max_batch tokens; logits (V)
  // of the last token when not null. Throws Error on an id outside [0, V) or a full context.
  void prefill(int slot, std::span<const int32_t> tokens, float* logits);
  // One forward of B rows (B ≤ max_batch + slots): row b is token tokens[b] of slot slots[b] at that slot's next
  // position — a slot may have several rows (prompt tokens, in order: consecutive positions). logits (R, V) for
  // the R rows whose want[b] is non-zero, in row order (want null: every row). Throws Error on a bad slot or id or
  // a full context (nothing runs then).
  void step(std::span<const int> slots, std::span<const int32_t> tokens, const uint8_t* want, float* logits);
  // One token for each of the slots (distinct): logits (B, V), row b for slots[b].
  void decode(std::span<const int> slots, std::span<const int32_t> tokens, float* logits) {
    step(slots, tokens, nullptr, logits);
  }
  int64_t max_rows() const { return rows_; }
  // A unit vector (D): the final RMSNorm'd hidden states of tokens run as a fresh sequence in `slot`, averaged
  // and L2-normalized (Session::embed's definition). Leaves the slot empty.
  std::vector<float> embed(int slot, std::span<const int32_t> tokens);
  // LoRA adapters on every row (infer/lora_apply.h); `lora` must outlive the engine or be detached (nullptr).
  void set_lora(const LoraSet* lora);
  // Wall time per op family of the forward passes so far (collected when the Context's log level is Verbose).
  const OpTimes& op_times() const { return times_; }

 private:
  void check(int slot, int64_t n, const int32_t* tokens) const;
  // The layers over x_ (N rows): prefill of `slot` (kvs null) or batched decode (kvs, positions B entries).
  void layers(int64_t N, int slot, KvStore* const* kvs, const int64_t* positions);

  Context& ctx_;
  ResidentWeights source_;
  const TritterConfig& c_;
  BatchEngineOptions options_;
  std::vector<std::unique_ptr<KvCache>> caches_;
  std::vector<int64_t> pos_;
  Buffer rope_;     // cos, sin (context, d/2)
  Buffer scratch_;  // the block's buffers for max(max_batch, slots) rows
  float* x_ = nullptr;
  BlockActs acts_;
  BlockScratch bs_;
  int8_t* hq_ = nullptr;
  float* hs_ = nullptr;
  float* normed_ = nullptr;
  const LoraSet* lora_ = nullptr;
  Buffer lora_x_;
  bool timed_;
  OpTimes times_;
  std::vector<KvStore*> kv_rows_;     // per decode step
  std::vector<int64_t> positions_;
  std::vector<int64_t> step_pos_;
  int64_t rows_ = 0;  // rows one forward holds
};

}  // namespace tritter
