// `tritter finetune`: LoRA / QLoRA on a frozen packed ternary base (docs/lora.md).
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "api/model_source.h"
#include "commands.h"
#include "train/dist.h"
#include "loop_flags.h"
#include "core/error.h"
#include "train/lora_finetune.h"

namespace tritter::cli {

namespace {

std::atomic<bool> g_ft_stop{false};
std::atomic<bool> g_ft_stepping{false};  // a step is done: from here a stop writes a checkpoint first
extern "C" void on_ft_interrupt(int sig) {
  if (!g_ft_stepping.load()) {  // reading the base or the data: nothing to save, so stop now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_ft_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

struct FinetuneArgs {
  std::string base, targets = "q_proj,k_proj,v_proj,o_proj", init = "kaiming";
  int64_t rank = 16;
  double alpha = 16, dropout = 0;
  LoopArgs loop = [] {
    LoopArgs l;
    l.steps = 200;
    l.lr = 1e-3;
    l.wd = 0;
    l.schedule = "cosine";
    l.eval_every = 50;
    l.checkpoint_every = 100;
    return l;
  }();
};

void run_finetune_cmd(const FinetuneArgs& a, CLI::App* cmd, const GlobalOptions& global) {
  if (launched_by_mpirun()) {  // N copies of one fine-tuning run would write the same checkpoints
    const auto comm = train::make_mpi_communicator();
    if (comm->size() > 1) {
      throw_error("finetune: found ", comm->size(), " MPI ranks, expected 1: LoRA fine-tuning runs as one process "
                  "(data-parallel training over MPI is `tritter train`)");
    }
  }
  auto ctx = make_context(global);
  train::FinetuneOptions o;
  std::filesystem::path resume;
  const LoopArgs& l = a.loop;
  if (!l.resume.empty()) {
    resume = train::latest_checkpoint(l.resume);
    o = train::read_finetune_options(resume);
    apply_resume_overrides(l, cmd, o.train);
  } else {
    if (a.base.empty()) throw_error("finetune: --base: none given, expected a packed model or checkpoint");
    if (l.data.empty()) throw_error("finetune: --data: none given, expected files or directories");
    if (l.out.empty()) throw_error("finetune: --out: none given, expected a directory for the adapter");
    // Packed file, checkpoint, run directory, HF folder or GGUF file (re-opened by path on --resume). A HF/GGUF
    // base with its own tokenizer trains on that tokenizer's ids (train::finetune_data).
    const ModelSource src = resolve_model_source(a.base);
    if (global.verbose) std::fprintf(stderr, "base: %s\n", src.describe().c_str());
    o.base = src.file.string();
    o.lora.rank = a.rank;
    o.lora.alpha = a.alpha;
    o.lora.dropout = a.dropout;
    o.lora.targets = parse_lora_targets(a.targets);
    o.lora.init = a.init;
    apply_loop_flags(l, o.train);
    o.train.schedule.warmup = l.warmup >= 0 ? l.warmup : l.steps > 1 ? std::max<int64_t>(1, l.steps / 20) : 0;
  }
  o.train.overwrite = l.overwrite;
  o.train.on_step = [](const train::StepRecord&) { g_ft_stepping.store(true); };
  std::signal(SIGINT, on_ft_interrupt);
  std::signal(SIGTERM, on_ft_interrupt);
  const auto print = progress_printer(global);
  if (!resume.empty()) print("resuming from " + resume.string());
  const train::FinetuneResult r = train::run_finetune(*ctx, o, resume, &g_ft_stop, print);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::printf("%s at step %lld: loss (nats) %.4f, val bpb %s (base %s), %.0f tokens/s; adapter in %s\n",
              r.train.interrupted ? "interrupted" : "done", static_cast<long long>(r.train.steps_done),
              r.train.last_loss, r.train.last_val_bpb >= 0 ? std::to_string(r.train.last_val_bpb).c_str() : "-",
              r.base_val_bpb >= 0 ? std::to_string(r.base_val_bpb).c_str() : "-", r.train.tokens_per_s,
              o.train.out_dir.c_str());
}

}  // namespace

void add_finetune_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<FinetuneArgs>();
  CLI::App* c = app.add_subcommand("finetune", "LoRA fine-tuning on a frozen packed ternary base (QLoRA)");
  c->add_option("--base,-m,--model", a->base, "Base model: packed file, full-precision checkpoint (packed in memory), training run directory, Hugging Face folder or GGUF file (its data read with the model's own tokenizer)");
  c->add_option("--out", a->loop.out, "Output directory (adapter in PEFT layout + checkpoints)");
  c->add_option("--resume", a->loop.resume, "Continue the fine-tune in this directory exactly");
  c->add_option("--rank", a->rank, "LoRA rank r")->capture_default_str();
  c->add_option("--alpha", a->alpha, "LoRA alpha (scale alpha/r)")->capture_default_str();
  c->add_option("--dropout", a->dropout, "Dropout on the adapter input")->capture_default_str();
  c->add_option("--targets", a->targets, "Comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; "
                                         "or all, attn")->capture_default_str();
  c->add_option("--init", a->init, "A init: kaiming (U(+-1/sqrt(in)), PEFT) or gaussian (N(0, 1/r))")->capture_default_str();
  add_loop_flags(c, a->loop,
                 {.ext = "Extensions kept when walking directories",
                  .wd = "Weight decay on the adapters",
                  .schedule = "cosine, wsd, constant, bitnet",
                  .warmup = "Warmup steps (-1: 5 % of steps)",
                  .seed = "Adapter init, dropout and data-sampling seed",
                  .recompute = "Gradient checkpointing: keep one layer's activations, re-run each layer's forward in backward"});
  c->callback([a, c, &global] { run_finetune_cmd(*a, c, global); });

}

}  // namespace tritter::cli
