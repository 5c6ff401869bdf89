// `tritter finetune`: LoRA / QLoRA on a frozen packed ternary base (issue 6; docs/lora.md).
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "core/error.h"
#include "train/lora_finetune.h"
#include "train/lora_io.h"

namespace tritter::cli {

namespace {

std::atomic<bool> g_ft_stop{false};
extern "C" void on_ft_interrupt(int) {
  g_ft_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

struct FinetuneArgs {
  std::string base, out, resume, log_json, targets = "q_proj,k_proj,v_proj,o_proj", schedule = "cosine", init = "kaiming";
  std::vector<std::string> data, ext;
  int64_t rank = 16, steps = 200, batch = 8, seq = 256, accum = 1, warmup = -1, eval_every = 50, eval_windows = 64;
  int64_t checkpoint_every = 100, keep = 3, log_every = 10;
  double alpha = 16, dropout = 0, lr = 1e-3, wd = 0, clip = 1.0, val_fraction = 0.05, min_ratio = 0.1;
  uint64_t seed = 1234;
  bool recompute = false;
};

void run_finetune_cmd(const FinetuneArgs& a, CLI::App* cmd, const GlobalOptions& global) {
  auto ctx = make_context(global);
  train::FinetuneOptions o;
  std::filesystem::path resume;
  auto given = [&](const char* flag) { return cmd->count(flag) > 0; };
  if (!a.resume.empty()) {
    resume = train::latest_checkpoint(a.resume);
    o = train::read_finetune_options(resume);
    if (given("--steps")) o.train.steps = a.steps;
    if (given("--out")) o.train.out_dir = a.out;
  } else {
    if (a.base.empty()) throw_error("finetune: --base: none given, expected a packed model or checkpoint");
    if (a.data.empty()) throw_error("finetune: --data: none given, expected files or directories");
    if (a.out.empty()) throw_error("finetune: --out: none given, expected a directory for the adapter");
    o.base = a.base;
    o.lora.rank = a.rank;
    o.lora.alpha = a.alpha;
    o.lora.dropout = a.dropout;
    o.lora.targets = train::parse_lora_targets(a.targets);
    o.lora.init = a.init;
    train::TrainOptions& t = o.train;
    t.data.paths = a.data;
    if (!a.ext.empty()) t.data.extensions = a.ext;
    t.data.val_fraction = a.val_fraction;
    t.batch = a.batch;
    t.seq = a.seq;
    t.steps = a.steps;
    t.accum = a.accum;
    t.schedule.kind = a.schedule;
    t.schedule.peak_lr = a.lr;
    t.schedule.wd = a.wd;
    t.schedule.warmup = a.warmup >= 0 ? a.warmup : a.steps > 1 ? std::max<int64_t>(1, a.steps / 20) : 0;
    t.schedule.min_ratio = a.min_ratio;
    t.clip = a.clip;
    t.seed = a.seed;
    t.eval_every = a.eval_every;
    t.eval_windows = a.eval_windows;
    t.checkpoint_every = a.checkpoint_every;
    t.keep = a.keep;
    t.log_every = a.log_every;
    t.out_dir = a.out;
    t.log_json = a.log_json;
    t.recompute = a.recompute;
  }
  std::signal(SIGINT, on_ft_interrupt);
  std::signal(SIGTERM, on_ft_interrupt);
  const bool quiet = global.quiet;
  auto print = [quiet](const std::string& line) {
    if (quiet) return;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  if (!resume.empty()) print("resuming from " + resume.string());
  const train::FinetuneResult r = train::run_finetune(*ctx, o, resume, &g_ft_stop, print);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::printf("%s at step %lld: loss %.4f, val bpb %s (base %s), %.0f tokens/s; adapter in %s\n",
              r.train.interrupted ? "interrupted" : "done", static_cast<long long>(r.train.steps_done),
              r.train.last_loss, r.train.last_val_bpb >= 0 ? std::to_string(r.train.last_val_bpb).c_str() : "-",
              r.base_val_bpb >= 0 ? std::to_string(r.base_val_bpb).c_str() : "-", r.train.tokens_per_s,
              o.train.out_dir.c_str());
}

}  // namespace

void add_finetune_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<FinetuneArgs>();
  CLI::App* c = app.add_subcommand("finetune", "LoRA fine-tuning on a frozen packed ternary base (QLoRA)");
  c->add_option("--base", a->base, "Base model: packed file (tritter pack) or full-precision checkpoint");
  c->add_option("--data", a->data, "Files or directories (recursive); .jsonl/.jsonl.zst read the `text` field");
  c->add_option("--ext", a->ext, "Extensions kept when walking directories");
  c->add_option("--val-fraction", a->val_fraction, "Share of documents held out by hash")->capture_default_str();
  c->add_option("--out", a->out, "Output directory (adapter in PEFT layout + checkpoints)");
  c->add_option("--resume", a->resume, "Continue the fine-tune in this directory exactly");
  c->add_option("--rank", a->rank, "LoRA rank r")->capture_default_str();
  c->add_option("--alpha", a->alpha, "LoRA alpha (scale alpha/r)")->capture_default_str();
  c->add_option("--dropout", a->dropout, "Dropout on the adapter input")->capture_default_str();
  c->add_option("--targets", a->targets, "Comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; "
                                         "or all, attn")->capture_default_str();
  c->add_option("--init", a->init, "A init: kaiming (U(+-1/sqrt(in)), PEFT) or gaussian (N(0, 1/r))")->capture_default_str();
  c->add_option("--steps", a->steps, "Optimizer steps")->capture_default_str();
  c->add_option("--batch", a->batch, "Sequences per micro-batch")->capture_default_str();
  c->add_option("--seq", a->seq, "Tokens per sequence")->capture_default_str();
  c->add_option("--accum", a->accum, "Micro-batches per optimizer step")->capture_default_str();
  c->add_option("--lr", a->lr, "Peak learning rate")->capture_default_str();
  c->add_option("--wd", a->wd, "Weight decay on the adapters")->capture_default_str();
  c->add_option("--schedule", a->schedule, "cosine, wsd, constant, bitnet")->capture_default_str();
  c->add_option("--warmup", a->warmup, "Warmup steps (-1: 5 % of steps)")->capture_default_str();
  c->add_option("--min-lr-ratio", a->min_ratio, "Final LR / peak")->capture_default_str();
  c->add_option("--clip", a->clip, "Global gradient-norm clip (0 = off)")->capture_default_str();
  c->add_option("--seed", a->seed, "Adapter init, dropout and data-sampling seed")->capture_default_str();
  c->add_option("--eval-every", a->eval_every, "Steps between validation passes (0 = at the end)")->capture_default_str();
  c->add_option("--eval-windows", a->eval_windows, "Validation windows per pass")->capture_default_str();
  c->add_option("--checkpoint-every", a->checkpoint_every, "Steps between checkpoints")->capture_default_str();
  c->add_option("--keep", a->keep, "Checkpoints kept")->capture_default_str();
  c->add_option("--log-every", a->log_every, "Steps between progress lines")->capture_default_str();
  c->add_option("--log-json", a->log_json, "Also write progress as JSON lines");
  c->add_flag("--recompute", a->recompute,
              "Gradient checkpointing: keep one layer's activations, re-run each layer's forward in backward");
  c->callback([a, c, &global] { run_finetune_cmd(*a, c, global); });

}

}  // namespace tritter::cli
