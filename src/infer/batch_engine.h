// The batched inference engine: S slots, each one sequence with its own KV cache and position, over one set of
// weights. A step runs B rows — one token of each generating slot, and prompt tokens of newcomers — as ONE forward
// pass (model/block's batched rows): the norms, quantization and every ternary projection and the head run as
// GEMMs over the B rows, which read the weights once for B tokens; RoPE and attention run per row at its own
// position against its slot's cache. prefill() runs one slot's chunk (up to max_batch tokens) the way Engine does.
// A row's logits do not depend on which other rows share its step (tests/serve/batch_engine_test.cpp: greedy
// tokens equal the single-sequence Engine's).
// LoRA: set_lora's adapters apply to every row; add_adapter's sets are chosen per slot (set_slot_adapter), so rows
// with different adapters share one step: the ternary GEMMs run once over all rows and each run of rows with the
// same set gets that set's delta (a row's arithmetic is the single Engine's with base + its set, in that order).
// Prefix cache: copy_prefix gives a slot the cached positions of another slot's sequence (a shared system prompt
// is computed once); the copy is of the stored bytes, so what follows is what recomputing would give.
// Non-goals: a paged cache (attention reads each slot's rows contiguously), batching prefill chunks of several
// slots into one pass, streamed weights.
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
  // A set of adapters a slot may choose (applied after set_lora's); returns its index. `set` must outlive the
  // engine.
  int add_adapter(const LoraSet* set);
  int adapters() const { return static_cast<int>(sets_.size()); }
  // The slot's sequences run with adapter set `adapter` (−1: none beyond set_lora's); a change empties the slot
  // (its cached keys and values were computed with the other set). Throws Error on an index out of range.
  void set_slot_adapter(int slot, int adapter);
  int slot_adapter(int slot) const { return slot_set_.at(static_cast<size_t>(slot)); }
  // Replaces slot `to`'s sequence with the first n positions of slot `from`'s (their keys and values copied);
  // returns how many it copied (≤ n and ≤ position(from); KvCache::copy_prefix's rules). Both slots must run the
  // same adapter set (else nothing is copied: 0). `to` keeps its own sequence when from == to (truncate).
  int64_t copy_prefix(int from, int to, int64_t n);
  // Wall time per op family of the forward passes so far (collected when the Context's log level is Verbose).
  const OpTimes& op_times() const { return times_; }

 private:
  void check(int slot, int64_t n, const int32_t* tokens) const;
  // The layers over v_.x (N rows): prefill of `slot` (kvs null) or batched decode (kvs, positions B entries);
  // row_set (N): each row's adapter set (null: the slot's, for prefill).
  void layers(int64_t N, int slot, KvStore* const* kvs, const int64_t* positions, const int* row_set);
  void ensure_lora_buffer();

  Context& ctx_;
  ResidentWeights source_;
  const TritterConfig& c_;
  BatchEngineOptions options_;
  std::vector<std::unique_ptr<KvCache>> caches_;
  std::vector<int64_t> pos_;
  Buffer rope_;     // cos, sin (context, d/2)
  Buffer scratch_;  // the block's buffers for max_batch + slots rows (v_ views them)
  EngineViews v_;
  const LoraSet* lora_ = nullptr;
  std::vector<const LoraSet*> sets_;  // add_adapter's
  std::vector<int> slot_set_;         // per slot: an index into sets_, −1 none
  std::vector<int> row_set_;          // per step row
  Buffer lora_x_;
  bool timed_;
  OpTimes times_;
  std::vector<KvStore*> kv_rows_;     // per decode step
  std::vector<int64_t> positions_;
  std::vector<int64_t> step_pos_;
  int64_t rows_ = 0;  // rows one forward holds
};

}  // namespace tritter
