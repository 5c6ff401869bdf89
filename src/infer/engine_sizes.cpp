// Sizes of the inference engine's buffers (infer/engine.cpp allocates them through these).
#include "infer/engine_sizes.h"

#include <algorithm>

namespace tritter {

namespace {
size_t widest(const TritterConfig& c) {
  return static_cast<size_t>(std::max({c.hidden_size, c.q_dim(), c.intermediate_size}));
}
}  // namespace

size_t engine_scratch_bytes(const TritterConfig& c, const EngineOptions& e) {
  const size_t B = static_cast<size_t>(e.max_batch), D = c.hidden_size, F = c.intermediate_size;
  const size_t floats = B * (D + c.q_dim() + 2 * c.kv_dim() + c.q_dim() + D + 2 * F + 1);
  return floats * sizeof(float) + B * widest(c);
}

size_t engine_rope_bytes(const TritterConfig& c, const EngineOptions& e) {
  return 2 * static_cast<size_t>(e.context) * static_cast<size_t>(c.head_dim / 2) * sizeof(float);
}

size_t engine_lora_bytes(const TritterConfig& c, const EngineOptions& e) {
  return static_cast<size_t>(e.max_batch) * widest(c) * sizeof(float);
}

}  // namespace tritter
