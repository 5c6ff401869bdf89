#include "io/atomic_file.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TEST(AtomicFile, CommitReplacesTarget) {
  test::TempDir dir;
  const auto path = dir / "out.txt";
  test::write_file(path, "old");
  write_file_atomic(path, "new contents");
  EXPECT_EQ(read_file_bytes(path), "new contents");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);  // no temporaries left
}

TEST(AtomicFile, UncommittedLeavesTargetUntouched) {
  test::TempDir dir;
  const auto path = dir / "out.txt";
  test::write_file(path, "old");
  {
    AtomicFile f(path);
    f.write("half");
  }  // destroyed without commit, as when an exception unwinds
  EXPECT_EQ(read_file_bytes(path), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(AtomicFile, UnwritableDirectoryNamesThePath) {
  try {
    write_file_atomic("/nonexistent-dir/x.bin", "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.bin"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_file_bytes("/nonexistent-dir/x.bin"), Error);
}

}  // namespace
}  // namespace tritter
