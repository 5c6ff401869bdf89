// tokenizer.json → TokenizerSpec. Every error names the file and the JSON path of the field, what was found and what
// was expected; an unsupported kind (a WordPiece model, an unknown regex) is an error, never a silent fallback.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/hf_tokenizer_parts.h"
#include "text/unicode.h"

namespace tritter::hf {

namespace {

using nlohmann::json;

struct Ctx {
  const std::string& where;
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw_error("tokenizer.json '", where, "': ", path, ": ", what);
  }
  const json& need(const json& obj, const char* key, const std::string& path) const {
    if (!obj.is_object()) fail(path, std::string("found a JSON ") + obj.type_name() + ", expected an object");
    const auto it = obj.find(key);
    if (it == obj.end()) fail(path + "." + key, "missing");
    return *it;
  }
  std::string str(const json& v, const std::string& path) const {
    if (!v.is_string()) fail(path, std::string("found a JSON ") + v.type_name() + ", expected a string");
    return v.get<std::string>();
  }
  bool flag(const json& obj, const char* key, bool fallback, const std::string& path) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(path + "." + key, std::string("found a JSON ") + it->type_name() + ", expected true or false");
    return it->get<bool>();
  }
  int32_t id(const json& v, const std::string& path) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= (int64_t{1} << 31)) {
      fail(path, "found " + v.dump().substr(0, 40) + ", expected a token id (an integer ≥ 0)");
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }
  std::string type(const json& v, const std::string& path) const { return str(need(v, "type", path), path + ".type"); }
};

// Merges spelled "a b" (one space) or ["a", "b"].
std::pair<std::string, std::string> merge_parts(const Ctx& c, const json& m, const std::string& path) {
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos) {
      c.fail(path, "found '" + s.substr(0, 60) + "', expected two pieces separated by one space");
    }
    return {s.substr(0, sp), s.substr(sp + 1)};
  }
  if (m.is_array() && m.size() == 2) return {c.str(m[0], path + "[0]"), c.str(m[1], path + "[1]")};
  c.fail(path, "found " + m.dump().substr(0, 60) + ", expected \"a b\" or [\"a\", \"b\"]");
}

void parse_model(const Ctx& c, const json& model, TokenizerSpec& s) {
  const std::string type = model.contains("type") ? c.type(model, "model") : "BPE";
  if (type != "BPE") c.fail("model.type", "found '" + type + "', expected 'BPE' (the one model Tritter reads)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && model[key] != "") {
      c.fail(std::string("model.") + key, "found " + model[key].dump() + ", expected null (not supported)");
    }
  }
  const json& vocab = c.need(model, "vocab", "model");
  if (!vocab.is_object()) c.fail("model.vocab", std::string("found a JSON ") + vocab.type_name() + ", expected an object");
  int32_t max_id = -1;
  s.vocab.reserve(vocab.size());
  for (const auto& [piece, v] : vocab.items()) {
    const int32_t id = c.id(v, "model.vocab[\"" + piece.substr(0, 40) + "\"]");
    s.vocab.emplace(piece, id);
    max_id = std::max(max_id, id);
  }
  s.pieces.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [piece, id] : s.vocab) s.pieces[id] = piece;
  s.byte_fallback = c.flag(model, "byte_fallback", false, "model");
  s.ignore_merges = c.flag(model, "ignore_merges", false, "model");
  s.fuse_unk = c.flag(model, "fuse_unk", false, "model");
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    const std::string unk = c.str(model["unk_token"], "model.unk_token");
    const auto it = s.vocab.find(unk);
    if (it == s.vocab.end()) c.fail("model.unk_token", "found '" + unk + "', expected a piece of model.vocab");
    s.unk = it->second;
  }
  const json& merges = c.need(model, "merges", "model");
  if (!merges.is_array()) c.fail("model.merges", std::string("found a JSON ") + merges.type_name() + ", expected an array");
  s.merges.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string path = "model.merges[" + std::to_string(r) + "]";
    const auto [a, b] = merge_parts(c, merges[r], path);
    const auto ia = s.vocab.find(a), ib = s.vocab.find(b), iab = s.vocab.find(a + b);
    if (ia == s.vocab.end() || ib == s.vocab.end() || iab == s.vocab.end()) {
      c.fail(path, "found '" + a + " " + b + "', expected pieces whose parts and concatenation are in model.vocab");
    }
    const uint64_t key = (uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second);
    s.merges.emplace(key, Merge{static_cast<int32_t>(r), iab->second});  // the first (lowest-rank) spelling wins
  }
}

void parse_added(const Ctx& c, const json& root, TokenizerSpec& s) {
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return;
  if (!it->is_array()) c.fail("added_tokens", std::string("found a JSON ") + it->type_name() + ", expected an array");
  for (size_t k = 0; k < it->size(); ++k) {
    const std::string path = "added_tokens[" + std::to_string(k) + "]";
    const json& t = (*it)[k];
    AddedToken a;
    a.id = c.id(c.need(t, "id", path), path + ".id");
    a.content = c.str(c.need(t, "content", path), path + ".content");
    if (a.content.empty()) c.fail(path + ".content", "found '', expected a non-empty token text");
    a.special = c.flag(t, "special", false, path);
    a.lstrip = c.flag(t, "lstrip", false, path);
    a.rstrip = c.flag(t, "rstrip", false, path);
    if (static_cast<size_t>(a.id) >= s.pieces.size()) s.pieces.resize(static_cast<size_t>(a.id) + 1);
    s.pieces[a.id] = a.content;
    s.added.push_back(std::move(a));
  }
  s.special.assign(s.pieces.size(), 0);
  for (const auto& a : s.added) s.special[a.id] = a.special ? 1 : 0;
  for (int k = 0; k < static_cast<int>(s.added.size()); ++k) s.added_trie.insert(s.added[k].content, k);
}

std::string replace_pattern(const Ctx& c, const json& step, const std::string& path) {
  const json& pattern = c.need(step, "pattern", path);
  if (pattern.contains("String")) return c.str(pattern["String"], path + ".pattern.String");
  c.fail(path + ".pattern", "found " + pattern.dump().substr(0, 60) + ", expected {\"String\": ...} (regex replace is not supported)");
}

void parse_normalizer(const Ctx& c, const json& n, const std::string& path, TokenizerSpec& s) {
  if (n.is_null()) return;
  const std::string type = c.type(n, path);
  if (type == "Sequence") {
    const json& list = c.need(n, "normalizers", path);
    if (!list.is_array()) c.fail(path + ".normalizers", "expected an array");
    for (size_t k = 0; k < list.size(); ++k) parse_normalizer(c, list[k], path + ".normalizers[" + std::to_string(k) + "]", s);
  } else if (type == "Prepend") {
    s.normalizer.push_back({NormStep::prepend, c.str(c.need(n, "prepend", path), path + ".prepend"), ""});
  } else if (type == "Replace") {
    s.normalizer.push_back({NormStep::replace, replace_pattern(c, n, path), c.str(c.need(n, "content", path), path + ".content")});
    if (s.normalizer.back().a.empty()) c.fail(path + ".pattern.String", "found '', expected a non-empty string");
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD" || type == "Lowercase") {
    const NormStep::Kind k = type == "NFC" ? NormStep::nfc : type == "NFD" ? NormStep::nfd : type == "NFKC" ? NormStep::nfkc
                           : type == "NFKD" ? NormStep::nfkd : NormStep::lowercase;
    s.normalizer.push_back({k, "", ""});
  } else {
    c.fail(path + ".type", "found '" + type + "', expected Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD or Lowercase");
  }
}

PreStep::Scheme metaspace_scheme(const Ctx& c, const json& n, const std::string& path) {
  if (n.contains("prepend_scheme") && !n["prepend_scheme"].is_null()) {
    const std::string v = c.str(n["prepend_scheme"], path + ".prepend_scheme");
    if (v == "always") return PreStep::always;
    if (v == "first") return PreStep::first;
    if (v == "never") return PreStep::never;
    c.fail(path + ".prepend_scheme", "found '" + v + "', expected always, first or never");
  }
  return c.flag(n, "add_prefix_space", true, path) ? PreStep::always : PreStep::never;
}

void parse_pre(const Ctx& c, const json& n, const std::string& path, TokenizerSpec& s) {
  if (n.is_null()) return;
  const std::string type = c.type(n, path);
  if (type == "Sequence") {
    const json& list = c.need(n, "pretokenizers", path);
    if (!list.is_array()) c.fail(path + ".pretokenizers", "expected an array");
    for (size_t k = 0; k < list.size(); ++k) parse_pre(c, list[k], path + ".pretokenizers[" + std::to_string(k) + "]", s);
  } else if (type == "Split") {
    const json& pattern = c.need(n, "pattern", path);
    if (!pattern.contains("Regex")) c.fail(path + ".pattern", "found " + pattern.dump().substr(0, 60) + ", expected {\"Regex\": ...}");
    const std::string regex = c.str(pattern["Regex"], path + ".pattern.Regex");
    const auto known = recognize_split_pattern(regex);
    if (!known) c.fail(path + ".pattern.Regex", "found '" + regex.substr(0, 80) + "', expected the GPT-2, Llama 3 or Qwen2 split pattern");
    const std::string behavior = n.contains("behavior") ? c.str(n["behavior"], path + ".behavior") : "Isolated";
    if (behavior != "Isolated") c.fail(path + ".behavior", "found '" + behavior + "', expected 'Isolated'");
    if (c.flag(n, "invert", false, path)) c.fail(path + ".invert", "found true, expected false");
    PreStep p;
    p.kind = PreStep::split;
    p.pattern = *known;
    s.pre_tokenizer.push_back(p);
  } else if (type == "ByteLevel") {
    PreStep p;
    p.kind = PreStep::byte_level;
    p.use_regex = c.flag(n, "use_regex", true, path);
    p.add_prefix_space = c.flag(n, "add_prefix_space", false, path);
    s.pre_tokenizer.push_back(p);
    s.byte_level = true;
  } else if (type == "Metaspace") {
    PreStep p;
    p.kind = PreStep::metaspace;
    p.replacement = c.str(c.need(n, "replacement", path), path + ".replacement");
    p.scheme = metaspace_scheme(c, n, path);
    p.split_on_replacement = c.flag(n, "split", true, path);
    s.pre_tokenizer.push_back(p);
  } else {
    c.fail(path + ".type", "found '" + type + "', expected Sequence, Split, ByteLevel or Metaspace");
  }
}

void parse_decoder(const Ctx& c, const json& n, const std::string& path, TokenizerSpec& s) {
  if (n.is_null()) return;
  const std::string type = c.type(n, path);
  DecStep d;
  if (type == "Sequence") {
    const json& list = c.need(n, "decoders", path);
    if (!list.is_array()) c.fail(path + ".decoders", "expected an array");
    for (size_t k = 0; k < list.size(); ++k) parse_decoder(c, list[k], path + ".decoders[" + std::to_string(k) + "]", s);
    return;
  } else if (type == "ByteLevel") {
    d.kind = DecStep::byte_level;
    s.byte_level = true;
  } else if (type == "Replace") {
    d.kind = DecStep::replace, d.a = replace_pattern(c, n, path), d.b = c.str(c.need(n, "content", path), path + ".content");
    if (d.a.empty()) c.fail(path + ".pattern.String", "found '', expected a non-empty string");
  } else if (type == "ByteFallback") {
    d.kind = DecStep::byte_fallback;
  } else if (type == "Fuse") {
    d.kind = DecStep::fuse;
  } else if (type == "Strip") {
    d.kind = DecStep::strip, d.a = c.str(c.need(n, "content", path), path + ".content");
    const json& start = c.need(n, "start", path);
    const json& stop = c.need(n, "stop", path);
    if (!start.is_number_unsigned() || !stop.is_number_unsigned()) c.fail(path, "start/stop: expected integers ≥ 0");
    d.start = static_cast<int>(std::min<uint64_t>(start.get<uint64_t>(), 1 << 20));
    d.stop = static_cast<int>(std::min<uint64_t>(stop.get<uint64_t>(), 1 << 20));
  } else if (type == "Metaspace") {
    d.kind = DecStep::metaspace, d.a = c.str(c.need(n, "replacement", path), path + ".replacement");
    d.strip_first_space = metaspace_scheme(c, n, path) != PreStep::never;
  } else {
    c.fail(path + ".type", "found '" + type + "', expected Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip or Metaspace");
  }
  s.decoder.push_back(d);
}

// TemplateProcessing's "single": SpecialToken ids before and after the one Sequence.
void parse_post(const Ctx& c, const json& n, const std::string& path, TokenizerSpec& s) {
  if (n.is_null()) return;
  const std::string type = c.type(n, path);
  if (type == "Sequence") {
    const json& list = c.need(n, "processors", path);
    if (!list.is_array()) c.fail(path + ".processors", "expected an array");
    for (size_t k = 0; k < list.size(); ++k) parse_post(c, list[k], path + ".processors[" + std::to_string(k) + "]", s);
    return;
  }
  if (type == "ByteLevel") return;  // offsets only
  if (type != "TemplateProcessing") c.fail(path + ".type", "found '" + type + "', expected TemplateProcessing, ByteLevel or Sequence");
  const json& single = c.need(n, "single", path);
  const json& specials = c.need(n, "special_tokens", path);
  if (!single.is_array()) c.fail(path + ".single", "expected an array");
  s.template_prefix.clear(), s.template_suffix.clear();
  bool seen_sequence = false;
  for (size_t k = 0; k < single.size(); ++k) {
    const std::string p = path + ".single[" + std::to_string(k) + "]";
    if (single[k].contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const std::string name = c.str(c.need(c.need(single[k], "SpecialToken", p), "id", p + ".SpecialToken"), p + ".SpecialToken.id");
    if (!specials.contains(name)) c.fail(p, "special token '" + name + "' is not in " + path + ".special_tokens");
    const json& ids = c.need(specials[name], "ids", path + ".special_tokens." + name);
    if (!ids.is_array()) c.fail(path + ".special_tokens." + name + ".ids", "expected an array");
    for (const auto& v : ids) {
      const int32_t id = c.id(v, path + ".special_tokens." + name + ".ids");
      (seen_sequence ? s.template_suffix : s.template_prefix).push_back(id);
    }
  }
}

int32_t find_text(const TokenizerSpec& s, const std::string& text) {
  if (text.empty()) return -1;
  for (const auto& a : s.added) if (a.content == text) return a.id;
  const auto it = s.vocab.find(text);
  return it == s.vocab.end() ? -1 : it->second;
}

void fill_special_ids(TokenizerSpec& s, const TokenizerConfig* config) {
  const auto first_of = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) if (int32_t id = find_text(s, n); id >= 0) return id;
    return int32_t{-1};
  };
  s.ids.bos = first_of({"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"});
  s.ids.eos = first_of({"<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>"});
  s.ids.pad = first_of({"<pad>", "<|pad|>", "<|finetune_right_pad_id|>"});
  s.ids.unk = s.unk >= 0 ? s.unk : first_of({"<unk>"});
  if (config) {
    if (int32_t id = find_text(s, config->bos_token); id >= 0) s.ids.bos = id;
    if (int32_t id = find_text(s, config->eos_token); id >= 0) s.ids.eos = id;
    if (int32_t id = find_text(s, config->pad_token); id >= 0) s.ids.pad = id;
    if (int32_t id = find_text(s, config->unk_token); id >= 0) s.ids.unk = id;
    // tokenizer_config's add_bos_token/add_eos_token override the file's template (transformers' Llama tokenizers).
    if (config->has_add_bos_token) {
      s.template_prefix.clear();
      if (config->add_bos_token && s.ids.bos >= 0) s.template_prefix.push_back(s.ids.bos);
    }
    if (config->add_eos_token && s.ids.eos >= 0) s.template_suffix = {s.ids.eos};
  }
  if (s.ids.eos >= 0) s.ids.end_of_generation.push_back(s.ids.eos);
  for (const char* n : {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end_of_text|>", "</s>", "<|endoftext|>", "<end_of_turn>"}) {
    const int32_t id = find_text(s, n);
    if (id >= 0 && std::find(s.ids.end_of_generation.begin(), s.ids.end_of_generation.end(), id) == s.ids.end_of_generation.end()) {
      s.ids.end_of_generation.push_back(id);
    }
  }
}

}  // namespace

TokenizerSpec parse_spec(std::string_view text, const std::string& where, const TokenizerConfig* config) {
  const Ctx c{where};
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw_error("tokenizer.json '", where, "': not valid JSON (byte ", e.byte, "): ", e.what());
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    throw_error("tokenizer.json '", where, "': not valid JSON: ", e.what());
  }
  if (!root.is_object()) c.fail("(root)", std::string("found a JSON ") + root.type_name() + ", expected an object");
  TokenizerSpec s;
  parse_model(c, c.need(root, "model", "(root)"), s);
  parse_added(c, root, s);
  if (s.special.size() != s.pieces.size()) s.special.assign(s.pieces.size(), 0);
  if (root.contains("normalizer")) parse_normalizer(c, root["normalizer"], "normalizer", s);
  if (root.contains("pre_tokenizer")) parse_pre(c, root["pre_tokenizer"], "pre_tokenizer", s);
  if (root.contains("decoder")) parse_decoder(c, root["decoder"], "decoder", s);
  if (root.contains("post_processor")) parse_post(c, root["post_processor"], "post_processor", s);
  for (const int32_t id : s.template_prefix) if (id >= static_cast<int32_t>(s.pieces.size())) c.fail("post_processor", "a template id is outside the vocabulary");
  for (const int32_t id : s.template_suffix) if (id >= static_cast<int32_t>(s.pieces.size())) c.fail("post_processor", "a template id is outside the vocabulary");
  for (int b = 0; b < 256; ++b) {
    std::string piece;
    unicode::append_utf8(piece, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
    const auto it = s.vocab.find(piece);
    s.byte_ids[b] = it == s.vocab.end() ? -1 : it->second;
    s.byte_chars[b] = {piece[0], piece.size() > 1 ? piece[1] : '\0'};
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    const auto fb = s.vocab.find(hex);
    s.fallback_ids[b] = fb == s.vocab.end() ? -1 : fb->second;
  }
  if (s.pieces.empty()) c.fail("model.vocab", "found an empty vocabulary, expected at least one piece");
  if (s.byte_level) {  // pieces outside the byte alphabet can never be a pre-token's spelling: left out
    std::vector<std::pair<std::string, int32_t>> raw;
    raw.reserve(s.vocab.size());
    for (const auto& [piece, id] : s.vocab) {
      std::string bytes;
      bool ok = true;
      for (size_t i = 0; i < piece.size() && ok;) {
        const int b = unicode::unicode_to_byte(unicode::decode_utf8(piece, i));
        ok = b >= 0;
        bytes += static_cast<char>(b);
      }
      if (ok) raw.emplace_back(std::move(bytes), id);
    }
    s.raw_vocab.build(raw);
  }
  fill_special_ids(s, config);
  return s;
}

}  // namespace tritter::hf
