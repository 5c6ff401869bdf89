#include "serve/openai.h"

#include <random>

#include "core/error.h"
#include "text/tokenizer.h"

namespace tritter::serve {

Json error_body(int status, const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  Json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  else e["code"] = status;
  return Json{{"error", e}};
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json parse_body(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& what) {
  throw ApiError(400, "'" + param + "': " + what, "invalid_request_error", param);
}

double number(const Json& b, const char* key, double def, double lo, double hi) {
  if (!b.contains(key) || b[key].is_null()) return def;
  if (!b[key].is_number()) bad(key, "expected a number, found " + std::string(b[key].type_name()));
  const double v = b[key].get<double>();
  if (!(v >= lo && v <= hi)) bad(key, "found " + b[key].dump() + ", expected " + std::to_string(lo) + " .. " +
                                          std::to_string(hi));
  return v;
}

int64_t integer(const Json& b, const char* key, int64_t def, int64_t lo, int64_t hi) {
  if (!b.contains(key) || b[key].is_null()) return def;
  if (!b[key].is_number_integer()) bad(key, "expected an integer, found " + b[key].dump());
  const int64_t v = b[key].get<int64_t>();
  if (v < lo || v > hi) bad(key, "found " + std::to_string(v) + ", expected " + std::to_string(lo) + " .. " +
                                     std::to_string(hi));
  return v;
}

bool boolean(const Json& b, const char* key, bool def) {
  if (!b.contains(key) || b[key].is_null()) return def;
  if (!b[key].is_boolean()) bad(key, "expected true or false, found " + b[key].dump());
  return b[key].get<bool>();
}

std::vector<int32_t> ids_of(const Json& a, const char* param, int64_t V) {
  std::vector<int32_t> ids;
  for (const Json& t : a) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= V) {
      bad(param, "token ids must be integers in 0 .. " + std::to_string(V - 1));
    }
    ids.push_back(t.get<int32_t>());
  }
  return ids;
}

std::string content_text(const Json& c) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_null()) return "";
  if (!c.is_array()) bad("messages", "content must be a string or an array of text parts");
  std::string s;
  for (const Json& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      bad("messages", "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
    }
    s += part["text"].get<std::string>();
  }
  return s;
}

}  // namespace

const Tokenizer& tokenizer_of(const ApiLimits& L) {
  static const std::unique_ptr<Tokenizer> bytes = make_byte_tokenizer();
  return L.tokenizer ? *L.tokenizer : *bytes;
}

std::vector<int32_t> encode_text(const Tokenizer& t, std::string_view text, bool bos) {
  std::vector<int32_t> ids;
  if (bos && t.special_ids().bos >= 0) ids.push_back(t.special_ids().bos);
  const std::vector<int32_t> body = t.encode(text, false);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::string decode_ids(const Tokenizer& t, std::span<const int32_t> ids) {
  std::vector<int32_t> known;  // a model's vocabulary may be padded past its tokenizer's
  known.reserve(ids.size());
  for (int32_t id : ids) {
    if (id >= 0 && id < t.vocab_size()) known.push_back(id);
  }
  return t.decode(known, true);
}

std::string token_text(const Tokenizer& t, int32_t id) {
  return id >= 0 && id < t.vocab_size() ? t.token_bytes(id) : std::string();
}

std::string token_label(const Tokenizer& t, int32_t id) {
  if (id < 0 || id >= t.vocab_size()) return "<id " + std::to_string(id) + ">";
  std::string b = t.token_bytes(id);
  return b.empty() ? t.token_piece(id) : b;
}

int resolve_model(const Json& b, const ApiLimits& L) {
  if (!b.contains("model") || b["model"].is_null()) return -1;
  if (!b["model"].is_string()) bad("model", "expected a string");
  const std::string model = b["model"].get<std::string>();
  if (model == L.model_id) return -1;
  for (size_t i = 0; i < L.adapters.size(); ++i) {
    if (model == L.adapters[i]) return static_cast<int>(i);
  }
  std::string served = "'" + L.model_id + "'";
  for (const auto& a : L.adapters) served += ", '" + a + "'";
  throw ApiError(404, "The model '" + model + "' does not exist (this server serves " + served + ")",
                 "invalid_request_error", "model", "model_not_found");
}

GenerationRequest parse_generation(const Json& b, bool chat, const ApiLimits& L) {
  GenerationRequest r;
  r.chat = chat;
  r.adapter = resolve_model(b, L);
  if (b.contains("model") && b["model"].is_string()) r.model = b["model"].get<std::string>();
  const int64_t V = L.vocab_size;
  const Tokenizer& tok = tokenizer_of(L);
  if (chat) {
    if (!L.chat_unavailable.empty()) throw ApiError(400, L.chat_unavailable, "invalid_request_error", "messages");
    if (!b.contains("messages") || !b["messages"].is_array() || b["messages"].empty()) {
      bad("messages", "expected a non-empty array of {role, content}");
    }
    std::vector<ChatMessage> msgs;
    for (const Json& m : b["messages"]) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) bad("messages", "each needs a string role");
      msgs.push_back({m["role"].get<std::string>(), content_text(m.value("content", Json()))});
    }
    static const ChatTemplate builtin(builtin_chat_template());
    ChatTemplateOptions co;
    co.bos_token = L.bos_token;
    co.eos_token = L.eos_token;
    try {
      r.prompt_text = (L.chat ? *L.chat : builtin).apply(msgs, co);
    } catch (const Error& e) {  // the template's raise_exception ("roles must alternate"), a bad construct
      throw ApiError(400, e.what(), "invalid_request_error", "messages");
    }
    r.stop = L.chat ? L.chat_stop : std::vector<std::string>{builtin_chat_stop()};
    // A model's template writes <bos> itself where the model wants one; only the built-in format gets it added
    // (as `tritter generate --chat` does).
    r.prompt = encode_text(tok, r.prompt_text, L.add_bos && !L.chat);
  } else {
    if (!b.contains("prompt")) bad("prompt", "required");
    const Json& p = b["prompt"];
    if (p.is_string()) {
      r.prompt_text = p.get<std::string>();
      r.prompt = encode_text(tok, r.prompt_text, L.add_bos);
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt_text = p[0].get<std::string>();
      r.prompt = encode_text(tok, r.prompt_text, L.add_bos);
    } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
      r.prompt = ids_of(p, "prompt", V);
      r.prompt_text = decode_ids(tok, r.prompt);
    } else {
      bad("prompt", "expected a string, an array of one string or an array of token ids");
    }
    r.echo = boolean(b, "echo", false);
  }
  if (r.prompt.empty()) bad(chat ? "messages" : "prompt", "empty prompt");
  if (static_cast<int64_t>(r.prompt.size()) >= L.context) {
    throw ApiError(400, "This model's maximum context length is " + std::to_string(L.context) +
                            " tokens. However, your prompt has " + std::to_string(r.prompt.size()) +
                            " tokens, leaving none to generate.",
                   "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded");
  }
  const char* mt = chat && b.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  r.max_tokens = integer(b, mt, L.default_max_tokens, 1, L.max_tokens);
  r.n = static_cast<int>(integer(b, "n", 1, 1, L.max_n));
  r.stream = boolean(b, "stream", false);
  r.ignore_eos = boolean(b, "ignore_eos", false);
  if (b.contains("stream_options") && !b["stream_options"].is_null()) {
    if (!b["stream_options"].is_object()) bad("stream_options", "expected an object");
    r.include_usage = boolean(b["stream_options"], "include_usage", false);
  }
  const SamplingDefaults& d = L.sampling;
  r.sampler.temperature = static_cast<float>(number(b, "temperature", d.temperature, 0.0, 2.0));
  r.sampler.top_p = static_cast<float>(number(b, "top_p", d.top_p, 0.0, 1.0));
  if (r.sampler.top_p <= 0) r.sampler.top_p = 1e-6f;  // top_p 0: only the most likely token
  r.sampler.top_k = static_cast<int>(integer(b, "top_k", d.top_k, 0, 1 << 20));
  r.sampler.min_p = static_cast<float>(number(b, "min_p", 0.0, 0.0, 1.0));
  r.sampler.repeat_penalty = static_cast<float>(number(b, "repeat_penalty", d.repeat_penalty, 0.01, 10.0));
  number(b, "presence_penalty", 0, -2, 2);  // accepted, not applied (docs/serve.md)
  number(b, "frequency_penalty", 0, -2, 2);
  if (b.contains("seed") && !b["seed"].is_null()) {
    if (!b["seed"].is_number_integer()) bad("seed", "expected an integer");
    r.sampler.seed = static_cast<uint64_t>(b["seed"].get<int64_t>());
    r.seeded = true;
  } else {
    r.sampler.seed = std::random_device{}();
  }
  if (b.contains("stop") && !b["stop"].is_null()) {
    const Json& s = b["stop"];
    std::vector<std::string> user;
    if (s.is_string()) {
      user.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 4) {
      for (const Json& x : s) {
        if (!x.is_string()) bad("stop", "expected strings");
        user.push_back(x.get<std::string>());
      }
    } else {
      bad("stop", "expected a string or an array of at most 4 strings");
    }
    for (const auto& x : user) {
      if (x.empty()) bad("stop", "empty stop string");
      r.stop.push_back(x);
    }
  }
  if (chat) {
    if (boolean(b, "logprobs", false)) r.top_logprobs = static_cast<int>(integer(b, "top_logprobs", 0, 0, 20));
  } else if (b.contains("logprobs") && !b["logprobs"].is_null()) {
    r.top_logprobs = static_cast<int>(integer(b, "logprobs", 0, 0, 5));
  }
  return r;
}

std::vector<std::vector<int32_t>> parse_embedding_input(const Json& b, const ApiLimits& L) {
  resolve_model(b, L);  // the caller takes the adapter set from it too
  if (!b.contains("input")) bad("input", "required");
  const Json& in = b["input"];
  std::vector<std::vector<int32_t>> out;
  auto text = [&](const std::string& s) { out.push_back(encode_text(tokenizer_of(L), s, false)); };
  if (in.is_string()) {
    text(in.get<std::string>());
  } else if (in.is_array() && !in.empty() && in[0].is_number_integer()) {
    out.push_back(ids_of(in, "input", L.vocab_size));
  } else if (in.is_array() && !in.empty()) {
    for (const Json& x : in) {
      if (x.is_string()) text(x.get<std::string>());
      else if (x.is_array()) out.push_back(ids_of(x, "input", L.vocab_size));
      else bad("input", "expected strings or arrays of token ids");
    }
  } else {
    bad("input", "expected a string, an array of strings or token ids");
  }
  if (out.size() > 256) bad("input", "at most 256 inputs");
  for (const auto& ids : out) {
    if (ids.empty()) bad("input", "empty input");
    if (static_cast<int64_t>(ids.size()) > L.context) {
      throw ApiError(400, "an input has " + std::to_string(ids.size()) + " tokens, more than the context of " +
                              std::to_string(L.context), "invalid_request_error", "input", "context_length_exceeded");
    }
  }
  return out;
}

Json logprobs_json(const std::vector<Event>& tokens, bool chat, const Tokenizer& t) {
  auto piece = [&](int32_t id) { return token_label(t, id); };
  auto bytes = [](const std::string& s) {
    Json a = Json::array();
    for (unsigned char c : s) a.push_back(static_cast<int>(c));
    return a;
  };
  if (chat) {
    Json content = Json::array();
    for (const Event& e : tokens) {
      if (e.token < 0) continue;
      Json top = Json::array();
      for (const auto& t : e.top) top.push_back({{"token", piece(t.token)}, {"logprob", t.logprob}, {"bytes", bytes(piece(t.token))}});
      content.push_back({{"token", piece(e.token)}, {"logprob", e.logprob}, {"bytes", bytes(piece(e.token))},
                         {"top_logprobs", top}});
    }
    return Json{{"content", content}, {"refusal", nullptr}};
  }
  Json toks = Json::array(), lps = Json::array(), tops = Json::array(), offs = Json::array();
  size_t off = 0;
  for (const Event& e : tokens) {
    if (e.token < 0) continue;
    toks.push_back(piece(e.token));
    lps.push_back(e.logprob);
    Json top = Json::object();
    for (const auto& t : e.top) top[piece(t.token)] = t.logprob;
    tops.push_back(top);
    offs.push_back(off);
    off += token_text(t, e.token).size();
  }
  return Json{{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

Json usage_json(int64_t prompt, int64_t completion, int64_t cached) {
  return Json{{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion},
              {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

}  // namespace tritter::serve
