// Generation: prefill the prompt, then sample and decode one token at a time, streaming text as it is produced
// and stopping at <eos>, a stop string (never printed, and held back while it might still be forming), the token
// limit or the end of the context. Returns llama.cpp-style timings. Non-goals: chat templates, batching.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "infer/engine.h"
#include "infer/sampler.h"

namespace tritter {

struct GenerateOptions {
  int64_t max_tokens = 128;
  std::vector<std::string> stop;  // stop strings
  bool stop_at_eos = true;
  SamplerOptions sampler;
};

struct GenerateResult {
  std::string text;            // what was streamed (without a matched stop string)
  std::vector<int32_t> tokens; // generated ids
  int64_t prompt_tokens = 0;
  int64_t decode_steps = 0;    // forward passes after the prompt
  double prompt_s = 0, decode_s = 0, sample_s = 0;
  std::string stop_reason;     // "eos", "stop", "length", "context"
};

// `prompt` (≥ 1 token) must fit the engine's context. on_text receives each newly final piece of text.
GenerateResult generate(Engine& engine, std::span<const int32_t> prompt, const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text);

}  // namespace tritter
