// Model::open on every model file (docs/model-files.md): a HF folder and a GGUF file written from one model give
// the packed file's logits, tokens and generation through the public API; a GGUF carrying a BPE vocabulary and a
// chat template tokenizes with it, renders the template and ends a turn at its end token; a model without a
// template names what is missing; streaming a converted file is refused; a bad tokenizer key is named.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/gguf.h"
#include "model/foreign_fixture.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "model/model_files.h"
#include "text/unicode.h"
#include "tritter.h"
#include "util/test_util.h"

namespace tritter {
namespace {

struct Files {
  test::TempDir dir;
  TritterConfig c = hf_config_to_tritter(test::bitnet_config_json(), "test");
  std::vector<float> p = test::exact_params(c, 5);
  PackedModel native = test::native_model(c, p);
  std::string pk = (dir / "m.safetensors").string(), gguf = (dir / "m.gguf").string(), hf = (dir / "hf").string();
  Files() {
    write_packed_weights(pk, native.weights(), false);
    GgufWriteOptions o;
    o.embed = GgmlType::F32;  // exact: the same logits
    write_gguf_model(gguf, native.weights(), o);
    write_hf_folder(hf, native.weights(), HfWriteOptions{});
  }
};

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& ids) {
  Session s(m);
  std::vector<float> z(ids.size() * static_cast<size_t>(m.info().vocab_size));
  s.forward(ids, z, true);
  return z;
}

std::string byte_piece(int b) {
  std::string s;
  unicode::append_utf8(s, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
  return s;
}

// A small byte-level BPE vocabulary with ChatML's control tokens.
GgufVocab chatml_vocab() {
  GgufVocab v;
  v.model = "gpt2";
  v.pre = "gpt2";
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_piece(b));
  for (const char* t : {"th", "the", "\xC4\xA0the", "<|im_start|>", "<|im_end|>"}) v.tokens.push_back(t);
  v.types.assign(v.tokens.size(), 1);
  v.types[259] = v.types[260] = 3;  // CONTROL
  v.merges = {"t h", "th e", "\xC4\xA0 the"};
  v.eos = 260;
  v.has_add_bos = true;
  v.add_bos = false;
  return v;
}

const char* kChatMl =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

TEST(ModelFormats, HfFolderAndGgufGiveThePackedFilesLogitsAndTokens) {
  Files f;
  const Model packed = Model::open(f.pk);
  const std::vector<int32_t> ids = {1, 72, 101, 108, 108, 111, 33, 200, 9};
  const auto want = logits_of(packed, ids);
  for (const std::string& path : {f.gguf, f.hf, f.hf + "/model.safetensors"}) {
    const Model m = Model::open(path);
    const ModelInfo i = m.info();
    EXPECT_EQ(i.format, path == f.gguf ? "gguf" : "hf-folder") << path;
    EXPECT_EQ(i.tokenizer, "byte") << path;  // Tritter's byte vocabulary, recognized in both files
    EXPECT_TRUE(i.chat_template) << path;    // the built-in format for byte-level models
    EXPECT_FALSE(i.add_bos) << path;
    EXPECT_EQ(logits_of(m, ids), want) << path;
    EXPECT_EQ(m.tokenize("Hi", true), packed.tokenize("Hi", true));
    EXPECT_EQ(m.chat_prompt({{"user", "Hi"}}), "<|user|>\nHi\n<|assistant|>\n");
    EXPECT_EQ(m.chat_stop(), std::vector<std::string>{"\n<|"});
    Session a(packed), b(m);
    GenerationParams g;
    g.max_tokens = 12;
    g.stop_at_eos = false;
    const auto prompt = packed.tokenize("Hello", false);
    EXPECT_EQ(b.generate(prompt, g).tokens, a.generate(prompt, g).tokens) << path;
  }
  EXPECT_EQ(Model::open(f.pk).info().format, "tritter-packed");
  test::expect_error([&] { Model::open(f.gguf, {.stream = true}); }, {"m.gguf", "layer streaming", "GGUF file", "tritter convert"});
}

TEST(ModelFormats, GgufVocabularyAndChatTemplateAreTheModels) {
  Files f;
  const GgufVocab v = chatml_vocab();
  GgufWriteOptions o;
  o.embed = GgmlType::F32;
  o.vocab = &v;
  o.chat_template = kChatMl;
  const std::string path = (f.dir / "chat.gguf").string();
  write_gguf_model(path, f.native.weights(), o);
  const Model m = Model::open(path);
  EXPECT_EQ(m.info().tokenizer, "bpe-byte-level");
  EXPECT_EQ(m.info().tokenizer_vocab_size, 261);
  EXPECT_FALSE(m.info().add_bos);
  EXPECT_EQ(m.tokenize("the the", false), (std::vector<int32_t>{257, 258}));
  EXPECT_EQ(m.tokenize("the<|im_end|>", false), (std::vector<int32_t>{257, 260}));
  EXPECT_EQ(m.detokenize(std::vector<int32_t>{257, 258, 260}), "the the");
  EXPECT_EQ(m.detokenize(std::vector<int32_t>{257, 260}, true), "the<|im_end|>");
  EXPECT_EQ(m.token_piece(258), "\xC4\xA0the");
  EXPECT_EQ(m.token_text(258), " the");
  EXPECT_EQ(m.token_piece(263), "<id 263>");  // beyond the tokenizer, inside the model's vocab_size
  const auto end = m.end_of_generation();
  EXPECT_NE(std::find(end.begin(), end.end(), 260), end.end());
  EXPECT_TRUE(m.chat_stop().empty());
  EXPECT_EQ(m.chat_prompt({{"system", "S"}, {"user", "the"}}),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nthe<|im_end|>\n<|im_start|>assistant\n");
  // Generation stops at the vocabulary's end token: force it by making <|im_end|> the only likely token is not
  // possible with random weights, so check the loop's text instead: every token's text is the tokenizer's.
  Session s(m);
  GenerationParams g;
  g.max_tokens = 6;
  g.stop_at_eos = false;
  const Generation r = s.generate(m.tokenize("the", false), g);
  std::string text;
  for (const int32_t id : r.tokens) text += m.token_text(id);
  EXPECT_EQ(r.text, text);

  // No template in the file: a BPE model has no chat format, and says which key is missing.
  GgufWriteOptions bare = o;
  bare.chat_template.clear();
  const std::string p2 = (f.dir / "bare.gguf").string();
  write_gguf_model(p2, f.native.weights(), bare);
  const Model b = Model::open(p2);
  EXPECT_FALSE(b.has_chat_template());
  test::expect_error([&] { b.chat_prompt({{"user", "x"}}); }, {"bare.gguf", "tokenizer.chat_template", "is missing"});
}

TEST(ModelFormats, BadTokenizerKeysAreNamed) {
  Files f;
  // Rewrites m.gguf with one tokenizer key changed.
  auto rewrite = [&](const std::string& name, const std::string& key, const GgufValue& value) {
    const GgufFile in(f.gguf);
    std::vector<std::pair<std::string, GgufValue>> kv;
    for (const auto& [k, v] : in.metadata()) kv.emplace_back(k, k == key ? value : v);
    std::vector<GgufTensorOut> ts;
    for (const GgufTensor& t : in.tensors()) ts.push_back({t.name, t.type, t.ne, t.data, {}});
    const std::string out = (f.dir / name).string();
    write_gguf(out, kv, ts);
    return out;
  };
  test::expect_error([&] { Model::open(rewrite("t.gguf", "tokenizer.ggml.token_type", GgufValue::strings({"x"}))); },
                     {"t.gguf", "tokenizer.ggml.token_type", "found an array of STRING", "expected an array of I32"});
  test::expect_error([&] { Model::open(rewrite("e.gguf", "tokenizer.ggml.eos_token_id", GgufValue::str("x"))); },
                     {"e.gguf", "tokenizer.ggml.eos_token_id", "found STRING", "expected an integer id"});
  test::expect_error([&] { Model::open(rewrite("m.gguf2", "tokenizer.ggml.model", GgufValue::str("t5"))); },
                     {"tokenizer.ggml.model", "found 't5'", "expected 'gpt2'"});
  test::expect_error([&] { Model::open(rewrite("c.gguf", "tokenizer.ggml.add_bos_token", GgufValue::str("yes"))); },
                     {"c.gguf", "tokenizer.ggml.add_bos_token", "expected a BOOL"});
}

}  // namespace
}  // namespace tritter
