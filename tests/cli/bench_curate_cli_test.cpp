// `tritter bench curate`: one untimed run, then --reps runs per thread count with the median shown, the targets
// judged per thread count; and its errors on bad arguments.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "util/test_util.h"

namespace tritter {
namespace {

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST(BenchCurateCli, MediansPerThreadCountAfterAColdRun) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "in");
  for (int i = 0; i < 3; ++i) {
    std::ofstream(dir / "in" / ("m" + std::to_string(i) + ".py"))
        << "def f" << i << "(x):\n    \"\"\"Add " << i << ".\"\"\"\n    return x + " << i << "\n";
  }
  // A thread count given twice is one column (the repetitions are --reps).
  const auto r = test::run_cli("bench curate " + (dir / "in").string() + " --threads-list 1,2,1 --reps 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "first run (cold caches, 1 thread(s), not in the table)"), 1u) << r.output;
  EXPECT_EQ(count_of(r.output, "median of 2 run(s) per thread count"), 1u) << r.output;
  EXPECT_EQ(count_of(r.output, "targets at 1 thread(s), medians"), 1u) << r.output;
  EXPECT_EQ(count_of(r.output, "targets at 2 thread(s), medians"), 1u) << r.output;
  std::istringstream in(r.output);
  int document_rows = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("documents in / MB", 0) != 0) continue;
    ++document_rows;
    EXPECT_EQ(count_of(line, "3/"), 2u) << line;  // 3 files, 2 columns
  }
  EXPECT_EQ(document_rows, 1) << r.output;
}

TEST(BenchCurateCli, RefusesBadArguments) {
  for (const char* args : {"--reps 0", "--threads-list 1,x", "--threads-list 0"}) {
    const auto r = test::run_cli(std::string("bench curate /nonexistent ") + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(std::string(args).substr(0, std::string(args).find(' '))), std::string::npos)
        << args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace tritter
