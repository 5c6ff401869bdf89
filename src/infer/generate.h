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
#include "text/tokenizer.h"

namespace tritter {

struct GenerateOptions {
  int64_t max_tokens = 128;
  std::vector<std::string> stop;  // stop strings
  bool stop_at_eos = true;
  SamplerOptions sampler;
  // The exit: false = sample from the logits (softmax, the sampler above); true = the KNN exit of a cosine head
  // (Engine::knn_exit: the nearest embedding row, no logits computed), greedy only (temperature 0).
  bool knn_exit = false;
  // Continuous thought (infer/latent.h): with N > 0 the prompt is followed by <bot>, N thoughts (each the last
  // post-final-norm state times latent_scale, fed back as the next input) and <eot>, then sampling as usual; the
  // cache holds prompt + N + 2 positions before the first generated token. latent_scale 0: the embedding rows'
  // RMS. N = 0 is plain generation (no control ids).
  int64_t latent_steps = 0;
  float latent_scale = 0.0f;
  // The model's tokenizer (text of each token) and the ids that end a turn; null / empty: the byte tokenizer and
  // its <eos>.
  const Tokenizer* tokenizer = nullptr;
  std::vector<int32_t> end_ids;
};

struct GenerateResult {
  std::string text;            // what was streamed (without a matched stop string)
  std::vector<int32_t> tokens; // generated ids
  int64_t prompt_tokens = 0;
  int64_t decode_steps = 0;    // forward passes after the prompt (and its thoughts)
  int64_t latent_steps = 0;    // thoughts run between <bot> and <eot>
  double prompt_s = 0, decode_s = 0, sample_s = 0;
  double latent_s = 0;         // the thoughts and <eot>
  std::string stop_reason;     // "eos", "stop", "length", "context", "callback"
};

// Called once per generated token with its id and the text that became final with it (empty while a stop string
// may still be forming). Return false to stop (stop_reason "callback"). After the last token, held-back text that
// turned out not to start a stop string comes in one more call with id −1 (its return value is ignored).
using TokenCallback = std::function<bool(int32_t id, std::string_view piece)>;

// `prompt` (≥ 1 token) must fit the engine's context. The loop every caller runs (the CLI, the public API).
// The longest suffix of `text` that is a proper prefix of some stop string: held back from a stream, since it may
// still become a stop. Shared by generate_tokens and the server's scheduler.
size_t stop_string_hold(std::string_view text, const std::vector<std::string>& stops);

GenerateResult generate_tokens(Engine& engine, std::span<const int32_t> prompt, const GenerateOptions& options,
                               const TokenCallback& on_token);
// The same, streaming text only: on_text receives each newly final, non-empty piece.
GenerateResult generate(Engine& engine, std::span<const int32_t> prompt, const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text);

}  // namespace tritter
