// Attention, the one family every model path uses: grouped-query attention (H query heads share K kv heads,
// G = H/K) with softmax(q kᵀ/√d) v, under one mask definition (AttnMask) that every op and its reference read.
//   prefill (training and encoders): in-batch q, k, v of B sequences, flash-style — only the per-row logsumexp is
//     saved and P is recomputed in the backward; query blocks of kAttnBlock rows skip fully masked key blocks.
//   cached (inference): queries against rows of a key/value store read through KvRows (the engine's KV cache),
//     tiled with an online softmax: key blocks of kAttnKeyBlock positions aligned to absolute positions, so a
//     query's result does not depend on how queries are batched (prefill and token-by-token decode agree bit for
//     bit on an f32 cache) nor on the thread count. Decode reads each key/value once per step for all G heads.
// Masks: causal and causal with a sliding window run everywhere; bidirectional and prefix masks are defined here
// (visible ranges) and run in the prefill op and the references. ctx.kernels == Reference runs kernels/ref (every
// score materialized, the mask asked pair by pair, sums in double).
#pragma once
#include <cstdint>
#include <optional>

#include "core/context.h"

namespace tritter {

// Which keys query position i sees: always one contiguous range [lo(i), hi(i, n)] of positions, n = the number of
// positions the sequence has (the visible set grows monotonically with i, which the blocked kernels rely on).
//   Causal:        j ≤ i
//   Bidirectional: every j < n
//   Prefix(P):     positions < P see each other (j < P), later ones are causal (j ≤ i)
// × an optional sliding window W (counts the diagonal, W = 1 → self only): also |i − j| < W.
struct AttnMask {
  enum class Kind { Causal, Bidirectional, Prefix };
  Kind kind = Kind::Causal;
  int64_t prefix = 0;              // Prefix: P
  std::optional<int64_t> window;   // null = no window

  AttnMask() = default;
  // Causal with an optional window (what a model config's sliding_window means).
  AttnMask(std::optional<int64_t> w) : window(w) {}  // NOLINT(google-explicit-constructor): configs pass it as is
  static AttnMask causal(std::optional<int64_t> w = std::nullopt) { return AttnMask(w); }
  static AttnMask bidirectional(std::optional<int64_t> w = std::nullopt);
  static AttnMask prefix_lm(int64_t prefix_len, std::optional<int64_t> w = std::nullopt);

  int64_t lo(int64_t i) const { return window ? (i - *window + 1 > 0 ? i - *window + 1 : 0) : 0; }
  int64_t hi(int64_t i, int64_t n) const {
    int64_t h = kind == Kind::Causal ? i : kind == Kind::Bidirectional ? n - 1 : (i < prefix ? prefix - 1 : i);
    if (h > n - 1) h = n - 1;
    if (window && h > i + *window - 1) h = i + *window - 1;
    return h;
  }
  bool visible(int64_t i, int64_t j, int64_t n) const { return j >= lo(i) && j <= hi(i, n); }
  bool is_causal() const { return kind == Kind::Causal; }
  bool operator==(const AttnMask&) const = default;
};
const char* attn_mask_name(const AttnMask& m);  // "causal", "causal+window(W)", "bidirectional", "prefix(P)" ...

// ---------------------------------------------------------------- prefill (in-batch q, k, v)
struct AttnShape {
  int64_t B = 1, T = 1, H = 1, K = 1, d = 1;
  AttnMask mask;  // positions 0 .. T−1 of each sequence
  // Optional (B): a per-sequence prefix length for a Prefix mask (prefix_lm with P a batch field); null = mask.prefix.
  const int64_t* prefix = nullptr;
  // The mask of sequence b: `mask`, with P = prefix[b] when the mask is a Prefix mask and prefix is set.
  AttnMask mask_of(int64_t b) const {
    AttnMask m = mask;
    if (m.kind == AttnMask::Kind::Prefix && prefix) m.prefix = prefix[b];
    return m;
  }
};
inline constexpr int64_t kAttnBlock = 64;
// Floats of scratch the prefill functions need with `threads` workers.
int64_t attention_scratch_floats(const AttnShape& s, int threads);
// out (B, T, H, d), lse (B, H, T) from q (B, T, H, d), k, v (B, T, K, d). Saves: q, k, v, out, lse.
void attention_forward(const Context& ctx, float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttnShape& s, float* scratch);
// dq (B, T, H, d), dk, dv (B, T, K, d): overwritten (dk, dv summed over the G query heads of each kv head).
void attention_backward(const Context& ctx, float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse, const AttnShape& s,
                        float* scratch);

// ---------------------------------------------------------------- cached (queries against stored rows)
inline constexpr int64_t kAttnKeyBlock = 32;
inline constexpr int64_t kAttnQueryTile = 16;
// Split-K (flash-decoding): keys are taken in chunks of kAttnSplitKeys absolute positions (a multiple of
// kAttnKeyBlock), each chunk's online softmax from a fresh state, the chunks merged in order by log-sum-exp. Every
// query is computed this way, whether its chunks run on one thread or many, so long-context decode can spread one
// query's keys over the threads and still give what prefill gives.
inline constexpr int64_t kAttnSplitKeys = 1024;

// The key/value rows of one layer, read by kv head and position: the view the cached attention takes instead of
// a cache type. fetch returns (n, d) rows of keys and values for positions p0 .. p0+n−1 of kv head `head`, either
// pointing into the store or dequantized into kbuf, vbuf (n, d) — the store decides. Must be thread-safe.
// Rows of 8- or 4-bit levels in place (a quantized cache): x̂ = min + level·scale, the product and the sum
// rounded apart. Keys: one {min, scale} per channel for all n rows (one key group); values: per row, a
// {min, scale} per group of gv channels.
struct KvLevels {
  int bits = 8;                     // 8: a byte per level; 4: element 2j in the low nibble of byte j
  const uint8_t* k = nullptr;       // (n, d·bits/8): the first row's levels
  const uint8_t* v = nullptr;       // (n, d·bits/8)
  const float* kparams = nullptr;   // (2, d): min (d), scale (d)
  const float* vparams = nullptr;   // (n, d/gv, 2): min, scale
  int64_t gv = 0;
};
struct KvRows {
  const void* store = nullptr;
  int layer = 0;
  void (*fetch)(const void* store, int layer, int head, int64_t p0, int64_t n, float* kbuf, float* vbuf,
                const float** k, const float** v) = nullptr;
  // Optional, for a store of IEEE half floats: k, v point at the (n, d) rows in place and it returns true, or it
  // returns false (then fetch). The SIMD tiers convert them in registers as they read them: converting into kbuf
  // first cost 2-3x the attention itself at long contexts (every value stored and loaded again).
  bool (*view_f16)(const void* store, int layer, int head, int64_t p0, int64_t n, const uint16_t** k,
                   const uint16_t** v) = nullptr;
  // Optional, for a quantized store: the levels of positions p0 .. p0+n−1 in place, or false (then fetch). The
  // SIMD tiers dequantize them in registers, with the cache's own arithmetic.
  bool (*view_levels)(const void* store, int layer, int head, int64_t p0, int64_t n, KvLevels* out) = nullptr;
};
struct CachedAttnShape {
  int64_t H = 1, K = 1, d = 1;
  AttnMask mask;  // over absolute positions; the sequence has pos0 + T positions
};
// o (T, H·d) ← attention of queries q (T, H, d) at positions pos0 .. pos0+T−1 against `rows`, which must hold
// every position a query sees. Threads: ctx.threads over (kv head, query tile), and over key chunks too (split-K)
// when those items are too few to keep the threads busy; small problems run on one thread.
void attention_cached(const Context& ctx, float* o, const float* q, const KvRows& kv_rows, int64_t pos0, int64_t T,
                      const CachedAttnShape& s);

// Deterministic dot product with 16 independent partial sums (vectorizes without reassociating).
inline float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int w = 8; w >= 1; w /= 2) {
    for (int k = 0; k < w; ++k) acc[k] += acc[k + w];
  }
  return acc[0] + tail;
}

}  // namespace tritter
