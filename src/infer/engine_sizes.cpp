// Sizes of the inference engine's buffers (infer/engine.cpp allocates them through these).
#include "infer/engine_sizes.h"

#include <algorithm>

namespace tritter {

namespace {
size_t widest(const TritterConfig& c) {
  return static_cast<size_t>(std::max({c.hidden_size, c.q_dim(), c.intermediate_size}));
}
}  // namespace

// engine_scratch_bytes is defined beside the carve it counts (infer/engine.cpp).

size_t engine_rope_bytes(const TritterConfig& c, const EngineOptions& e) {
  return 2 * static_cast<size_t>(e.context) * static_cast<size_t>(c.head_dim / 2) * sizeof(float);
}

size_t engine_lora_bytes(const TritterConfig& c, const EngineOptions& e) {
  return static_cast<size_t>(e.max_batch) * widest(c) * sizeof(float);
}

}  // namespace tritter
