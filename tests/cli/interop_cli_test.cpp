// The commands on HF folders and GGUF files: generate/eval/tokenize take them with -m and agree with the packed
// file; generate --chat and -cnv (a conversation from standard input that keeps the KV cache between turns);
// -v's per-phase timings are measured; finetune takes HF/GGUF bases with the byte vocabulary (the same losses as the
// packed file) and a BPE one (its own tokenizer's ids: tests/cli/finetune_bpe_test.cpp); merge-lora, which needs Tritter's own file, says so; a BPE model without a
// chat template names the missing key. (The server on BPE models: tests/serve/bpe_test.mjs.)
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "model/foreign_fixture.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "model/model_files.h"
#include "text/unicode.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using test::has;

struct InteropFiles {
  test::TempDir dir;
  TritterConfig c = hf_config_to_tritter(test::bitnet_config_json(), "test");
  std::vector<float> p = test::exact_params(c, 9);
  PackedModel native = test::native_model(c, p);
  std::string pk = (dir / "m.safetensors").string(), gguf = (dir / "m.gguf").string(), hf = (dir / "hf").string();
  std::string bpe = (dir / "bpe.gguf").string(), data = (dir / "data.txt").string();
  InteropFiles() {
    write_packed_weights(pk, native.weights(), false);
    GgufWriteOptions o;
    o.embed = GgmlType::F32;
    write_gguf_model(gguf, native.weights(), o);
    write_hf_folder(hf, native.weights(), HfWriteOptions{});
    GgufVocab v;
    v.model = "gpt2";
    for (int b = 0; b < 256; ++b) {
      std::string s;
      unicode::append_utf8(s, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
      v.tokens.push_back(s);
    }
    v.tokens.push_back("th");
    v.tokens.push_back("the");
    v.tokens.push_back("<|end|>");
    v.types.assign(v.tokens.size(), 1);
    v.types[258] = 3;
    v.merges = {"t h", "th e"};
    v.eos = 258;
    o.vocab = &v;
    write_gguf_model(bpe, native.weights(), o);
    std::ofstream(data) << "the cat sat on the mat and then the dog ran off with the hat, " << std::string(400, 'x');
  }
};

nlohmann::json json_of(const std::string& args) {
  const auto r = test::run_cli("-q " + args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

// `generate` with `gen` on the packed file, the GGUF and the HF folder: the same text from each; returns the
// packed file's result.
nlohmann::json same_text_from_every_kind(const InteropFiles& f, const std::string& gen) {
  const auto want = json_of("generate -m " + f.pk + gen);
  EXPECT_EQ(json_of("generate -m " + f.gguf + gen)["text"], want["text"]);
  EXPECT_EQ(json_of("generate -m " + f.hf + gen)["text"], want["text"]);
  return want;
}

// --head: i8 on every kind gives the same greedy text from each (the same int8 rows: the writers kept the f32 head
// exact); convert keeps an int8 head in a packed output; f32 on an int8 file and an unknown name are refused.
TEST(InteropCli, HeadChoiceOnEveryKind) {
  InteropFiles f;
  const auto want = same_text_from_every_kind(f, " -p 'Hello' -n 10 --ignore-eos --temp 0 --head i8");
  const std::string i8 = (f.dir / "i8.safetensors").string();
  auto r = test::run_cli("convert " + f.hf + " " + i8 + " --head i8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(SafeTensorsFile(i8).metadata().at("head"), "i8");
  EXPECT_EQ(json_of("generate -m " + i8 + " -p 'Hello' -n 10 --ignore-eos --temp 0")["text"], want["text"]);
  r = test::run_cli("generate -m " + i8 + " -p x -n 1 --head f32");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r, "int8 LM head") && has(r, "tritter pack --head f32")) << r.output;
  r = test::run_cli("generate -m " + f.pk + " -p x -n 1 --head int8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r, "--head") && has(r, "int8")) << r.output;
}

TEST(InteropCli, GenerateEvalTokenizeTakeHfFoldersAndGguf) {
  InteropFiles f;
  const std::string gen = " -p 'Hello' -n 10 --ignore-eos --temp 0";
  const auto want = same_text_from_every_kind(f, gen);
  const std::string ev = " --data " + f.data + " --seq 32 --batch 2";
  const auto e0 = test::run_cli("eval -m " + f.pk + ev), e1 = test::run_cli("eval -m " + f.gguf + ev);
  ASSERT_EQ(e0.exit_code, 0) << e0.output;
  ASSERT_EQ(e1.exit_code, 0) << e1.output;
  const std::regex bpb("([0-9.]+) bits/byte");
  std::smatch m0, m1;
  ASSERT_TRUE(std::regex_search(e0.output, m0, bpb)) << e0.output;
  ASSERT_TRUE(std::regex_search(e1.output, m1, bpb)) << e1.output;
  EXPECT_EQ(m0[1], m1[1]);  // the byte vocabulary: the same windows, the same figure
  // A BPE vocabulary: its ids, and eval still per byte of text (a finite figure over fewer, longer tokens).
  auto r = test::run_cli("tokenize -m " + f.bpe + " 'the the' --ids");
  EXPECT_EQ(r.output, "257 32 257\n") << r.output;  // no Ġ merge in this vocabulary: ' ' (byte 32) 'the'
  r = test::run_cli("eval -m " + f.bpe + ev);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(std::regex_search(r.output, m1, bpb)) << r.output;
  EXPECT_GT(std::stod(m1[1]), 0.5);
  EXPECT_LT(std::stod(m1[1]), 40.0);
}

TEST(InteropCli, ChatAndConversationKeepTheCache) {
  InteropFiles f;
  auto r = test::run_cli("-v generate -m " + f.gguf + " --chat -p 'Hi' -n 4 --temp 0 --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "chat template: built-in")) << r.output;
  EXPECT_FALSE(has(r, "Hi")) << r.output;  // the prompt is not echoed in chat
  test::write_file(f.dir / "turns.txt", "hello\nand again\n");
  r = test::run_cli("-v generate -m " + f.pk + " -cnv -sys 'Be brief.' -n 3 --temp 0 --ignore-eos < " +
                    (f.dir / "turns.txt").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Turn 1 starts from an empty cache; turn 2 feeds only its own text after what the cache holds.
  std::regex held("chat: ([0-9]+) new prompt tokens after ([0-9]+) held in the cache");
  std::vector<std::pair<int, int>> turns;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), held), end; it != end; ++it) {
    turns.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  }
  ASSERT_EQ(turns.size(), 2u) << r.output;
  EXPECT_EQ(turns[0].second, 0);
  const int first = static_cast<int>(std::string("<|system|>\nBe brief.\n<|user|>\nhello\n<|assistant|>\n").size());
  EXPECT_EQ(turns[0].first, first);
  EXPECT_EQ(turns[1].second, first + 2);  // the prompt and the 2 forwarded reply tokens (the last is never fed)
  EXPECT_GT(turns[1].first, 0);
  // A BPE model without a template names the missing key.
  r = test::run_cli("generate -m " + f.bpe + " --chat -p 'Hi'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r, "tokenizer.chat_template' is missing")) << r.output;
  test::write_file(f.dir / "t.jinja", "{% for m in messages %}{{ m['content'] }}{% endfor %}");
  r = test::run_cli("-q generate -m " + f.bpe + " --chat -p 'the' -n 2 --temp 0 --chat-template-file " +
                    (f.dir / "t.jinja").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(InteropCli, VerboseTimingsAreMeasured) {
  InteropFiles f;
  const auto r = test::run_cli("-v generate -m " + f.pk + " -p 'Hello' -n 64 --ignore-eos --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("phases: matmul ([0-9.]+) s, attention ([0-9.]+) s, head ([0-9.]+) s, other ([0-9.]+) s")))
      << r.output;
  EXPECT_GT(std::stod(m[1]) + std::stod(m[2]) + std::stod(m[3]) + std::stod(m[4]), 0.0) << r.output;
}

TEST(InteropCli, FinetuneTakesHfAndGgufBasesOfEitherVocabulary) {
  InteropFiles f;
  // The same weights as a packed file, a GGUF file and a HF folder: the same losses, step for step.
  const std::string flags = " --data " + f.data + " --rank 2 --steps 3 --seq 16 --batch 1 --eval-every -1 --val-fraction 0";
  std::vector<std::string> losses;
  for (const std::string& base : {f.pk, f.gguf, f.hf}) {
    const std::string out = (f.dir / ("ft-" + std::to_string(losses.size()))).string();
    const auto r = test::run_cli("finetune --base " + base + " --out " + out + flags);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("loss \\(nats\\) ([0-9.]+)"))) << r.output;
    losses.push_back(m[1]);
    const auto g = test::run_cli("-q generate -m " + base + " --lora " + out + " -p 'the' -n 3 --temp 0 --ignore-eos");
    EXPECT_EQ(g.exit_code, 0) << g.output;
  }
  EXPECT_EQ(losses[1], losses[0]);
  EXPECT_EQ(losses[2], losses[0]);
  // A BPE vocabulary: the data is read with the file's own tokenizer ("the" is one token), so fewer tokens than
  // bytes, and the fine-tune runs.
  const auto r = test::run_cli("finetune --base " + f.bpe + " --out " + (f.dir / "ft-bpe").string() + flags);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "done at step 3")) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("([0-9]+) train tokens"))) << r.output;
  EXPECT_LT(std::stoll(m[1]), 462 + 1 - 6) << r.output;  // the byte count less two per merged "the" at least
}

TEST(InteropCli, CommandsThatNeedTritterFilesSaySo) {
  InteropFiles f;
  auto r = test::run_cli("merge-lora --base " + f.hf + " --lora " + (f.dir / "x").string() + " --out " + (f.dir / "o.st").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r, "is a Hugging Face model folder")) << r.output;
}

}  // namespace
}  // namespace tritter
