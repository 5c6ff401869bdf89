#include <gtest/gtest.h>

#include "util/test_util.h"

namespace tritter {
namespace {

TEST(Cli, VersionRuns) {
  const auto r = test::run_cli("version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("simd:"), std::string::npos) << r.output;
}

TEST(Cli, UnknownCommandFails) {
  const auto r = test::run_cli("no-such-command");
  EXPECT_NE(r.exit_code, 0);
}

TEST(Cli, BadKernelTierNamesTheFlag) {
  const auto r = test::run_cli("--kernels sse version");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--kernels"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tritter
