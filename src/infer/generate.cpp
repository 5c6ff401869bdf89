#include "infer/generate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "infer/latent.h"
#include "text/byte_tokenizer.h"

namespace tritter {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// The longest suffix of `text` that is a proper prefix of some stop string (it may still become one).
size_t stop_string_hold(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops) {
    for (size_t n = std::min(text.size(), s.size() - 1); n > hold; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

GenerateResult generate_tokens(Engine& engine, std::span<const int32_t> prompt, const GenerateOptions& options,
                               const TokenCallback& on_token) {
  const int64_t V = engine.weights().config.vocab_size;
  if (prompt.empty()) throw_error("generate: empty prompt: expected at least one token");
  if (engine.position() + static_cast<int64_t>(prompt.size()) > engine.context()) {
    throw_error("generate: the prompt has ", prompt.size(), " tokens, more than the context of ", engine.context(),
                " (raise --ctx, at most max_position_embeddings = ", engine.weights().config.max_position_embeddings,
                ")");
  }
  if (options.max_tokens < 0) throw_error("--max-tokens: found ", options.max_tokens, ", expected >= 0");
  for (const auto& s : options.stop) {
    if (s.empty()) throw_error("--stop: empty stop string");
  }
  if (options.knn_exit && options.sampler.temperature > 0) {
    throw_error("generate: the KNN exit is greedy: found temperature ", options.sampler.temperature,
                ", expected 0 (or use the softmax exit to sample)");
  }
  if (options.latent_steps < 0) throw_error("--latent-steps: found ", options.latent_steps, ", expected >= 0");
  const int64_t N = options.latent_steps;
  if (N > 0 && V < kLatentVocabSize) {
    throw_error("generate: latent steps need the control ids <bot> (", kTokenBot, ") and <eot> (", kTokenEot,
                "): the model's vocab_size is ", V, ", expected at least ", kLatentVocabSize);
  }
  if (N > 0 && engine.position() + static_cast<int64_t>(prompt.size()) + N + 2 > engine.context()) {
    throw_error("generate: the prompt (", prompt.size(), " tokens), <bot>, ", N, " latent steps and <eot> exceed the "
                "context of ", engine.context());
  }
  Sampler sampler(options.sampler);
  GenerateResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<float> logits(V);

  float* const head_out = options.knn_exit ? nullptr : logits.data();
  auto t0 = Clock::now();
  if (N == 0) {
    engine.forward(prompt, head_out, false);
  } else {  // prompt <bot>, N thoughts, <eot>: the logits come from <eot>'s position
    std::vector<int32_t> with_bot(prompt.begin(), prompt.end());
    with_bot.push_back(kTokenBot);
    engine.forward(with_bot, nullptr, false);
    r.prompt_s = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    const float scale = options.latent_scale > 0 ? options.latent_scale
                                                 : static_cast<float>(embedding_row_rms(engine.source()));
    run_latent_steps(engine, N, scale);
    engine.step_token(kTokenEot, head_out);
    r.latent_steps = N;
    r.latent_s = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  if (N == 0) r.prompt_s = std::chrono::duration<double>(Clock::now() - t0).count();

  std::string pending;  // generated text not yet delivered
  r.stop_reason = "length";
  for (int64_t i = 0; i < options.max_tokens; ++i) {
    const auto ts = Clock::now();
    int32_t id = 0;
    if (options.knn_exit) {
      float score = 0;
      engine.knn_exit(&id, &score, 1);
    } else {
      id = sampler.sample(logits.data(), V, history);
    }
    r.sample_s += std::chrono::duration<double>(Clock::now() - ts).count();
    const bool end = options.end_ids.empty() ? id == kTokenEos
                                             : std::find(options.end_ids.begin(), options.end_ids.end(), id) != options.end_ids.end();
    if (options.stop_at_eos && end) {
      r.stop_reason = "eos";
      break;
    }
    r.tokens.push_back(id);
    history.push_back(id);
    pending += options.tokenizer && id < options.tokenizer->vocab_size() ? options.tokenizer->token_bytes(id) : token_bytes(id);
    size_t cut = std::string::npos;  // a stop string completed: deliver what precedes it and stop
    for (const auto& s : options.stop) {
      const size_t at = pending.find(s);
      if (at != std::string::npos) cut = std::min(cut, at);
    }
    const bool stopped = cut != std::string::npos;
    if (stopped) pending.resize(cut);
    const size_t emit = stopped ? pending.size() : pending.size() - stop_string_hold(pending, options.stop);
    const std::string piece = pending.substr(0, emit);
    pending.erase(0, emit);
    r.text += piece;
    const bool go_on = !on_token || on_token(id, piece);
    if (stopped) {
      r.stop_reason = "stop";
      break;
    }
    if (!go_on) {
      r.stop_reason = "callback";
      break;
    }
    if (i + 1 == options.max_tokens) break;
    if (engine.position() >= engine.context()) {
      r.stop_reason = "context";
      break;
    }
    const auto td = Clock::now();
    engine.forward(std::span<const int32_t>(&id, 1), options.knn_exit ? nullptr : logits.data(), false);
    r.decode_s += std::chrono::duration<double>(Clock::now() - td).count();
    ++r.decode_steps;
  }
  if (!pending.empty()) {
    r.text += pending;
    if (on_token) on_token(-1, pending);
  }
  return r;
}

GenerateResult generate(Engine& engine, std::span<const int32_t> prompt, const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text) {
  return generate_tokens(engine, prompt, options, [&](int32_t, std::string_view piece) {
    if (!piece.empty()) on_text(piece);
    return true;
  });
}

}  // namespace tritter
