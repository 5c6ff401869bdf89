// Causal grouped-query attention over the KV cache (training-spec §4.5), tiled with an online softmax: no T×T
// matrix, key blocks of kAttnKeyBlock positions aligned to absolute positions, so a query's result does not
// depend on how queries are batched (prefill and token-by-token decode agree bit for bit on an f32 cache) nor on
// the thread count. Optional sliding window W (visible: i − W < j ≤ i). Decode reads each cached key/value once
// per step for all G query heads of its kv head. Non-goals: batch > 1, attention backward (train/).
#pragma once
#include <cstdint>

#include "core/context.h"
#include "infer/kv_cache.h"
#include "model/config.h"

namespace tritter {

inline constexpr int64_t kAttnKeyBlock = 32;
inline constexpr int64_t kAttnQueryTile = 16;

// o (T, H·d) ← softmax(q kᵀ/√d) v for queries q (T, H, d) at positions pos0 .. pos0+T−1 against `layer` of the
// cache, which must already hold those positions. Threads: ctx.threads over (kv head, query tile).
void attention_forward(const Context& ctx, float* o, const float* q, const KvCache& cache, int layer, int64_t pos0,
                       int64_t T, const TritterConfig& c);

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
