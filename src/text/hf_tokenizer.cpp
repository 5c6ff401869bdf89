// tokenizer.json → a BPE Tokenizer. The pipeline follows Hugging Face's: split out added tokens (longest match
// first, lstrip/rstrip absorbing neighbouring whitespace) → normalizer per remaining section → pre-tokenizer pieces →
// BPE per piece (lowest merge rank first, leftmost among equal ranks, as tokenizers' word.rs) → post-processor
// template. A per-tokenizer cache of piece → ids (behind a mutex, as tokenizers' BPE cache) makes repeated words free.
#include "text/hf_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "text/hf_tokenizer_parts.h"
#include "text/unicode.h"

namespace tritter {

namespace {

using nlohmann::json;
using namespace hf;

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(what, " '", path, "': cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(TokenizerSpec spec) : s_(std::move(spec)) {}

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::string sanitized;  // only when the text holds invalid UTF-8
    const std::string_view clean = unicode::is_valid_utf8(text) ? text : std::string_view(sanitized = unicode::sanitize_utf8(text));
    std::vector<int32_t> body;
    body.reserve(clean.size() / 3 + 4);
    Scratch scratch;
    bool first = true;
    split_added(clean, [&](std::string_view section, int32_t added_id) {
      if (added_id >= 0) {
        body.push_back(added_id);
      } else if (!section.empty()) {
        encode_section(section, first, body, scratch);
      }
      first = false;
    });
    if (!add_special) return body;
    std::vector<int32_t> ids;
    ids.reserve(body.size() + s_.template_prefix.size() + s_.template_suffix.size());
    ids.insert(ids.end(), s_.template_prefix.begin(), s_.template_prefix.end());
    ids.insert(ids.end(), body.begin(), body.end());
    ids.insert(ids.end(), s_.template_suffix.begin(), s_.template_suffix.end());
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const int32_t id = ids[i];
      if (id < 0 || id >= vocab_size()) throw_error("decode: token ", i, ": found id ", id, ", expected 0 .. ", vocab_size() - 1);
      if (skip_special && is_special(id)) continue;
      tokens.push_back(s_.pieces[id]);
    }
    return unicode::sanitize_utf8(run_decoder(s_, std::move(tokens)));
  }

  std::string token_piece(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) throw_error("token_piece: found id ", id, ", expected 0 .. ", vocab_size() - 1);
    return s_.pieces[id];
  }
  std::string token_bytes(int32_t id) const override {
    if (id < 0 || id >= vocab_size() || is_special(id)) return "";
    return piece_bytes(s_, id);
  }
  bool is_special(int32_t id) const override { return id >= 0 && id < vocab_size() && s_.special[id]; }
  std::optional<int32_t> token_id(std::string_view piece) const override {
    const auto it = s_.vocab.find(std::string(piece));
    if (it != s_.vocab.end()) return it->second;
    for (const auto& a : s_.added) if (a.content == piece) return a.id;
    return std::nullopt;
  }
  const SpecialTokenIds& special_ids() const override { return s_.ids; }
  int64_t vocab_size() const override { return static_cast<int64_t>(s_.pieces.size()); }
  std::string kind() const override { return s_.byte_level ? "bpe-byte-level" : "bpe-sentencepiece"; }

 private:
  struct Scratch {
    std::vector<std::string_view> pieces;
    std::vector<Symbol> symbols;
    std::string mapped;
  };

  // Calls f(section, -1) for text between added tokens and f("", id) for each added token, in order.
  template <typename F>
  void split_added(std::string_view text, F&& f) const {
    size_t start = 0, i = 0;
    while (i < text.size()) {
      if (!s_.added_trie.may_start(static_cast<uint8_t>(text[i]))) {
        ++i;
        continue;
      }
      size_t length = 0;
      const int32_t k = s_.added_trie.longest(text, i, length);
      if (k < 0) {
        ++i;
        continue;
      }
      const AddedToken* hit = &s_.added[static_cast<size_t>(k)];
      size_t left = i, right = i + hit->content.size();
      if (hit->lstrip) while (left > start && unicode::is_space(static_cast<unsigned char>(text[left - 1]))) --left;
      if (hit->rstrip) while (right < text.size() && unicode::is_space(static_cast<unsigned char>(text[right]))) ++right;
      if (left > start) f(text.substr(start, left - start), -1);
      f(std::string_view(), hit->id);
      start = i = right;
    }
    if (start < text.size()) f(text.substr(start), -1);
  }

  void encode_section(std::string_view section, bool first, std::vector<int32_t>& out, Scratch& sc) const {
    std::string normalized;
    const std::string_view text = run_normalizer(s_, section, normalized);
    std::string pretokenized;
    sc.pieces.clear();
    pre_tokenize(s_, text, first, pretokenized, sc.pieces);
    for (std::string_view piece : sc.pieces) encode_piece(piece, out, sc);
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>& out, Scratch& sc) const {
    if (piece.empty()) return;
    // One byte of a byte-level file is its one-character piece (nothing to merge); with ignore_merges a piece in
    // the vocabulary is that token. Both cost less than the cache's lock and hash.
    if (s_.byte_level && piece.size() == 1 && s_.byte_ids[static_cast<uint8_t>(piece[0])] >= 0) {
      out.push_back(s_.byte_ids[static_cast<uint8_t>(piece[0])]);
      return;
    }
    if (s_.ignore_merges) {
      if (const int32_t id = whole_piece_id(s_, piece, sc.mapped); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    const bool cacheable = piece.size() <= 64;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto it = cache_.find(piece);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const size_t before = out.size();
    bpe_piece(s_, piece, out, sc.symbols, sc.mapped);
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (cache_.size() >= kCacheEntries) cache_.clear();
      cache_.emplace(std::string(piece), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(before), out.end()));
    }
  }

  static constexpr size_t kCacheEntries = 1 << 16;
  TokenizerSpec s_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> parse_tokenizer_json(std::string_view text, const std::string& where) {
  return std::make_unique<HfTokenizer>(parse_spec(text, where, nullptr));
}

std::unique_ptr<Tokenizer> parse_tokenizer_json(std::string_view text, const std::string& where,
                                                const TokenizerConfig& config) {
  return std::make_unique<HfTokenizer>(parse_spec(text, where, &config));
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path) {
  return parse_tokenizer_json(read_text_file(path, "tokenizer.json"), path);
}

TokenizerConfig parse_tokenizer_config(std::string_view text, const std::string& where) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw_error(where, ": not valid JSON (byte ", e.byte, "): ", e.what());
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    throw_error(where, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) throw_error(where, ": found a JSON ", j.type_name(), ", expected an object");
  TokenizerConfig c;
  const auto token_text = [&](const char* key) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return "";
    const json& v = j[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    throw_error(where, ": ", key, ": found a JSON ", v.type_name(), ", expected a string or {\"content\": ...}");
  };
  c.bos_token = token_text("bos_token");
  c.eos_token = token_text("eos_token");
  c.pad_token = token_text("pad_token");
  c.unk_token = token_text("unk_token");
  const auto flag = [&](const char* key, bool& value) {
    if (!j.contains(key) || j[key].is_null()) return false;
    if (!j[key].is_boolean()) throw_error(where, ": ", key, ": found a JSON ", j[key].type_name(), ", expected true or false");
    value = j[key].get<bool>();
    return true;
  };
  c.has_add_bos_token = flag("add_bos_token", c.add_bos_token);
  flag("add_eos_token", c.add_eos_token);
  if (j.contains("chat_template") && !j["chat_template"].is_null()) {
    const json& t = j["chat_template"];
    if (t.is_string()) {
      c.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
      for (size_t k = 0; k < t.size(); ++k) {
        if (!t[k].is_object() || !t[k].contains("template") || !t[k]["template"].is_string()) {
          throw_error(where, ": chat_template[", k, "]: expected {\"name\": ..., \"template\": \"...\"}");
        }
        if (c.chat_template.empty() || t[k].value("name", "") == "default") c.chat_template = t[k]["template"].get<std::string>();
      }
    } else {
      throw_error(where, ": chat_template: found a JSON ", t.type_name(), ", expected a string");
    }
  }
  return c;
}

TokenizerConfig load_tokenizer_config(const std::string& path) {
  return parse_tokenizer_config(read_text_file(path, "tokenizer_config.json"), path);
}

std::unique_ptr<Tokenizer> load_hf_tokenizer_dir(const std::string& dir) {
  const std::string json_path = dir + "/tokenizer.json", config_path = dir + "/tokenizer_config.json";
  std::optional<TokenizerConfig> config;
  if (std::ifstream(config_path).good()) config = load_tokenizer_config(config_path);
  return std::make_unique<HfTokenizer>(
      parse_spec(read_text_file(json_path, "tokenizer.json"), json_path, config ? &*config : nullptr));
}

}  // namespace tritter
