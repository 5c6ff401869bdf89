// Output locks, stale temporaries, atomic directory swaps and checked reads (io/atomic_file.h): a failed rename
// reports its own errno (it said "Success"), a FIFO or device is refused without blocking, a second lock names the
// holder's pid, a swapped-in directory is whole, and only dead processes' temporaries are removed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


#include "core/error.h"
#include "io/atomic_file.h"
#include "util/test_util.h"

namespace tritter {
namespace {
using test::error_of;

namespace fs = std::filesystem;


TEST(AtomicFileErrors, AFailedRenameReportsItsOwnErrno) {
  test::TempDir dir;
  fs::create_directories(dir / "target" / "inside");  // a non-empty directory cannot be renamed over
  const std::string msg = error_of([&] { write_file_atomic(dir / "target", "x"); });
  EXPECT_NE(msg.find("cannot rename temporary file"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("Success"), std::string::npos) << msg;
  EXPECT_TRUE(msg.find("Is a directory") != std::string::npos || msg.find("not empty") != std::string::npos) << msg;
  int left = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) left += e.path().filename().string() != "target";
  EXPECT_EQ(left, 0) << "the temporary was left behind";
}

TEST(CheckedRead, FifosAndDevicesAreRefusedAndSizesBounded) {
  test::TempDir dir;
  const fs::path fifo = dir / "fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string msg = error_of([&] { read_file_bytes(fifo); });  // would block forever in open() before
  EXPECT_NE(msg.find("not a regular file (found a FIFO, which would block), expected a regular file"),
            std::string::npos) << msg;
  msg = error_of([&] { read_file_bytes("/dev/zero"); });
  EXPECT_NE(msg.find("'/dev/zero': not a regular file (found a character device)"), std::string::npos) << msg;
  msg = error_of([&] { require_regular_file(fifo, "model"); });
  EXPECT_NE(msg.find("model '" + fifo.string() + "': not a regular file"), std::string::npos) << msg;
  test::write_file(dir / "f", "0123456789");
  EXPECT_EQ(read_file_bytes(dir / "f"), "0123456789");
  msg = error_of([&] { read_file_bytes(dir / "f", 4); });
  EXPECT_NE(msg.find("10 bytes, expected at most 4"), std::string::npos) << msg;
}

TEST(OutputLockTest, ASecondLockNamesTheHolderAndTheLockSitsBesideTheOutput) {
  test::TempDir dir;
  {
    const OutputLock first(dir / "model.st", "pack");
    EXPECT_EQ(first.path(), dir / ".model.st.lock");
    EXPECT_TRUE(fs::exists(dir / ".model.st.lock"));
    const std::string msg = error_of([&] { OutputLock second(dir / "model.st", "pack"); });
    EXPECT_NE(msg.find("pack: output '" + (dir / "model.st").string() + "' is locked by pid " + std::to_string(getpid())),
              std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir / ".model.st.lock"));  // removed on release
  const OutputLock again(dir / "model.st", "pack");  // free once released
  // "out/", "out/." and "out" are one output with one lock.
  fs::create_directories(dir / "out");
  {
    const OutputLock d(dir / "out" / "", "train");
    EXPECT_EQ(d.path(), dir / ".out.lock");
    EXPECT_NE(error_of([&] { OutputLock e(dir / "out" / ".", "train"); }).find("is locked by pid"), std::string::npos);
  }
  // A child holding a directory's lock: the parent is refused while it lives, free once it is gone (kill -9
  // releases a flock and leaves the lock file, which the next run simply locks).
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    const OutputLock held(dir / "out", "child");
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const std::string msg = error_of([&] { OutputLock mine(dir / "out", "train"); });
  EXPECT_NE(msg.find("is locked by pid " + std::to_string(child)), std::string::npos) << msg;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(fs::exists(dir / ".out.lock"));
  EXPECT_NO_THROW(OutputLock(dir / "out", "train"));
}

// A directory swapped by rename keeps its lock: the lock is beside it, not inside the directory that moves.
TEST(OutputLockTest, TheLockOutlivesASwapOfTheDirectory) {
  test::TempDir dir;
  fs::create_directories(dir / "out");
  const OutputLock held(dir / "out", "curate");
  const fs::path staged = staging_dir_for(dir / "out");
  EXPECT_EQ(staged, dir / (".out.tmp-" + std::to_string(getpid())));
  fs::create_directories(staged);
  replace_dir_atomic(staged, dir / "out");
  EXPECT_NE(error_of([&] { OutputLock second(dir / "out", "curate"); }).find("is locked by pid"), std::string::npos);
}

TEST(DirectorySwap, TheTargetIsAlwaysWholeAndTheStagedNameGoes) {
  test::TempDir dir;
  fs::create_directories(dir / "out");
  test::write_file(dir / "out" / "a", "old");
  fs::create_directories(dir / "new");
  test::write_file(dir / "new" / "a", "new");
  test::write_file(dir / "new" / "b", "new");
  replace_dir_atomic(dir / "new", dir / "out");
  EXPECT_EQ(test::read_file(dir / "out" / "a"), "new");
  EXPECT_EQ(test::read_file(dir / "out" / "b"), "new");
  EXPECT_FALSE(fs::exists(dir / "new"));
  fs::create_directories(dir / "fresh");
  replace_dir_atomic(dir / "fresh", dir / "absent");  // no target yet: a plain rename
  EXPECT_TRUE(fs::is_directory(dir / "absent"));
}

TEST(StaleTemporaries, OnlyDeadProcessesOwnNamesWithThePrefixGo) {
  test::TempDir dir;
  const pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  const std::string dead = std::to_string(p), live = std::to_string(getpid());
  for (const std::string& n : {"m.st.tmp-" + dead + "-0", "m.st.tmp-" + live + "-0", "x.st.tmp-" + dead + "-1",
                               "step-00000002.tmp-" + dead, "run.old-" + dead, std::string("m.st.tmp-12ab"), std::string("m.st")}) {
    test::write_file(dir / n, "x");
  }
  EXPECT_EQ(remove_stale_temporaries(dir.path(), "m.st.tmp-"), 1);
  EXPECT_FALSE(fs::exists(dir / ("m.st.tmp-" + dead + "-0")));
  EXPECT_TRUE(fs::exists(dir / ("x.st.tmp-" + dead + "-1")));  // another prefix
  EXPECT_EQ(remove_stale_temporaries(dir.path()), 3);
  for (const std::string& n : {"m.st.tmp-" + live + "-0", std::string("m.st.tmp-12ab"), std::string("m.st")}) {
    EXPECT_TRUE(fs::exists(dir / n)) << n;
  }
}

// A kill between the two renames of the no-exchange fallback leaves only the old copy: it is put back, not removed.
TEST(StaleTemporaries, AnOldCopyGoesBackWhenItsDirectoryIsMissing) {
  test::TempDir dir;
  const pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  const std::string dead = std::to_string(p);
  fs::create_directories(dir / (".out.old-" + dead));
  test::write_file(dir / (".out.old-" + dead) / "report.json", "old");
  fs::create_directories(dir / (".out.tmp-" + dead));  // the new one, half built
  EXPECT_EQ(remove_stale_temporaries(dir.path(), ".out."), 2);
  EXPECT_EQ(test::read_file(dir / "out" / "report.json"), "old");
  EXPECT_FALSE(fs::exists(dir / (".out.tmp-" + dead)));
  // With the directory present, an old copy is only debris.
  fs::create_directories(dir / (".out.old-" + dead));
  EXPECT_EQ(remove_stale_temporaries(dir.path(), ".out."), 1);
  EXPECT_FALSE(fs::exists(dir / (".out.old-" + dead)));
  EXPECT_TRUE(fs::exists(dir / "out" / "report.json"));
}

}  // namespace
}  // namespace tritter
