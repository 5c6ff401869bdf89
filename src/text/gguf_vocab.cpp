#include "text/gguf_vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "text/byte_tokenizer.h"
#include "text/hf_tokenizer.h"
#include "text/unicode.h"

namespace tritter {

namespace {

using json = nlohmann::json;  // map-based: a 128k-entry vocab object needs O(log n) inserts

GgufTokenType type_of(const GgufVocab& v, size_t id) {
  return id < v.types.size() ? static_cast<GgufTokenType>(v.types[id]) : GgufTokenType::Normal;
}

void check_lengths(const GgufVocab& v) {
  if (v.tokens.empty()) throw_error(v.where, ": tokenizer.ggml.tokens: found an empty array, expected the vocabulary");
  if (!v.types.empty() && v.types.size() != v.tokens.size()) {
    throw_error(v.where, ": tokenizer.ggml.token_type: found ", v.types.size(), " entries, expected ", v.tokens.size(),
                " (one per token)");
  }
  if (!v.scores.empty() && v.scores.size() != v.tokens.size()) {
    throw_error(v.where, ": tokenizer.ggml.scores: found ", v.scores.size(), " entries, expected ", v.tokens.size(),
                " (one per token)");
  }
  const auto n = static_cast<int64_t>(v.tokens.size());
  const std::pair<const char*, int32_t> ids[] = {{"bos_token_id", v.bos}, {"eos_token_id", v.eos},
                                                 {"unknown_token_id", v.unk}, {"padding_token_id", v.pad}};
  for (const auto& [key, id] : ids) {
    if (id >= n) throw_error(v.where, ": tokenizer.ggml.", key, ": found ", id, ", expected an id below ", n);
  }
}

// The pre-tokenizer llama.cpp's tokenizer.ggml.pre names, as tokenizer.json spells it.
json byte_level_pre(const GgufVocab& v) {
  const std::string& p = v.pre;
  auto split = [](const char* regex) {
    return json{{"type", "Sequence"},
                {"pretokenizers",
                 json::array({json{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                              json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}})}};
  };
  if (p == "llama-bpe" || p == "llama3" || p == "llama-v3" || p == "smaug-bpe" || p == "dbrx") {
    return split(R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)");
  }
  if (p == "qwen2" || p == "deepseek-r1-qwen") {
    return split(R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)");
  }
  if (p.empty() || p == "default" || p == "gpt2" || p == "gpt-2") {
    return json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  }
  throw_error(v.where, ": tokenizer.ggml.pre: found '", p, "', expected one of llama-bpe (Llama 3), qwen2, gpt2, default");
}

// SentencePiece BPE as llama.cpp runs it: the adjacent pair whose concatenation is a token with the highest score
// merges first. As tokenizer.json merges: every split of a piece into two pieces, ranked by the piece's score
// (higher first; equal scores by id).
json spm_merges(const GgufVocab& v, const std::unordered_map<std::string, int32_t>& ids) {
  struct M { float score; int32_t id; int32_t left, right; size_t cut; };
  std::vector<M> ms;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const GgufTokenType t = type_of(v, id);
    if (t != GgufTokenType::Normal && t != GgufTokenType::UserDefined) continue;
    const std::string& s = v.tokens[id];
    for (size_t cut = 1; cut < s.size(); ++cut) {
      if ((static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) continue;  // inside a UTF-8 sequence
      const auto a = ids.find(s.substr(0, cut)), b = ids.find(s.substr(cut));
      if (a == ids.end() || b == ids.end()) continue;
      ms.push_back({v.scores.empty() ? -static_cast<float>(id) : v.scores[id], static_cast<int32_t>(id), a->second, b->second, cut});
    }
  }
  std::stable_sort(ms.begin(), ms.end(), [](const M& x, const M& y) {
    if (x.score != y.score) return x.score > y.score;
    if (x.id != y.id) return x.id < y.id;
    return x.left < y.left;
  });
  json out = json::array();
  for (const M& m : ms) out.push_back(json::array({v.tokens[m.id].substr(0, m.cut), v.tokens[m.id].substr(m.cut)}));
  return out;
}

}  // namespace

bool gguf_vocab_is_byte_tokenizer(const GgufVocab& v) {
  if (v.model == "tritter-byte") return true;
  static const char* kSpecials[kTokenSpecialCount] = {"<pad>", "<bos>", "<eos>", "<unk>", "<text>", "<code>",
                                                      "<image>", "<audio>"};
  if (v.model != "gpt2" || !v.merges.empty() || v.tokens.size() < static_cast<size_t>(kByteVocabSize)) return false;
  for (int i = 0; i < kTokenSpecialCount; ++i) if (v.tokens[static_cast<size_t>(i)] != kSpecials[i]) return false;
  for (int b = 0; b < 256; ++b) {
    std::string piece;
    unicode::append_utf8(piece, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
    if (v.tokens[static_cast<size_t>(b + kTokenByteOffset)] != piece) return false;
  }
  return true;
}

std::string gguf_vocab_tokenizer_json(const GgufVocab& v) {
  check_lengths(v);
  const bool spm = v.model == "llama";
  if (!spm && v.model != "gpt2") {
    throw_error(v.where, ": tokenizer.ggml.model: found '", v.model, "', expected 'gpt2' (byte-level BPE) or 'llama' ",
                "(SentencePiece BPE)");
  }
  json vocab = json::object();
  std::unordered_map<std::string, int32_t> ids;
  json added = json::array();
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const std::string& s = v.tokens[id];
    const GgufTokenType t = type_of(v, id);
    if (ids.emplace(s, static_cast<int32_t>(id)).second) vocab[s] = id;  // a repeated piece keeps its first id
    const bool control = t == GgufTokenType::Control || t == GgufTokenType::Unknown;
    if ((control || t == GgufTokenType::UserDefined) && !s.empty()) {
      added.push_back(json{{"id", id}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                           {"normalized", !control}, {"special", control}});
    }
  }
  json model{{"type", "BPE"}, {"dropout", nullptr}, {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}};
  json root{{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  if (spm) {
    model["unk_token"] = v.unk >= 0 ? json(v.tokens[static_cast<size_t>(v.unk)]) : json(nullptr);
    model["fuse_unk"] = true;
    model["byte_fallback"] = true;
    json norms = json::array();
    if (v.add_space_prefix) norms.push_back(json{{"type", "Prepend"}, {"prepend", "\u2581"}});
    norms.push_back(json{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}});
    root["normalizer"] = json{{"type", "Sequence"}, {"normalizers", norms}};
    root["pre_tokenizer"] = nullptr;
    json decs = json::array({json{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                             json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
    if (v.add_space_prefix) decs.push_back(json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    root["decoder"] = json{{"type", "Sequence"}, {"decoders", decs}};
    model["merges"] = spm_merges(v, ids);
  } else {
    model["unk_token"] = nullptr;
    root["normalizer"] = nullptr;
    root["pre_tokenizer"] = byte_level_pre(v);
    root["decoder"] = json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    json merges = json::array();
    for (size_t r = 0; r < v.merges.size(); ++r) {
      const std::string& m = v.merges[r];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos || sp + 1 >= m.size() || m.find(' ', sp + 1) != std::string::npos) {
        throw_error(v.where, ": tokenizer.ggml.merges[", r, "]: found '", m.substr(0, 60), "', expected two pieces ",
                    "separated by one space");
      }
      const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
      if (!ids.count(a) || !ids.count(b) || !ids.count(a + b)) {
        throw_error(v.where, ": tokenizer.ggml.merges[", r, "]: found '", m.substr(0, 60), "', expected pieces whose ",
                    "parts and concatenation are tokens");
      }
      merges.push_back(json::array({a, b}));
    }
    model["merges"] = merges;
  }
  model["vocab"] = vocab;
  root["model"] = model;
  const bool bos = v.has_add_bos ? v.add_bos : spm;
  if ((bos && v.bos >= 0) || (v.add_eos && v.eos >= 0)) {
    json single = json::array(), specials = json::object();
    auto special = [&](int32_t id) {
      const std::string& s = v.tokens[static_cast<size_t>(id)];
      single.push_back(json{{"SpecialToken", {{"id", s}, {"type_id", 0}}}});
      specials[s] = json{{"id", s}, {"ids", json::array({id})}, {"tokens", json::array({s})}};
    };
    if (bos && v.bos >= 0) special(v.bos);
    single.push_back(json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (v.add_eos && v.eos >= 0) special(v.eos);
    root["post_processor"] = json{{"type", "TemplateProcessing"}, {"single", single}, {"pair", single},
                                  {"special_tokens", specials}};
  } else {
    root["post_processor"] = nullptr;
  }
  return root.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::unique_ptr<Tokenizer> make_gguf_tokenizer(const GgufVocab& v) {
  if (gguf_vocab_is_byte_tokenizer(v)) return make_byte_tokenizer();
  TokenizerConfig config;
  auto text = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < v.tokens.size() ? v.tokens[static_cast<size_t>(id)] : std::string(); };
  config.bos_token = text(v.bos);
  config.eos_token = text(v.eos);
  config.pad_token = text(v.pad);
  config.unk_token = text(v.unk);
  return parse_tokenizer_json(gguf_vocab_tokenizer_json(v), v.where + " (tokenizer.ggml.*)", config);
}

GgufVocab gguf_vocab_from_tokenizer_json(const std::string& text, const std::string& where,
                                         const TokenizerConfig* config) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_error("tokenizer.json '", where, "': not valid JSON: ", e.what());
  }
  auto fail = [&](const std::string& field, const std::string& what) {
    throw_error("tokenizer.json '", where, "': ", field, ": ", what, " (no GGUF spelling)");
  };
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail("model", "missing");
  const json& model = j["model"];
  if (model.value("type", "BPE") != "BPE") fail("model.type", "found '" + model.value("type", "") + "', expected 'BPE'");
  GgufVocab v;
  v.where = where;
  const bool spm = model.value("byte_fallback", false) ||
                   (j.contains("decoder") && j["decoder"].dump().find("\"Metaspace\"") != std::string::npos) ||
                   (j.contains("normalizer") && j["normalizer"].dump().find("\u2581") != std::string::npos);
  v.model = spm ? "llama" : "gpt2";
  if (!spm) {
    const std::string pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"].dump() : "";
    if (pre.find("\\\\p{N}{1,3}") != std::string::npos) v.pre = "llama-bpe";
    else if (pre.find("Split") != std::string::npos && pre.find("\\\\p{N}|") != std::string::npos) v.pre = "qwen2";
    else if (pre.find("ByteLevel") != std::string::npos &&
             (pre.find("Split") == std::string::npos || pre.find(" ?\\p{N}+") != std::string::npos)) v.pre = "gpt2";
    else fail("pre_tokenizer", "found " + pre.substr(0, 80) + ", expected the GPT-2, Llama 3 or Qwen2 split");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab", "missing");
  size_t n = 0;
  for (const auto& [piece, id] : model["vocab"].items()) {
    if (!id.is_number_unsigned()) fail("model.vocab", "an id that is not an integer >= 0");
    n = std::max(n, id.get<size_t>() + 1);
  }
  const json added = j.value("added_tokens", json::array());
  for (const auto& a : added) n = std::max(n, a.value("id", size_t{0}) + 1);
  v.tokens.assign(n, "");
  v.types.assign(n, static_cast<int32_t>(GgufTokenType::Unused));
  for (const auto& [piece, id] : model["vocab"].items()) {
    v.tokens[id.get<size_t>()] = piece;
    const bool byte = piece.size() == 6 && piece.rfind("<0x", 0) == 0 && piece[5] == '>';
    v.types[id.get<size_t>()] = static_cast<int32_t>(spm && byte ? GgufTokenType::Byte : GgufTokenType::Normal);
  }
  for (const auto& a : added) {
    const size_t id = a.value("id", size_t{0});
    v.tokens[id] = a.value("content", "");
    v.types[id] = static_cast<int32_t>(a.value("special", false) ? GgufTokenType::Control : GgufTokenType::UserDefined);
  }
  for (size_t id = 0; id < n; ++id) {
    if (v.tokens[id].empty()) v.tokens[id] = "[PAD" + std::to_string(id) + "]";  // a gap in the ids
  }
  std::vector<std::string> merges;
  for (const auto& m : model.value("merges", json::array())) {
    merges.push_back(m.is_string() ? m.get<std::string>() : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
  }
  if (spm) {
    std::unordered_map<std::string, int32_t> ids;
    for (size_t id = 0; id < n; ++id) ids.emplace(v.tokens[id], static_cast<int32_t>(id));
    v.scores.assign(n, 0.0f);
    std::vector<uint8_t> formed(n, 0);
    for (size_t r = 0; r < merges.size(); ++r) {
      const size_t sp = merges[r].find(' ');
      if (sp == std::string::npos) fail("model.merges[" + std::to_string(r) + "]", "expected \"a b\"");
      const auto it = ids.find(merges[r].substr(0, sp) + merges[r].substr(sp + 1));
      if (it == ids.end() || formed[it->second]) continue;
      formed[it->second] = 1;
      v.scores[it->second] = -static_cast<float>(r + 1);
    }
    v.add_space_prefix = j.contains("normalizer") && j["normalizer"].dump().find("Prepend") != std::string::npos;
  } else {
    v.merges = std::move(merges);
  }
  auto id_of = [&](const std::string& t) {
    for (size_t id = 0; id < n; ++id) if (!t.empty() && v.tokens[id] == t) return static_cast<int32_t>(id);
    return int32_t{-1};
  };
  if (config) {
    v.bos = id_of(config->bos_token);
    v.eos = id_of(config->eos_token);
    v.pad = id_of(config->pad_token);
    v.unk = id_of(config->unk_token);
    v.has_add_bos = config->has_add_bos_token;
    v.add_bos = config->add_bos_token;
    v.add_eos = config->add_eos_token;
  }
  if (v.unk < 0 && model.contains("unk_token") && model["unk_token"].is_string()) v.unk = id_of(model["unk_token"].get<std::string>());
  // The tokenizer's own choice of bos/eos when the config names none (the same rule as tokenizer.json's reader).
  const auto tok = parse_tokenizer_json(text, where);
  if (v.bos < 0) v.bos = tok->special_ids().bos;
  if (v.eos < 0) v.eos = tok->special_ids().eos;
  if (v.pad < 0) v.pad = tok->special_ids().pad;
  return v;
}

}  // namespace tritter
