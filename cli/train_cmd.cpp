// `tritter train`: quantization-aware training from text/code files (docs/training.md). Parses flags into TrainOptions,
// installs the Ctrl-C handler (first Ctrl-C: checkpoint and exit cleanly; second: default), prints progress.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "loop_flags.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "model/config.h"
#include "text/hf_tokenizer.h"
#include "train/dist.h"
#include "train/trainer.h"

namespace tritter::cli {

namespace {

std::atomic<bool> g_stop{false};  // set by SIGINT/SIGTERM; polled by the loop after each step
std::atomic<bool> g_stepping{false};  // the loop has finished a step: there is progress a checkpoint would keep

extern "C" void on_interrupt(int sig) {
  if (!g_stepping.load()) {  // reading data or initializing: nothing to save, so stop now (not after step 1)
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills
  std::signal(SIGTERM, SIG_DFL);
}

struct TrainArgs {
  std::string config = "tiny";
  bool no_quant = false;
  int zero = 1;
  std::string attention = "causal";
  int64_t prefix_length = 0;
  std::string tokenizer;  // tokenizer.json (or a folder holding one); "" = the byte tokenizer
  LoopArgs loop = [] {
    LoopArgs l;
    l.steps = 1000;
    l.lr = 1.5e-3;
    l.wd = 0.1;
    l.schedule = "bitnet";
    l.eval_every = 200;
    l.checkpoint_every = 500;
    return l;
  }();
};

TritterConfig resolve_model_config(const std::string& name) {
  if (std::filesystem::exists(name)) return load_config_file(name);
  return preset_config(name);
}

void run_train(const TrainArgs& a, CLI::App* cmd, const GlobalOptions& global) {
  // Under mpirun: one rank of a data-parallel run (docs/distributed.md); ranks other than 0 print errors only.
  std::unique_ptr<train::Communicator> comm;
  if (launched_by_mpirun()) comm = train::make_mpi_communicator();
  const int rank = comm ? comm->rank() : 0;
  GlobalOptions g = global;
  if (rank != 0) g.quiet = true;
  // Without --threads, the ranks on a host share its cores (one OpenMP team of cores/ranks each).
  if (comm && g.threads <= 0) g.threads = std::max(1, make_context(g)->cpu.logical_cores / mpi_local_ranks());
  auto ctx = make_context(g);
  train::TrainOptions o;
  std::filesystem::path resume;
  auto given = [&](const char* flag) { return cmd->count(flag) > 0; };
  const LoopArgs& l = a.loop;
  if (!l.resume.empty()) {
    resume = train::latest_checkpoint(l.resume);
    o = train::read_checkpoint_options(resume);
    apply_resume_overrides(l, cmd, o);
    if (given("--attention") || given("--prefix-length")) {
      throw_error("train: --attention and --prefix-length are the run's own (", o.attention, "); a resumed run keeps them");
    }
    if (given("--tokenizer")) {
      throw_error("train: --tokenizer is the run's own (kept in its checkpoints); a resumed run keeps it");
    }
  } else {
    if (l.data.empty()) throw_error("train: --data: none given, expected files or directories");
    if (l.out.empty()) throw_error("train: --out: none given, expected a directory for checkpoints");
    o.config = resolve_model_config(a.config);
    if (a.no_quant) o.config.quant = false;
    if (!a.tokenizer.empty()) {
      // The embedding and head get one row per token of the tokenizer: its size is the model's vocab_size.
      std::filesystem::path tj = a.tokenizer;
      if (std::filesystem::is_directory(tj)) tj /= "tokenizer.json";
      o.tokenizer_json = read_file_bytes(tj.string());
      o.config.vocab_size = parse_tokenizer_json(o.tokenizer_json, "train: --tokenizer '" + tj.string() + "'")->vocab_size();
    }
    if (l.seq > o.config.max_position_embeddings) o.config.max_position_embeddings = l.seq;
    o.config.validate();
    apply_loop_flags(l, o);
    o.attention = a.attention;
    o.prefix_length = a.prefix_length;
    o.schedule.warmup = l.warmup;  // -1: the schedule's own default
    if (!o.config.quant) {  // the FP baseline uses one cosine stage and a lower peak unless told otherwise
      if (!given("--schedule")) o.schedule.kind = "cosine";
      if (!given("--lr")) o.schedule.peak_lr = 6e-4;
    }
  }
  if (a.zero != 0 && a.zero != 1) throw_error("train: --zero: found ", a.zero, ", expected 0 or 1");
  o.comm = comm.get();
  o.zero1 = a.zero == 1;
  o.overwrite = l.overwrite;
  o.on_step = [](const train::StepRecord&) { g_stepping.store(true); };
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::signal(SIGUSR1, on_interrupt);  // mpirun forwards SIGUSR1 to every rank: a clean stop of the whole job
  const auto print = progress_printer(g);
  if (!resume.empty()) print("resuming from " + resume.string());
  train::TrainResult r;
  try {
    r = train::run_training(*ctx, o, resume, &g_stop, print);
  } catch (const std::exception& e) {
    if (!comm || comm->size() == 1) throw;
    // The other ranks wait in a collective: end the whole job rather than leave them hanging.
    std::fprintf(stderr, "error: rank %d of %d: %s\n", rank, comm->size(), e.what());
    std::fflush(stderr);
    comm->abort(1);
    throw;
  }
  std::signal(SIGUSR1, SIG_DFL);
  if (rank != 0) return;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::printf("%s at step %lld: loss (nats) %.4f, val bpb %s, %.0f tokens/s, %lld skipped steps; checkpoints in %s\n",
              r.interrupted ? "interrupted" : "done", static_cast<long long>(r.steps_done), r.last_loss,
              r.last_val_bpb >= 0 ? std::to_string(r.last_val_bpb).c_str() : "-", r.tokens_per_s,
              static_cast<long long>(r.skipped), o.out_dir.c_str());
}

}  // namespace

void add_train_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = app.add_subcommand("train", "Quantization-aware training (BitNet b1.58) on text/code files");
  c->add_option("--size,--config", a->config, "Preset (test, tiny, small, ...) or a config JSON file")->capture_default_str();
  c->add_option("--out", a->loop.out, "Checkpoint directory");
  c->add_option("--resume", a->loop.resume, "Continue the run in this directory (its latest checkpoint) exactly");
  add_loop_flags(c, a->loop,
                 {.ext = "Extensions kept when walking directories (default .py .jsonl .jsonl.zst .txt .md)",
                  .wd = "Weight decay on 2-D tensors (stage 1 for bitnet)",
                  .schedule = "bitnet (two-stage), cosine, wsd, constant",
                  .warmup = "Warmup steps (-1: max(100, 1 %), at most 10 % of steps)",
                  .seed = "Init and data-sampling seed",
                  .recompute = "Gradient checkpointing: keep layer inputs only, recompute in backward"});
  c->add_flag("--no-quant", a->no_quant,
              "Full-precision baseline (quant=false), same code; defaults to --schedule cosine --lr 6e-4 (docs/maths.md)");
  c->add_option("--attention", a->attention, "causal, or prefix_lm: the first --prefix-length positions of every "
                "sequence see each other, the loss counts only what follows")
      ->capture_default_str();
  c->add_option("--prefix-length", a->prefix_length, "The prefix of --attention prefix_lm (1 .. --seq - 1)");
  c->add_option("--tokenizer", a->tokenizer,
                "A tokenizer.json (or a folder with one), e.g. from `tritter train-tokenizer`: the model reads its "
                "tokens (vocab_size becomes its size) and keeps it in every checkpoint and packed file. Default: bytes");
  c->add_option("--zero", a->zero,
                 "Under mpirun: 1 = AdamW moments sharded across the ranks (ZeRO-1), 0 = replicated on every rank")
      ->capture_default_str();
  c->callback([a, c, &global] { run_train(*a, c, global); });
}

}  // namespace tritter::cli
