// A run's output directory: a file as --out fails before any step, an old run is refused without --resume or
// --overwrite (and --overwrite keeps it until the new run's first checkpoint is whole), a directory another run
// holds is refused naming its pid, temporaries of dead processes are removed at start (live ones kept), a failed
// checkpoint write leaves no partial directory, and --log-json write failures are errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "model/config.h"
#include "train/trainer.h"
#include "util/test_util.h"

namespace tritter::train {
namespace {
using test::error_of;

namespace fs = std::filesystem;

TrainOptions tiny_run(const test::TempDir& dir, int64_t steps) {
  std::ofstream(dir / "d.txt") << std::string(4000, 'a') << "def f(x):\n    return x\n";
  TrainOptions o;
  o.config = preset_config("test");
  o.data.paths = {(dir / "d.txt").string()};
  o.data.val_fraction = 0.0;
  o.batch = 1;
  o.seq = 8;
  o.steps = steps;
  o.eval_every = 0;
  o.checkpoint_every = 1;
  o.keep = 10;
  o.out_dir = (dir / "run").string();
  return o;
}

int steps_run = 0;
TrainResult train(const TrainOptions& o, const fs::path& resume = {}) {
  Context ctx;
  ctx.threads = 1;
  TrainOptions c = o;
  c.on_step = [](const StepRecord&) { ++steps_run; };
  return run_training(ctx, c, resume, nullptr, [](const std::string&) {});
}


// A pid that ran and is gone (its child exited and was reaped).
long dead_pid() {
  const pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  return p;
}

TEST(OutputDir, AFileAsOutFailsBeforeAnyStep) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 3);
  test::write_file(dir / "run", "not a directory");
  steps_run = 0;
  const std::string msg = error_of([&] { train(o); });
  EXPECT_NE(msg.find("train: --out '" + o.out_dir + "': found a file, expected a directory"), std::string::npos) << msg;
  EXPECT_EQ(steps_run, 0);
  EXPECT_EQ(test::read_file(dir / "run"), "not a directory");
}

TEST(OutputDir, AnOldRunIsRefusedWithoutResumeOrOverwrite) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 3);
  train(o);
  const std::string before = read_file_bytes(dir / "run" / "step-00000003" / "model.safetensors");
  steps_run = 0;
  const std::string msg = error_of([&] { train(o); });
  EXPECT_NE(msg.find("already holds a run (step-00000003)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--resume"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--overwrite"), std::string::npos) << msg;
  EXPECT_EQ(steps_run, 0);
  EXPECT_EQ(read_file_bytes(dir / "run" / "step-00000003" / "model.safetensors"), before);

  // --overwrite: the old run's checkpoints (step 3, beyond the new run's 2) go once the new run wrote one, so a
  // later resume continues the new run, not the old one's final checkpoint.
  o.overwrite = true;
  o.steps = 2;
  train(o);
  EXPECT_FALSE(fs::exists(dir / "run" / "step-00000003"));
  EXPECT_TRUE(fs::exists(dir / "run" / "step-00000002"));
  EXPECT_EQ(latest_checkpoint(dir / "run"), dir / "run" / "step-00000002");
}

TEST(OutputDir, ADirectoryAnotherRunHoldsIsRefusedNamingItsPid) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2);
  fs::create_directories(o.out_dir);
  const OutputLock held(o.out_dir, "test");
  const std::string msg = error_of([&] { train(o); });
  EXPECT_NE(msg.find("train: output '" + o.out_dir + "' is locked by pid " + std::to_string(getpid())),
            std::string::npos) << msg;
}

TEST(OutputDir, TemporariesOfDeadProcessesAreRemovedAtStart) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2);
  const fs::path run = o.out_dir;
  const long dead = dead_pid();
  fs::create_directories(run / ("step-00000007.tmp-" + std::to_string(dead)));
  test::write_file(run / ("step-00000007.tmp-" + std::to_string(dead)) / "model.safetensors", std::string(1000, 'x'));
  test::write_file(run / ("latest.tmp-" + std::to_string(dead) + "-0"), "partial");
  test::write_file(run / ("latest.tmp-" + std::to_string(getppid()) + "-3"), "a live process's");
  test::write_file(run / "notes.tmp-abc", "not one of ours");
  train(o);
  EXPECT_FALSE(fs::exists(run / ("step-00000007.tmp-" + std::to_string(dead))));
  EXPECT_FALSE(fs::exists(run / ("latest.tmp-" + std::to_string(dead) + "-0")));
  EXPECT_TRUE(fs::exists(run / ("latest.tmp-" + std::to_string(getppid()) + "-3")));
  EXPECT_TRUE(fs::exists(run / "notes.tmp-abc"));
  EXPECT_EQ(remove_stale_temporaries(run), 0);
}

TEST(OutputDir, LogJsonWriteFailuresAreErrors) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2);
  o.log_json = "/dev/full";
  o.log_every = 1;
  const std::string msg = error_of([&] { train(o); });
  EXPECT_NE(msg.find("train: --log-json '/dev/full': write failed at step 1: No space left on device"),
            std::string::npos) << msg;
}

TEST(OutputDir, ValFractionOutsideZeroToOneIsRefused) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2);
  o.data.val_fraction = -1;
  const std::string msg = error_of([&] { train(o); });
  EXPECT_NE(msg.find("--val-fraction: found -1, expected a share in 0 .. 1"), std::string::npos) << msg;
}

TEST(OutputDir, BatchShapeAndPlannedMemoryAreBoundedBeforeAllocation) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2);
  o.batch = 1000000;
  EXPECT_NE(error_of([&] { train(o); }).find("train: --batch: found 1000000, expected at most 65536"),
            std::string::npos);
  o.batch = 65536;
  o.seq = 65536;
  EXPECT_NE(error_of([&] { train(o); }).find("tokens per micro-batch, expected at most 2147483648"),
            std::string::npos);
  // Legal shapes whose activations exceed any machine: the amount is named, nothing is allocated.
  o.batch = 65536;
  o.seq = 32768;
  o.config.max_position_embeddings = 32768;
  const std::string msg = error_of([&] { train(o); });
  EXPECT_NE(msg.find("out of memory: train: a model of "), std::string::npos) << msg;
  EXPECT_NE(msg.find(" needs "), std::string::npos) << msg;
}

}  // namespace
}  // namespace tritter::train
