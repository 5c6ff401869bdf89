// Hostile command lines and inputs through the binary, each a reproducer: sizes from a flag or a small file refused
// before allocation, `eval --seq 0` (was SIGFPE), FIFOs and /dev/zero as model or data (blocked forever), bad
// adapter/config JSON (raw json.exception texts, exit 2), a LoRA weight that is not a number ("not a directory"),
// --val-fraction -1, a 10 MB prompt echoed before it was refused, and a checkpoint directory as a file. Every
// failure must exit with a code in 1..127 (no signal) and a message naming the flag or file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "util/test_util.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;

// The CLI under `timeout`: a blocking read shows as exit 124 instead of a hung test.
test::CliResult run_bounded(const std::string& args, int seconds = 30) {
  test::CliResult r;
  const std::string cmd = "timeout -s KILL " + std::to_string(seconds) + " " + TRITTER_CLI + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

void expect_clean_failure(const test::CliResult& r, const std::string& fragment) {
  EXPECT_GE(r.exit_code, 1) << r.output;
  EXPECT_LE(r.exit_code, 123) << "exit " << r.exit_code << " (a signal or a timeout): " << r.output;
  EXPECT_NE(r.output.find(fragment), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("json.exception"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("std::bad_alloc"), std::string::npos) << r.output;
}

struct Files {
  test::TempDir dir;
  std::string ck, packed, data;
  Files() {
    ck = (dir / "ck.st").string();
    packed = (dir / "p.st").string();
    data = (dir / "d.txt").string();
    EXPECT_EQ(test::run_cli("init --size test -o " + ck).exit_code, 0);
    EXPECT_EQ(test::run_cli("pack " + ck + " " + packed).exit_code, 0);
    test::write_file(dir / "d.txt", std::string(3000, 'x') + "\nprint('hi')\n");
  }
};

TEST(Hardening, SizesFromFlagsAreBoundedBeforeAllocation) {
  Files f;
  expect_clean_failure(run_bounded("init --size test --vocab 4000000000 -o " + (f.dir / "v.st").string()),
                       "vocab_size: found 4000000000, expected 264 .. 16777216");
  EXPECT_FALSE(fs::exists(f.dir / "v.st"));
  expect_clean_failure(run_bounded("finetune --base " + f.packed + " --data " + f.data + " --out " +
                                   (f.dir / "ft").string() + " --rank 1000000 --steps 1"),
                       "rank: found 1000000, expected 1 .. 65536");
  expect_clean_failure(run_bounded("finetune --base " + f.packed + " --data " + f.data + " --out " +
                                   (f.dir / "ft").string() + " --rank 40 --steps 1"),
                       "expected at most min(out, in) = 32 of model.layers.0.self_attn.k_proj.weight");
  nlohmann::json cfg = config_to_json(preset_config("test"));
  cfg["num_hidden_layers"] = 4294967296;
  test::write_file(f.dir / "big.json", cfg.dump());
  expect_clean_failure(run_bounded("train --config " + (f.dir / "big.json").string() + " --data " + f.data +
                                   " --out " + (f.dir / "r").string() + " --steps 1"),
                       "num_hidden_layers: found 4294967296, expected 1 .. 1024");
  expect_clean_failure(run_bounded("train --config test --data " + f.data + " --out " + (f.dir / "r").string() +
                                   " --steps 1 --seq 100000000"),
                       "max_position_embeddings: found 100000000, expected 1 .. 16777216");
}

TEST(Hardening, EvalSeqZeroIsAnErrorNotSigfpe) {
  Files f;
  expect_clean_failure(run_bounded("eval -m " + f.ck + " --data " + f.data + " --seq 0"),
                       "eval: --seq: found 0, expected 1 .. 16777216");
  expect_clean_failure(run_bounded("eval -m " + f.ck + " --data " + f.data + " --batch 0"),
                       "eval: --batch: found 0, expected 1 .. 65536");
  expect_clean_failure(run_bounded("eval -m " + f.ck + " --data " + f.data + " --split val --val-fraction -1"),
                       "eval: --val-fraction: found -1, expected a share in (0, 1]");
}

TEST(Hardening, FifosAndDevicesAreRefusedNotReadForever) {
  Files f;
  const std::string fifo = (f.dir / "fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_clean_failure(run_bounded("generate -m " + fifo + " -p hi -n 1", 20), "not a regular file");
  expect_clean_failure(run_bounded("eval -m " + fifo + " --data " + f.data, 20), "not a regular file");
  expect_clean_failure(run_bounded("pack " + fifo + " " + (f.dir / "o.st").string(), 20), "not a regular file");
  for (const std::string& data : {fifo, std::string("/dev/zero")}) {
    expect_clean_failure(run_bounded("train --config test --data " + data + " --out " + (f.dir / "r").string() +
                                     " --steps 1", 20),
                         "data: path '" + data + "': not a regular file");
  }
  expect_clean_failure(run_bounded("train --config " + fifo + " --data " + f.data + " --out " +
                                   (f.dir / "r2").string() + " --steps 1", 20),
                       "not a regular file (found a FIFO");
}

TEST(Hardening, JsonErrorsNameFileAndKey) {
  Files f;
  test::write_file(f.dir / "bad.json", "{\"model_size\": \"test\", \"hidden_size\": [1]}");
  auto r = run_bounded("train --config " + (f.dir / "bad.json").string() + " --data " + f.data + " --out " +
                       (f.dir / "r").string() + " --steps 1");
  expect_clean_failure(r, "bad.json: key 'hidden_size': found [1] (array), expected an integer");
  EXPECT_EQ(r.exit_code, 1);
  test::write_file(f.dir / "trunc.json", "{\"model_size\": ");
  r = run_bounded("train --config " + (f.dir / "trunc.json").string() + " --data " + f.data + " --out " +
                  (f.dir / "r").string() + " --steps 1");
  expect_clean_failure(r, "trunc.json: not valid JSON");
}

TEST(Hardening, LoraWeightThatIsNotANumberIsNamed) {
  Files f;
  ASSERT_EQ(test::run_cli("finetune --base " + f.packed + " --data " + f.data + " --out " + (f.dir / "ft").string() +
                          " --rank 2 --steps 1 --seq 16 --batch 1 --eval-every -1 --val-fraction 0")
                .exit_code,
            0);
  expect_clean_failure(run_bounded("generate -m " + f.packed + " --lora " + (f.dir / "ft").string() + ":0.5x -p hi -n 1"),
                       "weight '0.5x' is not a number");
}

TEST(Hardening, AHugePromptIsRefusedWithoutBeingEchoed) {
  Files f;
  test::write_file(f.dir / "big.txt", std::string(10'000'000, 'x'));
  const auto r = run_bounded("generate -m " + f.packed + " --file " + (f.dir / "big.txt").string() + " -n 1");
  expect_clean_failure(r, "the prompt has 10000000 tokens, more than the context of");
  EXPECT_LT(r.output.size(), 2000u) << r.output.substr(0, 200);
}

TEST(Hardening, TrainOutputDirectoryRules) {
  Files f;
  const std::string out = (f.dir / "run").string();
  const std::string base = "train --config test --data " + f.data + " --seq 16 --batch 1 --eval-every 0 --val-fraction 0 "
                           "--checkpoint-every 1 --out " + out;
  test::write_file(f.dir / "run", "x");
  auto r = run_bounded(base + " --steps 2");
  expect_clean_failure(r, "found a file, expected a directory for checkpoints");
  EXPECT_EQ(r.output.find("step 1"), std::string::npos) << r.output;  // failed before any step
  fs::remove(f.dir / "run");
  ASSERT_EQ(run_bounded(base + " --steps 2").exit_code, 0);
  r = run_bounded(base + " --steps 2");
  expect_clean_failure(r, "already holds a run (step-00000002)");
  EXPECT_TRUE(fs::exists(f.dir / "run" / "step-00000002" / "model.safetensors"));
  r = run_bounded(base + " --steps 1 --overwrite");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(f.dir / "run" / "step-00000002"));
  EXPECT_EQ(test::read_file(f.dir / "run" / "latest"), "step-00000001\n");
  expect_clean_failure(run_bounded(base + " --steps 1 --log-json /dev/full --overwrite"),
                       "--log-json '/dev/full': write failed");
}

// finetune's top-level adapter (what `--lora OUT` reads) is never one run's weights beside another's config:
// --overwrite with another rank leaves a pair that loads, and no staging directory behind.
TEST(Hardening, TheTopLevelAdapterIsAlwaysAPair) {
  Files f;
  const std::string out = (f.dir / "ft").string();
  const std::string base = "finetune -m " + f.packed + " --data " + f.data + " --seq 16 --batch 1 --steps 1 "
                           "--eval-every 0 --val-fraction 0 --out " + out;
  ASSERT_EQ(run_bounded(base + " --rank 2").exit_code, 0);
  auto r = run_bounded(base + " --rank 4 --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto cfg = nlohmann::json::parse(test::read_file(f.dir / "ft" / "adapter_config.json"));
  EXPECT_EQ(cfg["r"], 4);
  r = run_bounded("generate -m " + f.packed + " --lora " + out + " -p x -n 2 --temperature 0");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const auto& e : fs::directory_iterator(f.dir / "ft")) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

}  // namespace
}  // namespace tritter
