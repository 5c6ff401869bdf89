// Choosing the next token from logits: repetition penalty (llama.cpp's: divide a positive logit, multiply a
// negative one, over the last repeat_last_n tokens), then greedy argmax when temperature is 0, else top-k →
// temperature → softmax → top-p → min-p → a draw from the sampler's own seeded generator. Same seed and same
// logits, same token. Non-goals: grammars, mirostat, DRY, logit bias.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/rng.h"

namespace tritter {

struct SamplerOptions {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options);  // throws Error on out-of-range options
  // logits (V) are modified (penalties). history: the tokens so far (prompt + generated).
  int32_t sample(float* logits, int64_t V, std::span<const int32_t> history);

 private:
  SamplerOptions o_;
  Rng rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

// The index of the largest logit (the lowest index among equals).
int32_t argmax(const float* logits, int64_t V);

}  // namespace tritter
