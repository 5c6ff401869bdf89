#include "infer/latent.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace tritter {

double embedding_row_rms(WeightSource& source) {
  const TritterConfig& c = source.weights().config;
  const int64_t V = c.vocab_size, D = c.hidden_size, block = 256;
  std::vector<int32_t> ids(block);
  std::vector<float> rows(static_cast<size_t>(block * D));
  double sum = 0;  // Σ_v ‖E_v‖
  for (int64_t v0 = 0; v0 < V; v0 += block) {  // in blocks: a 65 536-row table is never copied whole
    const int64_t n = std::min(block, V - v0);
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(v0 + i);
    source.embed_rows(ids.data(), n, rows.data());
    for (int64_t i = 0; i < n; ++i) {
      double ss = 0;
      for (int64_t k = 0; k < D; ++k) ss += static_cast<double>(rows[i * D + k]) * rows[i * D + k];
      sum += std::sqrt(ss);
    }
  }
  return sum / static_cast<double>(V) / std::sqrt(static_cast<double>(D));
}

void run_latent_steps(Engine& engine, int64_t steps, float scale) {
  if (steps < 0) throw_error("latent steps: found ", steps, ", expected >= 0");
  std::vector<float> h(static_cast<size_t>(engine.weights().config.hidden_size));
  for (int64_t i = 0; i < steps; ++i) {
    engine.last_hidden(h);
    for (float& x : h) x *= scale;
    engine.step_embedding(h, nullptr);
  }
}

}  // namespace tritter
