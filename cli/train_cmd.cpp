// `tritter train`: quantization-aware training from text/code files (issue 5). Parses flags into TrainOptions,
// installs the Ctrl-C handler (first Ctrl-C: checkpoint and exit cleanly; second: default), prints progress.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "core/error.h"
#include "model/config.h"
#include "train/trainer.h"

namespace tritter::cli {

namespace {

std::atomic<bool> g_stop{false};  // set by SIGINT/SIGTERM; polled by the loop after each step

extern "C" void on_interrupt(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills
}

struct TrainArgs {
  std::string config = "tiny";
  std::vector<std::string> data, ext;
  std::string out, resume, log_json, schedule = "bitnet";
  int64_t steps = 1000, batch = 8, seq = 256, accum = 1, warmup = -1, eval_every = 200, eval_windows = 64;
  int64_t checkpoint_every = 500, keep = 3, log_every = 10, max_bad = 10;
  double lr = 1.5e-3, wd = 0.1, clip = 1.0, val_fraction = 0.05, min_ratio = 0.1;
  uint64_t seed = 1234;
  bool recompute = false, no_quant = false;
};

TritterConfig resolve_model_config(const std::string& name) {
  if (std::filesystem::exists(name)) return load_config_file(name);
  return preset_config(name);
}

void run_train(const TrainArgs& a, CLI::App* cmd, const GlobalOptions& global) {
  auto ctx = make_context(global);
  train::TrainOptions o;
  std::filesystem::path resume;
  auto given = [&](const char* flag) { return cmd->count(flag) > 0; };
  if (!a.resume.empty()) {
    resume = train::latest_checkpoint(a.resume);
    o = train::read_checkpoint_options(resume);
    if (given("--steps")) o.steps = a.steps;
    if (given("--data")) o.data.paths = a.data;
    if (given("--out")) o.out_dir = a.out;
    if (given("--log-json")) o.log_json = a.log_json;
  } else {
    if (a.data.empty()) throw_error("train: --data: none given, expected files or directories");
    if (a.out.empty()) throw_error("train: --out: none given, expected a directory for checkpoints");
    o.config = resolve_model_config(a.config);
    if (a.no_quant) o.config.quant = false;
    if (a.seq > o.config.max_position_embeddings) o.config.max_position_embeddings = a.seq;
    o.config.validate();
    o.data.paths = a.data;
    if (!a.ext.empty()) o.data.extensions = a.ext;
    o.data.val_fraction = a.val_fraction;
    o.batch = a.batch;
    o.seq = a.seq;
    o.steps = a.steps;
    o.accum = a.accum;
    o.schedule.kind = a.schedule;
    o.schedule.peak_lr = a.lr;
    if (!o.config.quant) {  // spec §8: the FP baseline uses one cosine stage and a lower peak unless told otherwise
      if (!given("--schedule")) o.schedule.kind = "cosine";
      if (!given("--lr")) o.schedule.peak_lr = 6e-4;
    }
    o.schedule.wd = a.wd;
    o.schedule.warmup = a.warmup;
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
  }
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  const bool quiet = global.quiet;
  auto print = [quiet](const std::string& line) {
    if (quiet) return;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  if (!resume.empty()) print("resuming from " + resume.string());
  const train::TrainResult r = train::run_training(*ctx, o, resume, &g_stop, print);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::printf("%s at step %lld: loss %.4f, val bpb %s, %.0f tokens/s, %lld skipped steps; checkpoints in %s\n",
              r.interrupted ? "interrupted" : "done", static_cast<long long>(r.steps_done), r.last_loss,
              r.last_val_bpb >= 0 ? std::to_string(r.last_val_bpb).c_str() : "-", r.tokens_per_s,
              static_cast<long long>(r.skipped), o.out_dir.c_str());
}

}  // namespace

void add_train_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = app.add_subcommand("train", "Quantization-aware training (BitNet b1.58) on text/code files");
  c->add_option("--config", a->config, "Preset (test, tiny, small, ...) or a config JSON file")->capture_default_str();
  c->add_option("--data", a->data, "Files or directories (recursive); .jsonl/.jsonl.zst read the `text` field");
  c->add_option("--ext", a->ext, "Extensions kept when walking directories (default .py .jsonl .jsonl.zst .txt .md)");
  c->add_option("--val-fraction", a->val_fraction, "Share of documents held out by hash")->capture_default_str();
  c->add_option("--out", a->out, "Checkpoint directory");
  c->add_option("--resume", a->resume, "Continue the run in this directory (its latest checkpoint) exactly");
  c->add_option("--steps", a->steps, "Optimizer steps")->capture_default_str();
  c->add_option("--batch", a->batch, "Sequences per micro-batch")->capture_default_str();
  c->add_option("--seq", a->seq, "Tokens per sequence")->capture_default_str();
  c->add_option("--accum", a->accum, "Micro-batches per optimizer step (gradient accumulation)")->capture_default_str();
  c->add_option("--lr", a->lr, "Peak learning rate")->capture_default_str();
  c->add_option("--wd", a->wd, "Weight decay on 2-D tensors (stage 1 for bitnet)")->capture_default_str();
  c->add_option("--schedule", a->schedule, "bitnet (two-stage), cosine, wsd, constant")->capture_default_str();
  c->add_option("--warmup", a->warmup, "Warmup steps (-1: max(100, 1 %), at most 10 % of steps)")
      ->capture_default_str();
  c->add_option("--min-lr-ratio", a->min_ratio, "Final LR / peak for cosine and wsd")->capture_default_str();
  c->add_option("--clip", a->clip, "Global gradient-norm clip (0 = off)")->capture_default_str();
  c->add_option("--seed", a->seed, "Init and data-sampling seed")->capture_default_str();
  c->add_option("--eval-every", a->eval_every, "Steps between validation passes (0 = at the end)")
      ->capture_default_str();
  c->add_option("--eval-windows", a->eval_windows, "Validation windows per pass")->capture_default_str();
  c->add_option("--checkpoint-every", a->checkpoint_every, "Steps between checkpoints")->capture_default_str();
  c->add_option("--keep", a->keep, "Checkpoints kept")->capture_default_str();
  c->add_option("--log-every", a->log_every, "Steps between progress lines")->capture_default_str();
  c->add_option("--log-json", a->log_json, "Also write progress as JSON lines (tools/plot_loss.py draws them)");
  c->add_option("--max-bad-steps", a->max_bad, "Consecutive NaN/Inf steps before stopping")->capture_default_str();
  c->add_flag("--recompute", a->recompute, "Gradient checkpointing: keep layer inputs only, recompute in backward");
  c->add_flag("--no-quant", a->no_quant,
              "Full-precision baseline (quant=false), same code; defaults to --schedule cosine --lr 6e-4 (spec §8)");
  c->callback([a, c, &global] { run_train(*a, c, global); });
}

}  // namespace tritter::cli
