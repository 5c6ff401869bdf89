// OpenAI's request and response shapes over the scheduler's jobs and events: parsing and checking a request body
// (every type and range checked; a bad one is an ApiError with OpenAI's error object, never a crash), and
// building the response objects (completions, chat completions, their streamed chunks, embeddings, models).
// Sampling follows the API's names: temperature (default 1), top_p (1), max_tokens, stop (≤ 4), seed, n,
// logprobs; llama-server's top_k, min_p, repeat_penalty are accepted too.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "infer/sampler.h"
#include "serve/channel.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace tritter::serve {

using Json = nlohmann::json;

// A user-caused error: its HTTP status and OpenAI's error object {message, type, param, code}.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error", std::string param = "",
           std::string code = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}
  int status;
  std::string type, param, code;
};
Json error_body(int status, const std::string& message, const std::string& type, const std::string& param = "",
                const std::string& code = "");
// JSON text of `j`, bytes that are not UTF-8 replaced (byte-level models may emit any byte).
std::string dump(const Json& j);

// What a request gets for the sampling fields it leaves out: OpenAI's defaults, or the model's
// generation_config.json (serve_cmd fills them as `tritter generate` applies them).
struct SamplingDefaults {
  double temperature = 1.0, top_p = 1.0, repeat_penalty = 1.0;
  int64_t top_k = 0;
};

struct ApiLimits {
  int64_t context = 0;          // positions per slot: prompt + generated must fit
  int64_t vocab_size = 0;
  int64_t max_tokens = 4096;    // the most max_tokens a request may ask for
  int64_t default_max_tokens = 256;
  int max_n = 8;
  bool add_bos = false;
  std::string model_id;
  // Chat: the model's template (its bos/eos text) and the stop strings it implies; null: Tritter's built-in one.
  std::shared_ptr<const ChatTemplate> chat;
  std::vector<std::string> chat_stop;
  std::string bos_token, eos_token;
  std::vector<std::string> adapters;  // the model ids of the loaded adapter sets (index = the engine's set)
  // The model's own tokenizer (a HF folder's tokenizer.json, a GGUF's vocabulary); null: Tritter's byte tokenizer.
  const Tokenizer* tokenizer = nullptr;
  std::string chat_unavailable;  // non-empty: chat requests get a 400 with this message
  SamplingDefaults sampling;
};

// Text through the model's tokenizer (limits.tokenizer, or the byte tokenizer), as `tritter generate` does:
// ids ← [<bos> when bos] + the text's ids (special-token text such as "<|eot_id|>" becomes its id for tokenizer.json
// files); text ← ids (specials and ids past the tokenizer's vocabulary give nothing); the bytes one token adds to
// a streamed text; a token's label for logprobs and /tokenize pieces (its bytes, or its vocabulary string when it
// has none, "<id N>" past the tokenizer's vocabulary).
const Tokenizer& tokenizer_of(const ApiLimits& limits);
std::vector<int32_t> encode_text(const Tokenizer& t, std::string_view text, bool bos);
std::string decode_ids(const Tokenizer& t, std::span<const int32_t> ids);
std::string token_text(const Tokenizer& t, int32_t id);
std::string token_label(const Tokenizer& t, int32_t id);
// The adapter set a body's `model` names: −1 for the base model (or no `model`), else its index in
// limits.adapters. Throws ApiError 404 model_not_found for any other name, 400 for a non-string.
int resolve_model(const Json& body, const ApiLimits& limits);

struct GenerationRequest {
  bool chat = false, stream = false, include_usage = false, echo = false;
  std::string prompt_text;           // the rendered prompt (echo)
  std::vector<int32_t> prompt;
  int n = 1;
  int64_t max_tokens = 0;
  SamplerOptions sampler;
  bool seeded = false;               // seed given: choice i uses seed + i
  std::vector<std::string> stop;
  int top_logprobs = -1;             // −1 none
  bool ignore_eos = false;           // llama-server's: keep going after <eos>
  std::string model;                 // as the request named it (empty: none)
  int adapter = -1;                  // resolve_model's
};

// Parses a /v1/completions (chat = false) or /v1/chat/completions body. Throws ApiError.
GenerationRequest parse_generation(const Json& body, bool chat, const ApiLimits& limits);
// The texts of a /v1/embeddings body's `input` (a string or an array of strings or of token-id arrays), as ids.
std::vector<std::vector<int32_t>> parse_embedding_input(const Json& body, const ApiLimits& limits);
// Parses a body, mapping malformed JSON (or a non-object) to a 400.
Json parse_body(const std::string& text);

// One choice's accumulated result (non-streaming responses).
struct ChoiceResult {
  std::string text, finish_reason;
  std::vector<Event> tokens;  // the token events (logprobs)
};
Json logprobs_json(const std::vector<Event>& tokens, bool chat, const Tokenizer& t);
Json usage_json(int64_t prompt, int64_t completion, int64_t cached);

}  // namespace tritter::serve
