// `tritter specs` and `tritter hw`: output content, --json, and exit codes and messages on bad arguments.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "util/test_util.h"

namespace tritter {
namespace {

using json = nlohmann::json;

void expect_contains(const test::CliResult& r, std::initializer_list<const char*> fragments) {
  for (const char* f : fragments) EXPECT_NE(r.output.find(f), std::string::npos) << "missing '" << f << "' in:\n" << r.output;
}

json parse(const test::CliResult& r) {
  try {
    return json::parse(r.output);
  } catch (const json::parse_error& e) {
    ADD_FAILURE() << e.what() << "\n" << r.output;
    return json();
  }
}

TEST(SpecsCli, TablePrintsEverySizeWithUnits) {
  const auto r = test::run_cli("specs");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, {"1B", "70B", "261.05 MiB", "573.86 MiB", "1.45 GiB", "16.25 GiB", "6.21 B", "32/8", "4:1",
                      "30B uses 4 kv heads"});
}

TEST(SpecsCli, TableJson) {
  const auto r = test::run_cli("specs --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = parse(r);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 10u);
  EXPECT_EQ(j[2]["size"], "7B");
  EXPECT_EQ(j[2]["params_nominal"], 6208102400);
  EXPECT_EQ(j[2]["packed_bytes_nominal"], 1558088200);
}

TEST(SpecsCli, ModelDetail) {
  const auto r = test::run_cli("specs --model 7B");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, {"q_proj", "6,208,458,752", "6,208,102,400", "1.45 GiB", "4.00 GiB", "16.00 GiB", "1.50 GiB",
                      "11.6 GiB", "recompute on", "13,631,488", "16,777,216", "60.83 GiB", "3.70 GiB"});
  const auto j = parse(test::run_cli("specs --model 7B --json"));
  EXPECT_EQ(j["params_tritter"], 6208458752);
  EXPECT_EQ(j["training"]["qlora"][1]["lora_params"], 13631488);
  // Small presets work too; figures beyond their context are left out.
  const auto t = test::run_cli("specs --model test");
  EXPECT_EQ(t.exit_code, 0) << t.output;
}

TEST(SpecsCli, BadArguments) {
  auto r = test::run_cli("specs --model 8B");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_contains(r, {"error:", "'8B'", "7B"});
  r = test::run_cli("specs --model 7B --seq 0");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_contains(r, {"--seq 0"});
  r = test::run_cli("specs --config /nonexistent/config.json");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = test::run_cli("specs --model 7B --config x.json");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  expect_contains(r, {"not both"});
}

TEST(HwCli, CheckSevenBOnRtx5080) {
  const auto r = test::run_cli("hw check 7B --profile rtx5080 --desktop headless");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, {"NVIDIA RTX 5080", "13.04 GiB", "inference", "FITS", "QLoRA", "DOES NOT FIT", "headroom",
                      "instead of full training"});
  const json j = parse(test::run_cli("hw check 7B --profile rtx5080 --desktop headless --json"));
  ASSERT_EQ(j["checks"].size(), 3u);
  EXPECT_EQ(j["checks"][0]["fits"], true);
  EXPECT_EQ(j["checks"][1]["fits"], true);
  EXPECT_EQ(j["checks"][2]["fits"], false);
  EXPECT_NEAR(j["budget_gib"].get<double>(), 13.04, 0.005);
}

TEST(HwCli, CheckSuggestsChanges) {
  const auto r = test::run_cli("hw check 7B --profile rtx5080 --context 131072 --mode infer --desktop headless");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, {"DOES NOT FIT", "to make it fit", "--kv int4", "--context 65536"});
  const auto s = test::run_cli("hw check 70B --profile rtx5080 --mode infer --kv int4 --context 4096");
  ASSERT_EQ(s.exit_code, 0) << s.output;
  expect_contains(s, {"layer streaming", "--stream-group 4"});
}

TEST(HwCli, BadArguments) {
  struct Case {
    const char* args;
    std::initializer_list<const char*> fragments;
  };
  const Case cases[] = {
      {"hw check 9B --profile rtx5080", {"'9B'", "7B"}},
      {"hw check 7B --profile rtx9999", {"profile 'rtx9999' is unknown", "rtx5080"}},
      {"hw check 7B --profile rtx5080 --mode fly", {"mode 'fly'", "infer, qlora, train"}},
      {"hw check 7B --profile rtx5080 --context 0", {"--context 0"}},
      {"hw check 7B --profile rtx5080 --context 262144", {"262144", "max_position_embeddings"}},
      {"hw check 7B --profile rtx5080 --kv int3", {"'int3'"}},
      {"hw check 7B --profile rtx5080 --desktop beos", {"'beos'"}},
      {"hw check 7B --profile rtx5080 --rank 0", {"--rank 0"}},
      {"hw feasibility --profile nope", {"'nope'"}},
  };
  for (const auto& c : cases) {
    const auto r = test::run_cli(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args << "\n" << r.output;
    expect_contains(r, c.fragments);
  }
  EXPECT_NE(test::run_cli("hw check").exit_code, 0);  // the size is required
  EXPECT_NE(test::run_cli("hw").exit_code, 0);        // a subcommand is required
}

TEST(HwCli, FeasibilityProfilesDetect) {
  auto r = test::run_cli("hw feasibility --desktop headless");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, {"rtx5080", "h200", "70B", "Quick estimate for an RTX 5080", "652.06", "13,631,488", "16,777,216"});
  const json f = parse(test::run_cli("hw feasibility --desktop headless --json"));
  ASSERT_EQ(f["grid"].size(), 10u);
  EXPECT_EQ(f["grid"][2]["profiles"]["rtx5080"]["qlora"], true);
  EXPECT_EQ(f["grid"][2]["profiles"]["rtx5080"]["train"], false);
  r = test::run_cli("hw profiles --desktop x11");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, {"rtx5080", "12.77", "h200", "verified"});
  const json d = parse(test::run_cli("hw detect --json"));
  EXPECT_TRUE(d.contains("gpu_note"));
  EXPECT_GT(d["cpu"]["logical_cores"].get<int>(), 0);
  EXPECT_GT(d["cpu"]["triad_bandwidth_gbs"].get<double>(), 0.0);
}

}  // namespace
}  // namespace tritter
