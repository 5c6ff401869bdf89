// `tritter bench batch`: the batched decode step's table (one line per row count, the op split, ratios to one
// row) and its errors on bad arguments.
#include <gtest/gtest.h>

#include <sstream>

#include "util/test_util.h"

namespace tritter {
namespace {

// The table line whose first cell is `rows`, split into cells ("| 1 | 2.0 |" → {"1", "2.0"}).
std::vector<std::string> table_row(const std::string& output, const std::string& rows) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| " + rows + " |", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string cell; std::getline(cs, cell, '|');) {
      const size_t a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
      if (a != std::string::npos) cells.push_back(cell.substr(a, b - a + 1));
    }
    return cells;
  }
  return {};
}

TEST(BenchBatchCli, PrintsOneLinePerRowCountWithTheOpSplit) {
  test::TempDir dir;
  const std::string model = (dir / "m.tpk").string();
  ASSERT_EQ(test::run_cli("init --size test --packed --head i8 -o " + model).exit_code, 0);
  const auto r = test::run_cli("-t 1 bench batch -m " + model + " --rows 1,3 --reps 1 --rounds 1 --positions 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* part : {"i8 head", "5 positions per slot", "| rows | step ms", "ternary GMAC/s", "attention ms",
                           "head GMAC/s"}) {
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  }
  const auto one = table_row(r.output, "1"), three = table_row(r.output, "3");
  ASSERT_EQ(one.size(), 10u) << r.output;
  ASSERT_EQ(three.size(), 10u) << r.output;
  EXPECT_EQ(one[3], "1.00") << r.output;  // the reference row's own ratio
  // The 3-row step's rate against one row's (from the unrounded times; the test model's ms print as 0.0).
  const double ratio = std::stod(three[3]);
  EXPECT_TRUE(ratio > 0.0 && ratio < 1e6) << r.output;
  for (size_t col : {5u, 8u}) {           // the ternary projections and the head were timed: finite GMAC/s
    const double gmacs = std::stod(three[col]);
    EXPECT_TRUE(gmacs > 0.0 && gmacs < 1e6) << col << "\n" << r.output;
  }
}

TEST(BenchBatchCli, RefusesBadRowCounts) {
  for (const char* rows : {"0", "2,x", ","}) {
    const auto r = test::run_cli(std::string("bench batch -m nowhere.tpk --rows ") + rows);
    EXPECT_NE(r.exit_code, 0) << rows;
    EXPECT_NE(r.output.find("--rows"), std::string::npos) << rows << "\n" << r.output;
  }
}

}  // namespace
}  // namespace tritter
