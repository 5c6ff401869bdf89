// The one size function of the inference engine's own buffers (DESIGN.md principle 4): Engine's constructor
// allocates exactly these, and the streaming planner and `tritter specs` / `hw check` report them.
// `resolved` is what resolve_engine_options returns (context and max_batch as the engine uses them).
// Not here: the KV cache (kv_cache_bytes, infer/kv_cache.h), the weights, the caller's logits.
#pragma once
#include <cstddef>
#include <cstdint>

#include "infer/engine.h"
#include "model/config.h"

namespace tritter {

// The block's buffers for one chunk of B = max_batch tokens (each 64-byte aligned): x, q, k, v, the attention
// output, one D-wide branch output, u, the gate (F each), one scale per token and the int8 levels of the widest
// quantized input; the final norm's output reuses u (a D-wide buffer more when F < D).
size_t engine_scratch_bytes(const TritterConfig& c, const EngineOptions& resolved);
// The views of that buffer for B rows (EngineViews, infer/engine.h), carved from `base` (null: only counts);
// returns its bytes. One walk for the size and the views (the engine and the batched engine bind these).
size_t engine_views(uint8_t* base, const TritterConfig& c, int64_t B, EngineViews& v);
// The RoPE tables: cos and sin (context, d/2) fp32.
size_t engine_rope_bytes(const TritterConfig& c, const EngineOptions& resolved);
// The extra buffer set_lora adds: the fp32 normalized input of the targeted projections (max_batch, max(D, H·d, F)).
size_t engine_lora_bytes(const TritterConfig& c, const EngineOptions& resolved);
// What an engine allocates besides its KV cache (no LoRA): rope + scratch.
inline size_t engine_buffer_bytes(const TritterConfig& c, const EngineOptions& resolved) {
  return engine_rope_bytes(c, resolved) + engine_scratch_bytes(c, resolved);
}

}  // namespace tritter
