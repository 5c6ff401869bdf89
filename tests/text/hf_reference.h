// Helpers of the tests that compare Tritter against Hugging Face's JavaScript implementations (tokenizers of
// @lenml/tokenizers, templates of @huggingface/jinja), run through node on tests/text/hf_reference.mjs. A test skips,
// saying why, when node or the npm packages (`npm ci` at the repository root) are absent.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace tritter::testing {

inline std::string source_path(const std::string& rel) { return std::string(TRITTER_SOURCE_DIR) + "/" + rel; }

// "" when the reference can run, else why not.
inline std::string reference_missing(const char* package) {
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not installed";
  if (!std::filesystem::exists(source_path(std::string("node_modules/") + package))) {
    return std::string("npm package ") + package + " is missing (run `npm ci` at the repository root)";
  }
  return "";
}

inline std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += k[v >> 18], out += k[(v >> 12) & 63], out += k[(v >> 6) & 63], out += k[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += k[v >> 18], out += k[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += k[v >> 18], out += k[(v >> 12) & 63], out += k[(v >> 6) & 63], out += '=';
  }
  return out;
}

inline std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tritter_" + std::to_string(::getpid()) + "_" + name)).string();
}

// Runs hf_reference.mjs with args; returns the parsed OUT file (the last argument).
inline nlohmann::json run_reference(const std::string& args, const std::string& out_path) {
  const std::string cmd = "cd '" + std::string(TRITTER_SOURCE_DIR) + "' && node tests/text/hf_reference.mjs " + args;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("reference failed: " + cmd);
  std::ifstream in(out_path);
  nlohmann::json j = nlohmann::json::parse(in);
  std::filesystem::remove(out_path);
  return j;
}

// The reference's ids for each document.
inline std::vector<std::vector<int32_t>> reference_ids(const std::string& tokenizer_json, const std::vector<std::string>& docs,
                                                       bool add_special, const std::string& config_json = "") {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& d : docs) list.push_back({{"b64", base64(d)}, {"add_special", add_special}});
  const std::string docs_path = temp_path("docs.json"), out_path = temp_path("ids.json");
  std::ofstream(docs_path) << list.dump();
  const auto j = run_reference("encode '" + tokenizer_json + "' '" + docs_path + "' '" + out_path + "'" +
                                   (config_json.empty() ? "" : " '" + config_json + "'"),
                               out_path);
  std::filesystem::remove(docs_path);
  return j.get<std::vector<std::vector<int32_t>>>();
}

// A deterministic mixed corpus: code, prose, CJK, emoji, combining marks, whitespace runs, digits, contractions,
// special-token text and invalid UTF-8, as documents of a few hundred bytes to a few KB.
inline std::vector<std::string> mixed_corpus(size_t total_bytes, uint64_t seed) {
  static const char* fragments[] = {
      "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]\n",
      "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
      "    if (x != nullptr && x->next) { return x->next->value; }\r\n",
      "#include <vector>\nstd::vector<int32_t> ids{1, 2, 3};\n",
      "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;\n",
      "The quick brown fox jumps over the lazy dog. ",
      "It's what they'd've wanted; you're sure we'll see THEY'RE and I'M here? ",
      "In 1969, 3,141,592 people paid $12.50 (or 1234567890 cents) on 2024-01-31. ",
      "Привет, мир! Это тест токенизатора. ",
      "Ελληνικά γράμματα και τόνοι. ",
      "東京は日本の首都です。私は寿司が好きです。",
      "中文分词测试：我们今天去公园散步。",
      "한국어 텍스트와 조합형 자모 한글. ",
      "مرحبا بالعالم، هذا اختبار. ",
      "हिन्दी में लिखा गया वाक्य। ",
      "emoji 😀🎉👍🏽 👨‍👩‍👧‍👦 🇯🇵🇫🇷 ❤️‍🔥 ",
      "combining: e\xCC\x81 a\xCC\x8A n\xCC\x83 o\xCC\x88\xCC\x81 Z\xCD\x91\xCD\x8B\xCC\x90 ",
      "caf\xC3\xA9 vs cafe\xCC\x81, \xEF\xAC\x81ne ligature, \xE2\x85\xA2 roman, \xC2\xBD half. ",
      "   ", "\t\t", "\n", "\n\n\n", "\r\n", " \n ", "        \n    ", "\xC2\xA0\xE3\x80\x80 ", "\xE2\x80\x83\xE2\x80\xA8",
      "trailing spaces    ", "x  =  1;;;  ", "!!!???...,,,", "<<>>[]{}()", "a'b 'S 'Ll 't'", "''''",
      "mixed123abc456DEF", "0123456789012345", "\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93 full-width digits",
      "<|eot_id|>", "<|begin_of_text|>", "<s>", "</s>",
      "\x80", "\xC3", "\xE6\x97", "\xF0\x9F\x98", "\xC0\x80", "\xED\xA0\x80", "\xF5\x80\x80\x80", "\xFF\xFE", "\xE2\x28\xA1",
  };
  const size_t count = sizeof(fragments) / sizeof(fragments[0]);
  uint64_t state = seed;
  const auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  std::vector<std::string> docs;
  size_t total = 0;
  while (total < total_bytes) {
    std::string doc;
    const size_t target = 200 + next() % 3000;
    while (doc.size() < target) doc += fragments[next() % count];
    total += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

}  // namespace tritter::testing
