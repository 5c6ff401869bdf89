// The flags `tritter train` and `tritter finetune` share (data, batch shape, schedule, evaluation, checkpoints,
// logging), bound to one struct, each command choosing its defaults; and the progress printer both use.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common.h"
#include "train/trainer.h"

namespace tritter::cli {

struct LoopArgs {
  std::vector<std::string> data, ext;
  std::string out, resume, log_json, schedule;
  int64_t steps = 0, batch = 8, seq = 256, accum = 1, warmup = -1, eval_every = 0, eval_windows = 64;
  int64_t checkpoint_every = 0, keep = 3, log_every = 10, max_bad = 10;
  double lr = 0, wd = 0, clip = 1.0, val_fraction = 0.05, min_ratio = 0.1;
  uint64_t seed = 1234;
  bool recompute = false;
  bool overwrite = false;
};

struct LoopHelp {  // the help texts that differ between the commands
  const char* ext;
  const char* wd;
  const char* schedule;
  const char* warmup;
  const char* seed;
  const char* recompute;
};

void add_loop_flags(CLI::App* c, LoopArgs& a, const LoopHelp& help);
// Everything but the schedule's warmup (each command resolves -1 its own way) into `o`.
void apply_loop_flags(const LoopArgs& a, train::TrainOptions& o);
// On --resume: the flags that may change between invocations (--steps, --data, --out, --log-json) when given.
void apply_resume_overrides(const LoopArgs& a, const CLI::App* c, train::TrainOptions& o);
// Whether this process is a rank started by mpirun (Open MPI's or a PMI launcher's environment), and how many
// ranks share this host (1 when not known).
bool launched_by_mpirun();
int mpi_local_ranks();
// Prints progress lines to stdout (nothing with --quiet), flushed.
std::function<void(const std::string&)> progress_printer(const GlobalOptions& global);

}  // namespace tritter::cli
