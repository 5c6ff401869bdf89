#include "infer/weight_source.h"

#include <cstring>

#include "kernels/head.h"

namespace tritter {

void ResidentWeights::embed_rows(const int32_t* tokens, int64_t T, float* out) {
  const int64_t D = w_.config.hidden_size;
  for (int64_t t = 0; t < T; ++t) {
    std::memcpy(out + t * D, w_.embed + static_cast<int64_t>(tokens[t]) * D, D * sizeof(float));
  }
}

LayerGroup ResidentWeights::acquire_layers(int, bool) {
  return {w_.layers.data(), 0, static_cast<int>(w_.layers.size())};
}

void ResidentWeights::head_forward(const Context& ctx, float* logits, const float* h, int64_t rows, int8_t* hq,
                                   float* hs) {
  const TritterConfig& c = w_.config;
  lm_head_forward(ctx, logits, h, rows, w_.head, c.vocab_size, c.hidden_size, hq, hs);
}

}  // namespace tritter
