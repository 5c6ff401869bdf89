// The inference commands end to end through the binary: init → pack → inspect → generate, tokenize, and the
// user errors (truncated file, wrong format, empty or over-long prompt): a message naming the file or argument
// and a non-zero exit, never a crash.
#include <gtest/gtest.h>

#include "util/test_util.h"

namespace tritter {
namespace {

TEST(InferCli, InitPackInspectGenerate) {
  test::TempDir dir;
  const std::string ck = (dir / "ck.st").string(), pk = (dir / "pk.st").string();
  ASSERT_EQ(test::run_cli("init --size test --seed 3 -o " + ck).exit_code, 0);
  auto r = test::run_cli("pack " + ck + " " + pk + " --head i8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_cli("inspect " + pk);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("model.layers.1.mlp.down_proj.qweight"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tritter-packed-v1"), std::string::npos);
  EXPECT_NE(r.output.find("bytes read per decoded token"), std::string::npos);
  r = test::run_cli("-t 2 generate -m " + pk + " -p 'def main():' -n 12 --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("def main():", 0), 0u) << r.output;  // the prompt is echoed first
  // Packed files say add_bos_token = false (Tritter's documents start without <bos>): 11 prompt bytes, no <bos>.
  EXPECT_NE(r.output.find("prompt: 11 tokens"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("generated: 12 tokens (length)"), std::string::npos) << r.output;
  r = test::run_cli("generate -m " + pk + " -p 'def main():' -n 1 --bos");
  EXPECT_NE(r.output.find("prompt: 12 tokens"), std::string::npos) << r.output;
  // Greedy output is the same on 1 and 2 threads (stdout only: the timings line differs).
  const auto a = test::run_cli("-q -t 1 generate -m " + pk + " -p 'abc' -n 16 --ignore-eos --json --temp 0");
  const auto b = test::run_cli("-q -t 2 generate -m " + pk + " -p 'abc' -n 16 --ignore-eos --json --temp 0");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output.substr(0, a.output.find("\"stop_reason\"")), b.output.substr(0, b.output.find("\"stop_reason\"")));
  r = test::run_cli("init --size test --seed 3 --packed -o " + (dir / "direct.st").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = test::run_cli("tokenize 'Hi'");
  EXPECT_NE(r.output.find("1 80 113"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("80 -> 'H'"), std::string::npos) << r.output;
  r = test::run_cli("tokenize -m " + pk + " 'Hi'");  // the packed file's add_bos_token (false), as generate
  EXPECT_EQ(r.output.rfind("80 113\n", 0), 0u) << r.output;
}

// --head i4 on an f32 packed file: generate and eval run the 4-bit head (the bytes per token say so with -v),
// eval's bits per byte stay near the f32 head's, and a streamed run (which reads the head as stored) refuses it.
TEST(InferCli, HeadI4RunsGenerateAndEval) {
  test::TempDir dir;
  const std::string ck = (dir / "ck.st").string(), pk = (dir / "pk.st").string(), data = (dir / "d.txt").string();
  ASSERT_EQ(test::run_cli("init --size test --seed 4 -o " + ck).exit_code, 0);
  ASSERT_EQ(test::run_cli("pack " + ck + " " + pk).exit_code, 0);
  auto r = test::run_cli("-v -t 2 generate -m " + pk + " -p 'def f():' -n 8 --ignore-eos --head i4 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("generated: 8 tokens (length)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("read per token (head i4)"), std::string::npos) << r.output;
  r = test::run_cli("-v generate -m " + pk + " -p 'def f():' -n 1");
  EXPECT_NE(r.output.find("read per token (head f32)"), std::string::npos) << r.output;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + "\n";
  test::write_file(data, text);
  auto bpb = [&](const std::string& head) {
    const auto e = test::run_cli("-t 2 eval -m " + pk + " --data " + data + " --seq 64 --head " + head);
    EXPECT_EQ(e.exit_code, 0) << e.output;
    return test::number_after(e.output, R"(tokens\): ([0-9.]+) bits/byte)");
  };
  const double f = bpb("f32"), q4 = bpb("i4");
  // Plumbing only (the head's error bound is tests/kernels/head_i4_test.cpp's): the eval ran the 4-bit head and
  // its figure stays near the f32 head's (0.06 % apart when this was written).
  EXPECT_GT(f, 1.0);
  EXPECT_NE(q4, f);
  EXPECT_NEAR(q4, f, 0.01 * f) << "f32 " << f << " i4 " << q4;
  r = test::run_cli("generate -m " + pk + " -p hi --memory-budget 1G --head i4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("layer streaming runs the head the file was packed with"), std::string::npos) << r.output;
}

TEST(InferCli, BadInputsGiveClearErrors) {
  test::TempDir dir;
  const std::string ck = (dir / "ck.st").string(), pk = (dir / "pk.st").string();
  ASSERT_EQ(test::run_cli("init --size test -o " + ck).exit_code, 0);
  ASSERT_EQ(test::run_cli("pack " + ck + " " + pk).exit_code, 0);
  // A safetensors file of another format (here: no "format" key) is named as such.
  test::write_file(dir / "foreign.st", std::string("\x13\0\0\0\0\0\0\0{\"__metadata__\":{}}", 27));
  auto r = test::run_cli("generate -m " + (dir / "foreign.st").string() + " -p hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("format '', expected 'tritter-packed-v1'"), std::string::npos) << r.output;
  // A streaming run needs a packed file: a checkpoint is named with the command that packs it.
  r = test::run_cli("generate -m " + ck + " -p hi --memory-budget 1G");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("layer streaming reads a packed file"), std::string::npos) << r.output;
  r = test::run_cli("generate -m " + pk + " -p ''");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--prompt: empty prompt"), std::string::npos) << r.output;
  r = test::run_cli("generate -m " + pk + " -p " + std::string(600, 'a'));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("the prompt has 600 tokens, more than the context of 512"), std::string::npos) << r.output;
  const std::string bytes = test::read_file(pk);
  test::write_file(dir / "trunc.st", bytes.substr(0, bytes.size() / 2));
  r = test::run_cli("generate -m " + (dir / "trunc.st").string() + " -p hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("trunc.st"), std::string::npos) << r.output;
  r = test::run_cli("inspect " + (dir / "missing.st").string());
  EXPECT_EQ(r.exit_code, 1);
  r = test::run_cli("generate -m " + pk + " -p hi --kv-cache int3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("expected f32, f16, int8 or int4"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tritter
