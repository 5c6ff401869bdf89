// The KV cache: keys and values of every layer and kv head for the positions seen so far, in f32, f16, int8 or
// int4 (original.md §6.2 asked for int4 "per KIVI"; this is KIVI as published, not the original's variant):
//   keys:   per-channel asymmetric quantization over groups of kKvKeyGroup = 32 consecutive tokens (one min and
//           one scale per channel per group); the newest incomplete group stays in f32 (the residual) until full;
//   values: per-token asymmetric quantization over groups of kv_value_group(d) channels (32, or d when 32 ∤ d).
// Scales and minimums are f32. With a sliding window W the cache is a ring of C = ⌈(W + B − 1)/32⌉·32 slots
// (slot = pos mod C; B = the largest batch written at once, so a prefill chunk never evicts what its first
// token still sees); otherwise it holds the whole context. Non-goals: paged blocks, sinks, batch > 1.
// Note: in a prefill the attention of position i may read a key group completed by later prompt tokens (its
// scales then depend on them); generation is unaffected and f32/f16 caches are exactly causal.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/buffer.h"
#include "model/block.h"
#include "model/config.h"

namespace tritter {

enum class KvDtype { F32, F16, I8, I4 };
KvDtype kv_dtype_from_name(const std::string& name);  // "f32" "f16" "int8" "int4" (also "i8" "i4"); throws Error
const char* kv_dtype_name(KvDtype t);

inline constexpr int64_t kKvKeyGroup = 32;
inline int64_t kv_value_group(int64_t head_dim) { return head_dim % 32 == 0 ? 32 : head_dim; }

// The one size function: bytes a cache of `context` positions takes (what the constructor allocates and what
// `--verbose` and the tests report).
size_t kv_cache_bytes(const TritterConfig& c, int64_t context, KvDtype dtype, int64_t max_batch);
// Slots the cache keeps: the context, or the sliding window rounded up to the key group.
int64_t kv_cache_capacity(const TritterConfig& c, int64_t context, KvDtype dtype, int64_t max_batch);

class KvCache : public KvStore {
 public:
  // context: the largest position + 1 this cache will be asked for (≤ max_position_embeddings); max_batch: the
  // most positions one write() adds.
  KvCache(const TritterConfig& c, int64_t context, KvDtype dtype, int64_t max_batch, MemoryAccount* account);

  // k, v (T, K, d): the rotated keys and the values of positions pos0 .. pos0+T−1 of `layer`. Positions of one
  // layer are written in increasing order without gaps (pos0 = the layer's previous end).
  void write(int layer, int64_t pos0, int64_t T, const float* k, const float* v) override;
  // Appends n positions to every layer, all holding one batch of N(0, 1) keys and values drawn from `seed` (what
  // N real tokens would leave for the attention to read, for long-context benchmarks), in writes of the max batch.
  void append_random(int64_t n, uint64_t seed);
  // The rows of `layer` as the cached attention reads them: view() where it can, read() otherwise.
  KvRows rows(int layer) const override;
  // kb, vb (n, d) ← positions p0 .. p0+n−1 of (layer, kv head), dequantized. They must still be held (within the
  // window of the newest written position). Thread-safe against other reads.
  void read(int layer, int head, int64_t p0, int64_t n, float* kb, float* vb) const;
  // Zero-copy form of read() for an f32 cache: k, v point at (n, d) rows in the cache when positions p0 .. p0+n−1
  // are stored contiguously (no ring wrap); returns false (k, v untouched) otherwise or for other dtypes.
  bool view(int layer, int head, int64_t p0, int64_t n, const float** k, const float** v) const;
  // The same for an f16 cache: k, v point at (n, d) IEEE half floats.
  bool view_f16(int layer, int head, int64_t p0, int64_t n, const uint16_t** k, const uint16_t** v) const;
  // The same for an int8 / int4 cache: the levels and their parameters, when the n positions do not wrap, lie in
  // one key group and have their keys quantized (not the newest, still-f32 group).
  bool view_levels(int layer, int head, int64_t p0, int64_t n, KvLevels* out) const;

  int64_t context() const { return context_; }
  int64_t capacity() const { return capacity_; }
  KvDtype dtype() const { return dtype_; }
  size_t bytes() const { return storage_.bytes(); }
  // Forget everything (a new sequence).
  void clear();
  // Keep positions 0 .. m−1 and forget the rest (prefix reuse: a new sequence that shares the first n tokens);
  // returns m ≤ n, the most it can keep: a quantized cache keeps whole key groups (m rounded down to 32), a ring
  // that has wrapped keeps nothing.
  int64_t truncate(int64_t n);
  // Replaces this cache's sequence with positions 0 .. m−1 of `from`'s (a cache of the same model, context, dtype
  // and max batch): their stored bytes are copied, so reading them back gives what `from` holds. Returns m ≤ n,
  // truncate's rules applied to `from`. Throws Error for a cache of another shape.
  int64_t copy_prefix(const KvCache& from, int64_t n);
  int64_t written() const { return written_.empty() ? 0 : written_[0]; }  // positions held (layer 0)

 private:
  size_t head_index(int layer, int head) const { return static_cast<size_t>(layer) * kv_heads_ + head; }
  void flush_key_group(int layer, int head, int64_t group_start);
  // The stored rows of positions p0 .. p0+n−1 when they do not wrap around the ring (any dtype).
  bool contiguous_rows(int layer, int head, int64_t p0, int64_t n, const uint8_t** k, const uint8_t** v) const;
  uint8_t* kdata(size_t lh) const;
  uint8_t* vdata(size_t lh) const;
  float* kparams(size_t lh) const;  // (C/G, 2, d): min, scale per channel per group
  float* vparams(size_t lh) const;  // (C, d/gv, 2): min, scale per token per channel group
  float* kresidual(size_t lh) const;  // (G, d)

  TritterConfig config_;
  int64_t context_, max_batch_, capacity_, kv_heads_, d_, gv_;
  KvDtype dtype_;
  size_t elem_bytes_k_ = 0, elem_bytes_v_ = 0;  // bytes per slot for one head (data only)
  size_t k_off_ = 0, v_off_ = 0, kp_off_ = 0, vp_off_ = 0, kr_off_ = 0, per_head_ = 0;
  std::vector<int64_t> written_;  // per layer: positions written (the next pos0)
  Buffer storage_;
};

}  // namespace tritter
