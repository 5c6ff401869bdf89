// What a newcomer from llama.cpp or Hugging Face types on the first day: the command list, unknown commands and
// options named (never a parse of `-ngl` as `-n gl`), llama.cpp's flag names, sampling defaults and seeds, one way
// to name a model, tokenize's pieces, honest benchmarks, units in the wording, and the thread default.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "kernels/parallel.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using json = nlohmann::json;

using test::has;

// The JSON object of `generate --json` (stdout; -q keeps stderr empty).
json generate_json(const std::string& args) {
  const auto r = test::run_cli("-q generate " + args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return json::parse(r.output);
}

// One packed model and its checkpoint for the whole suite (init is cheap but not free).
class FirstDay : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    ck_ = (*dir_ / "ck.st").string();
    pk_ = (*dir_ / "pk.st").string();
    ASSERT_EQ(test::run_cli("init --size test --seed 3 -o " + ck_).exit_code, 0);
    ASSERT_EQ(test::run_cli("pack " + ck_ + " " + pk_).exit_code, 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static test::TempDir* dir_;
  static std::string ck_, pk_;
};
test::TempDir* FirstDay::dir_ = nullptr;
std::string FirstDay::ck_, FirstDay::pk_;

TEST(FirstDayHelp, NoArgumentsListsEveryCommand) {
  const auto r = test::run_cli("");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* c : {"commands:", "generate", "tokenize", "train", "bench", "hw", "--help"}) {
    EXPECT_TRUE(has(r, c)) << c << "\n" << r.output;
  }
}

TEST(FirstDayHelp, UnknownCommandSuggestsTheNearest) {
  auto r = test::run_cli("genrate -m x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "unknown command 'genrate'; did you mean 'generate'?")) << r.output;
  r = test::run_cli("bench modle");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "has no subcommand 'modle'; did you mean 'model'?")) << r.output;
  r = test::run_cli("frobnicate");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "unknown command 'frobnicate'")) << r.output;
  EXPECT_FALSE(has(r, "did you mean")) << r.output;  // nothing is near
}

TEST(FirstDayHelp, RequiredFlagsAreMarked) {
  const auto r = test::run_cli("generate --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const size_t m = r.output.find("--model");
  ASSERT_NE(m, std::string::npos) << r.output;
  EXPECT_NE(r.output.substr(m, r.output.find('\n', m) - m).find("REQUIRED"), std::string::npos) << r.output;
}

TEST_F(FirstDay, LlamaCppMultiLetterFlagsAreNamedNotSplit) {
  auto r = test::run_cli("generate -m " + pk_ + " -p hi -ngl 99");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "unknown option '-ngl'")) << r.output;
  EXPECT_TRUE(has(r, "GPU offload is not supported yet")) << r.output;
  EXPECT_FALSE(has(r, "gl")  && has(r, "could not be converted")) << r.output;
  r = test::run_cli("generate -m " + pk_ + " -p hi --n-gpu-layers 99");
  EXPECT_TRUE(has(r, "unknown option '--n-gpu-layers'")) << r.output;
  EXPECT_TRUE(has(r, "GPU")) << r.output;
  r = test::run_cli("generate -m " + pk_ + " -p hi -ctk q8_0");
  EXPECT_TRUE(has(r, "unknown option '-ctk'")) << r.output;
  EXPECT_TRUE(has(r, "--kv-cache")) << r.output;
  r = test::run_cli("generate -m " + pk_ + " -p hi --tempp 0.5");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "unknown option '--tempp' for 'tritter generate'; did you mean '--temp'?")) << r.output;
  r = test::run_cli("-x version");
  EXPECT_TRUE(has(r, "unknown option '-x' for 'tritter'")) << r.output;
  // What stays valid: a value glued to a short option, negative numbers, global flags after the command.
  r = test::run_cli("generate -m " + pk_ + " -p hi -n3 --ignore-eos --temp 0 -t 1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "generated: 3 tokens")) << r.output;
}

TEST_F(FirstDay, LlamaCppLongNamesAreAliases) {
  const auto r = test::run_cli("generate -m " + pk_ + " -p hi --n-predict 3 --ctx-size 64 --temperature 0 "
                               "--repeat-penalty 1.1 --batch-size 8 --threads 1 --ignore-eos -v");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "generated: 3 tokens")) << r.output;
  EXPECT_TRUE(has(r, "64 positions")) << r.output;
  EXPECT_TRUE(has(r, "threads 1")) << r.output;
  EXPECT_TRUE(has(r, "greedy (temperature 0)")) << r.output;
  EXPECT_TRUE(has(r, "repeat-penalty 1.10")) << r.output;
}

TEST_F(FirstDay, SamplingDefaultsAndSeeds) {
  const std::string base = "-m " + pk_ + " -p 'def f(x):' -n 24 --ignore-eos";
  const json d = generate_json(base);
  EXPECT_FLOAT_EQ(d["temperature"].get<float>(), 0.8f);  // llama.cpp's default, not greedy
  const json d2 = generate_json(base);
  EXPECT_NE(d["seed"].get<uint64_t>(), d2["seed"].get<uint64_t>());  // random by default (2^-32 to collide)
  // The printed seed reproduces the text.
  const json again = generate_json(base + " --seed " + std::to_string(d["seed"].get<uint64_t>()));
  EXPECT_EQ(again["text"], d["text"]);
  const json s1 = generate_json(base + " --seed 7"), s2 = generate_json(base + " -s 7");
  EXPECT_EQ(s1["text"], s2["text"]);
  EXPECT_EQ(s1["seed"].get<uint64_t>(), 7u);
  // --temp 0 is greedy: the seed does not matter.
  EXPECT_EQ(generate_json(base + " --temp 0 --seed 1")["text"], generate_json(base + " --temp 0 --seed 2")["text"]);
  const json r = generate_json(base + " --seed -1");
  EXPECT_TRUE(r["seed"].is_number_unsigned());
  // Never a silent wrap.
  auto bad = test::run_cli("generate " + base + " --seed -2");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(has(bad, "--seed: found '-2', expected -1 (random)")) << bad.output;
  bad = test::run_cli("generate " + base + " --seed 18446744073709551616");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(has(bad, "found '18446744073709551616'")) << bad.output;
  const auto v = test::run_cli("-v generate " + base + " --seed 11");
  EXPECT_TRUE(has(v, "temperature 0.80, top-k 40, top-p 0.95, min-p 0.05, repeat-penalty 1.00, seed 11")) << v.output;
}

TEST_F(FirstDay, PredictUntilContextEscapesStdinAndPromptEcho) {
  // -n -1: until <eos> or a full context (here the context: <eos> ignored).
  const json all = generate_json("-m " + pk_ + " -p abcd -n -1 --ctx 40 --ignore-eos --temp 0");
  EXPECT_EQ(all["stop_reason"], "context");
  EXPECT_EQ(all["prompt_tokens"].get<int>() + all["decode_steps"].get<int>(), 40) << all.dump();
  auto bad = test::run_cli("generate -m " + pk_ + " -p abcd -n -2");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(has(bad, "--n-predict: found -2")) << bad.output;
  // -e: \n is one byte; without -e the two characters stay.
  EXPECT_EQ(generate_json("-m " + pk_ + " -p 'a\\nb\\x41' -n 1 -e")["prompt_tokens"], 4);
  EXPECT_EQ(generate_json("-m " + pk_ + " -p 'a\\nb\\x41' -n 1")["prompt_tokens"], 8);
  // -f -: the prompt from standard input.
  test::write_file(*dir_ / "prompt.txt", "import os\n");
  EXPECT_EQ(generate_json("-m " + pk_ + " -n 1 -f - < " + (*dir_ / "prompt.txt").string())["prompt_tokens"], 10);
  // --no-display-prompt: the continuation only.
  const auto shown = test::run_cli("-q generate -m " + pk_ + " -p PROMPTX -n 2 --temp 0");
  const auto hidden = test::run_cli("-q generate -m " + pk_ + " -p PROMPTX -n 2 --temp 0 --no-display-prompt");
  EXPECT_EQ(shown.output.rfind("PROMPTX", 0), 0u) << shown.output;
  EXPECT_FALSE(has(hidden, "PROMPTX")) << hidden.output;
}

TEST_F(FirstDay, KvCacheAcceptsLlamaCppNames) {
  auto r = test::run_cli("-v generate -m " + pk_ + " -p hi -n 2 --kv-cache q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "(int8,")) << r.output;
  r = test::run_cli("-v generate -m " + pk_ + " -p hi -n 2");  // one default with hw check: f16
  EXPECT_TRUE(has(r, "(f16,")) << r.output;
  r = test::run_cli("hw check 7B --profile rtx5080 --desktop headless --mode infer --kv-cache q4_0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json a = json::parse(r.output);
  const json b = json::parse(
      test::run_cli("hw check 7B --profile rtx5080 --desktop headless --mode infer --kv int4 --json").output);
  EXPECT_EQ(a["checks"], b["checks"]);
  const json c = json::parse(test::run_cli("hw check --size 7B --profile rtx5080 --desktop headless --mode infer "
                                           "--kv-cache f16 --json").output);
  const json d = json::parse(test::run_cli("hw check 7B --profile rtx5080 --desktop headless --mode infer --json").output);
  EXPECT_EQ(c["checks"], d["checks"]);  // --size is the preset flag everywhere; f16 is the default
}

TEST_F(FirstDay, OneWayToNameAModel) {
  const std::string args = " -p 'def f(x):' -n 12 --ignore-eos --temp 0";
  const json packed = generate_json("-m " + pk_ + args);
  // A full-precision checkpoint: packed in memory, the same tokens as the packed file.
  EXPECT_EQ(generate_json("-m " + ck_ + args)["text"], packed["text"]);
  auto r = test::run_cli("-v generate -m " + ck_ + args);
  EXPECT_TRUE(has(r, "(full precision): packed in memory")) << r.output;
  // A training run directory: its latest checkpoint.
  const auto run = *dir_ / "run";
  std::filesystem::create_directories(run / "step-00000002");
  std::filesystem::copy_file(ck_, run / "step-00000002" / "model.safetensors");
  test::write_file(run / "latest", "step-00000002\n");
  EXPECT_EQ(generate_json("-m " + run.string() + args)["text"], packed["text"]);
  r = test::run_cli("-v generate -m " + run.string() + args);
  EXPECT_TRUE(has(r, "run directory " + run.string() + ": latest checkpoint")) << r.output;
  r = test::run_cli("inspect " + run.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "tritter-v1")) << r.output;
  r = test::run_cli("tokenize -m " + run.string() + " Hi --ids");
  EXPECT_EQ(r.output, "80 113\n");
  // Not a model: named with what is expected.
  std::filesystem::create_directories(*dir_ / "empty");
  r = test::run_cli("generate -m " + (*dir_ / "empty").string() + " -p hi");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r, "a directory without model.safetensors, step-* checkpoints or config.json")) << r.output;
  // A folder holding the file (as the shipped model's does, with its card): that file.
  const auto folder = *dir_ / "folder";
  std::filesystem::create_directories(folder);
  std::filesystem::copy_file(pk_, folder / "model.safetensors");
  test::write_file(folder / "README.md", "a model card\n");
  EXPECT_EQ(generate_json("-m " + folder.string() + args)["text"], packed["text"]);
  r = test::run_cli("-v generate -m " + folder.string() + args);
  EXPECT_TRUE(has(r, "packed file " + (folder / "model.safetensors").string())) << r.output;
  EXPECT_FALSE(has(r, "run directory")) << r.output;
  r = test::run_cli("generate -m " + (*dir_ / "nope.st").string() + " -p hi");
  EXPECT_TRUE(has(r, "nope.st': no such file or directory")) << r.output;
}

TEST_F(FirstDay, TokenizeShowsPieces) {
  const auto r = test::run_cli("tokenize 'a b\n'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "1 105 40 106 18\n")) << r.output;
  EXPECT_TRUE(has(r, "     1 -> <bos>\n")) << r.output;
  EXPECT_TRUE(has(r, "   105 -> 'a'\n")) << r.output;
  EXPECT_TRUE(has(r, "    40 -> ' '\n")) << r.output;
  EXPECT_TRUE(has(r, "    18 -> '\\n'\n")) << r.output;
  EXPECT_TRUE(has(r, "5 tokens (with <bos>)")) << r.output;
}

TEST_F(FirstDay, BenchModelOnTheUsersModelWithRepetitionsAndFormats) {
  const std::string args = "bench model -m " + pk_ + " --threads-list 1 --pp 8 --tg 4 -r 3";
  auto r = test::run_cli(args + " -o json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = json::parse(r.output);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["repetitions"], 3);
  EXPECT_GT(j[0]["tg_tokens_per_second"]["mean"].get<double>(), 0);
  EXPECT_GE(j[0]["tg_tokens_per_second"]["sd"].get<double>(), 0);
  EXPECT_EQ(j[0]["model"], pk_);
  r = test::run_cli(args + " -o csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("model,threads,n_prompt,n_gen,reps,pp_mean,pp_sd,tg_mean,tg_sd", 0), 0u) << r.output;
  r = test::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, " ± ")) << r.output;
  EXPECT_TRUE(has(r, "mean ± sd")) << r.output;
  EXPECT_FALSE(has(r, "peers")) << r.output;  // no figures from another machine
  EXPECT_FALSE(has(r, "llama.cpp")) << r.output;
  r = test::run_cli(args + " -o xml");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r, "expected md, json or csv")) << r.output;
}

TEST(FirstDayBench, TrainPrintsNoForeignFigure) {
  const auto r = test::run_cli("-t 1 bench train --steps 1 --warmup 0 --batch 1 --seq 16 --no-recompute");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(has(r, "PyTorch")) << r.output;
  EXPECT_TRUE(has(r, "QAT runs at")) << r.output;  // the FP baseline, measured in the same run
}

// Without an int8 peak (a CPU without the instructions, or a forced scalar run) %peak is "n/a", not a share of 0.
TEST(FirstDayBench, KernelsSayNaWithoutAPeak) {
  const auto r = test::run_cli("--kernels scalar bench kernels --quick --min-time 0.01 --dram-mib 16 --stream-mib 4 "
                               "--threads-list 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "vpdpbusd n/a")) << r.output;
  EXPECT_TRUE(has(r, "capped at 100%")) << r.output;
  const size_t row = r.output.find("\n2560x2560");
  ASSERT_NE(row, std::string::npos) << r.output;
  EXPECT_NE(r.output.substr(row, r.output.find('\n', row + 1) - row).find("n/a"), std::string::npos) << r.output;
}

TEST(FirstDayWording, HwCheckMarksGpuProfilesAsPlans) {
  auto r = test::run_cli("hw check 7B --profile rtx5080 --desktop headless --mode infer");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "note: a plan: Tritter runs on the CPU today")) << r.output;
  r = test::run_cli("hw check test --profile cpu --desktop headless --mode infer");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(has(r, "a plan")) << r.output;
  const json j = json::parse(test::run_cli("hw check 7B --profile rtx5080 --desktop headless --json").output);
  EXPECT_EQ(j["runs_here"], false);
}

TEST(FirstDayWording, SpecsAcceptsTheSizeFlag) {
  const auto a = test::run_cli("specs --size 7B --json"), b = test::run_cli("specs --model 7B --json");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
}

TEST_F(FirstDay, EvalSplitAllDoesNotSayHeldOut) {
  test::write_file(*dir_ / "d.py", std::string(400, 'x') + "\ndef f():\n    return 1\n");
  const std::string base = "eval -m " + pk_ + " --data " + (*dir_ / "d.py").string() + " --seq 16 --windows 2";
  auto r = test::run_cli(base + " --split all");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "documents (--split all: every document)")) << r.output;
  EXPECT_FALSE(has(r, "held-out")) << r.output;
}

TEST(FirstDayThreads, DefaultIsThePhysicalCores) {
  const int n = default_thread_count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, static_cast<int>(std::thread::hardware_concurrency()));
  const auto r = test::run_cli("-v hw detect");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, std::to_string(n) + " threads")) << r.output;
}

// The program sets a short OpenMP spin itself (libgomp reads it at load, so it re-executes once), and leaves a
// user's own choice alone.
TEST(FirstDayThreads, WaitPolicyIsSetByTheProgram) {
  auto run = [](const std::string& env) {
    FILE* p = popen((env + " " + std::string(TRITTER_CLI) + " version 2>&1").c_str(), "r");
    std::string out;
    char buf[512];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
    return out;
  };
  const std::string mine = run("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u TRITTER_SET_OMP_WAIT_POLICY");
  EXPECT_NE(mine.find("openmp wait: GOMP_SPINCOUNT=300 (set by tritter)"), std::string::npos) << mine;
  const std::string users = run("env -u GOMP_SPINCOUNT -u TRITTER_SET_OMP_WAIT_POLICY OMP_WAIT_POLICY=active");
  EXPECT_NE(users.find("openmp wait: OMP_WAIT_POLICY=active (from the environment)"), std::string::npos) << users;
}

}  // namespace
}  // namespace tritter
