// The façade's per-step training records (StepCallback) and curate(): what the Python bindings build on.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "tritter.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TEST(ApiSteps, EveryStepReportedBesideTheLines) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  for (int f = 0; f < 20; ++f) {  // documents for both splits (held out by hash)
    std::string text;
    for (int i = 0; i < 20; ++i) text += "def g" + std::to_string(f * 100 + i) + "(a, b):\n    return a + b\n\n";
    std::string name = "d";
    name += std::to_string(f);
    name += ".py";  // appended: GCC 12's -Wrestrict misreads "d" + std::string (a false positive)
    test::write_file(dir.path() / "data" / name, text);
  }
  TrainParams t;
  t.config = "test";
  t.loop.data = {(dir.path() / "data").string()};
  t.loop.out = (dir.path() / "run").string();
  t.loop.steps = 6;
  t.loop.batch = 2;
  t.loop.seq = 32;
  t.loop.warmup = 1;
  t.loop.eval_every = 3;
  t.loop.eval_windows = 2;
  t.loop.log_every = 100;  // lines only for the first, evaluated and last steps; records for all
  t.loop.val_fraction = 0.5;
  t.loop.threads = 1;
  std::vector<TrainStep> steps;
  int lines = 0;
  const TrainSummary s = train_model(t, [&](const std::string&) { return ++lines, true; },
                                     [&](const TrainStep& r) { return steps.push_back(r), true; });
  ASSERT_EQ(steps.size(), 6u);
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].step, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(steps[i].steps, 6);
    EXPECT_EQ(steps[i].loss, s.losses[i]);  // the same double the summary holds
    EXPECT_TRUE(std::isfinite(steps[i].loss));
    EXPECT_GT(steps[i].lr, 0);
    EXPECT_EQ(steps[i].tokens, steps[i].step * 2 * 32);
    EXPECT_FALSE(steps[i].skipped_step);
    // Validation at steps 3 and 6 only.
    if (steps[i].step % 3 == 0) EXPECT_GT(steps[i].val_bpb, 0) << steps[i].step;
    else EXPECT_EQ(steps[i].val_bpb, -1) << steps[i].step;
  }
  EXPECT_EQ(steps.back().val_bpb, s.last_val_bpb);
  EXPECT_GT(lines, 0);

  // The record callback's false stops the run after that step, with a checkpoint.
  t.loop.out = (dir.path() / "stopped").string();
  t.loop.steps = 50;
  const TrainSummary st = train_model(t, {}, [](const TrainStep& r) { return r.step < 2; });
  EXPECT_TRUE(st.interrupted);
  EXPECT_EQ(st.steps_done, 2);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "stopped" / "latest"));
}

TEST(ApiSteps, CurateReturnsTheReport) {
  test::TempDir dir;
  const std::string body = "def f(x):\n    return x * 2\n\n\ndef g(y):\n    return y + 1\n";
  std::filesystem::create_directories(dir.path() / "src");
  test::write_file(dir.path() / "src" / "a.py", body);
  test::write_file(dir.path() / "src" / "b.py", body);
  CurateParams c;
  c.inputs = {(dir.path() / "src").string()};
  c.out = (dir.path() / "out").string();
  c.config_json = R"({"near_dedup": false})";
  c.threads = 1;
  const std::string report = curate(c);
  EXPECT_NE(report.find("\"docs_in\":2"), std::string::npos) << report;
  EXPECT_NE(report.find("\"exact_duplicates\":1"), std::string::npos) << report;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "out" / "report.json"));
  c.config = "x.toml";
  try {
    curate(c);
    FAIL() << "config file and JSON both given";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at most one"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tritter
