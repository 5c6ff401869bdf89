#include "loop_flags.h"

#include <cstdio>
#include <cstdlib>

namespace tritter::cli {

void add_loop_flags(CLI::App* c, LoopArgs& a, const LoopHelp& help) {
  c->add_option("--data", a.data, "Files or directories (recursive); .jsonl/.jsonl.zst read the `text` field");
  c->add_option("--ext", a.ext, help.ext);
  c->add_option("--val-fraction", a.val_fraction, "Share of documents held out by hash")->capture_default_str();
  c->add_option("--steps", a.steps, "Optimizer steps")->capture_default_str();
  c->add_option("--batch", a.batch, "Sequences per micro-batch")->capture_default_str();
  c->add_option("--seq", a.seq, "Tokens per sequence")->capture_default_str();
  c->add_option("--accum", a.accum, "Micro-batches per optimizer step (gradient accumulation)")->capture_default_str();
  c->add_option("--lr", a.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--wd", a.wd, help.wd)->capture_default_str();
  c->add_option("--schedule", a.schedule, help.schedule)->capture_default_str();
  c->add_option("--warmup", a.warmup, help.warmup)->capture_default_str();
  c->add_option("--min-lr-ratio", a.min_ratio, "Final LR / peak for cosine and wsd")->capture_default_str();
  c->add_option("--clip", a.clip, "Global gradient-norm clip (0 = off)")->capture_default_str();
  c->add_option("--seed", a.seed, help.seed)->capture_default_str();
  c->add_option("--eval-every", a.eval_every, "Steps between validation passes (0 = at the end)")
      ->capture_default_str();
  c->add_option("--eval-windows", a.eval_windows, "Validation windows per pass")->capture_default_str();
  c->add_option("--checkpoint-every", a.checkpoint_every, "Steps between checkpoints")->capture_default_str();
  c->add_option("--keep", a.keep, "Checkpoints kept")->capture_default_str();
  c->add_option("--log-every", a.log_every, "Steps between progress lines")->capture_default_str();
  c->add_option("--log-json", a.log_json, "Also write progress as JSON lines (tools/plot_loss.py draws them)");
  c->add_option("--max-bad-steps", a.max_bad, "Consecutive NaN/Inf steps before stopping")->capture_default_str();
  c->add_flag("--recompute", a.recompute, help.recompute);
  c->add_flag("--overwrite", a.overwrite,
              "Replace the run already in --out (its checkpoints are removed once this run's first one is written)");
}

void apply_loop_flags(const LoopArgs& a, train::TrainOptions& o) {
  o.data.paths = a.data;
  if (!a.ext.empty()) o.data.extensions = a.ext;
  o.data.val_fraction = a.val_fraction;
  o.batch = a.batch;
  o.seq = a.seq;
  o.steps = a.steps;
  o.accum = a.accum;
  o.schedule.kind = a.schedule;
  o.schedule.peak_lr = a.lr;
  o.schedule.wd = a.wd;
  o.schedule.min_ratio = a.min_ratio;
  o.clip = a.clip;
  o.seed = a.seed;
  o.eval_every = a.eval_every;
  o.eval_windows = a.eval_windows;
  o.checkpoint_every = a.checkpoint_every;
  o.keep = a.keep;
  o.log_every = a.log_every;
  o.out_dir = a.out;
  o.recompute = a.recompute;
  o.log_json = a.log_json;
  o.max_bad_steps = a.max_bad;
  o.overwrite = a.overwrite;
}

void apply_resume_overrides(const LoopArgs& a, const CLI::App* c, train::TrainOptions& o) {
  if (c->count("--steps")) o.steps = a.steps;
  if (c->count("--data")) o.data.paths = a.data;
  if (c->count("--out")) o.out_dir = a.out;
  if (c->count("--log-json")) o.log_json = a.log_json;
}

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE");
}

int mpi_local_ranks() {
  const char* s = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int n = s ? std::atoi(s) : 1;
  return n > 0 ? n : 1;
}

std::function<void(const std::string&)> progress_printer(const GlobalOptions& global) {
  const bool quiet = global.quiet;
  return [quiet](const std::string& line) {
    if (quiet) return;
    // The trainer's "loss" is the mean cross-entropy per token in nats; "val bpb" is bits per byte. Say the unit.
    std::string shown = line;
    if (const size_t at = shown.find("| loss "); shown.rfind("step ", 0) == 0 && at != std::string::npos) {
      shown.replace(at, 7, "| loss (nats) ");
    }
    std::printf("%s\n", shown.c_str());
    std::fflush(stdout);
  };
}

}  // namespace tritter::cli
