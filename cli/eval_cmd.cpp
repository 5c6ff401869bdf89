// `tritter eval`: bits per byte and perplexity of a full-precision checkpoint on held-out data (issue 5).
// Byte tokens make bits-per-token = bits-per-byte (each document's <eos> counts as one more symbol).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "commands.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "train/data.h"
#include "train/model.h"
#include "train/trainer.h"

namespace tritter::cli {

namespace {

struct EvalArgs {
  std::string model, split = "all";
  std::vector<std::string> data, ext;
  int64_t batch = 8, seq = 256, windows = 1000000;
  double val_fraction = 0.05;
};

void run_eval(const EvalArgs& a, const GlobalOptions& global) {
  auto ctx = make_context(global);
  std::filesystem::path path = a.model;
  if (std::filesystem::is_directory(path)) path = train::latest_checkpoint(path) / "model.safetensors";
  Checkpoint ck = load_checkpoint(path, &ctx->memory);
  train::DataOptions d;
  d.paths = a.data;
  if (!a.ext.empty()) d.extensions = a.ext;
  if (a.split != "all" && a.split != "val") throw_error("eval: --split: found '", a.split, "', expected all or val");
  d.val_fraction = a.split == "all" ? 1.0 : a.val_fraction;
  const train::TokenData data(d);
  const int64_t T = std::min(a.seq, ck.config.max_position_embeddings);
  train::TrainModel model(ck.config, *ctx);
  std::memcpy(model.params().data(), ck.params.data(), ck.params.bytes());
  model.reserve(a.batch, T, false);
  const int64_t windows = std::min(data.val_windows(T), a.windows);
  if (windows <= 0) throw_error("eval: the data holds fewer than T+1 = ", T + 1, " tokens");
  const double bpb = train::evaluate_bits_per_byte(model, data, a.batch, T, a.windows);
  std::printf("eval %s: %lld windows x %lld tokens of %lld held-out documents (%lld tokens): %.4f bits/byte, "
              "perplexity %.3f\n",
              path.string().c_str(), static_cast<long long>(windows), static_cast<long long>(T),
              static_cast<long long>(data.stats().val_docs), static_cast<long long>(data.stats().val_tokens), bpb,
              std::exp2(bpb));
}

}  // namespace

void add_eval_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* c = app.add_subcommand("eval", "Bits per byte and perplexity of a checkpoint on held-out data");
  c->add_option("--model", a->model, "Checkpoint .safetensors or a training directory (its latest checkpoint)")
      ->required();
  c->add_option("--data", a->data, "Files or directories")->required();
  c->add_option("--ext", a->ext, "Extensions kept when walking directories");
  c->add_option("--split", a->split, "all: every document; val: the training run's held-out split")
      ->capture_default_str();
  c->add_option("--val-fraction", a->val_fraction, "Held-out share used by --split val")->capture_default_str();
  c->add_option("--batch", a->batch, "Windows per forward")->capture_default_str();
  c->add_option("--seq", a->seq, "Tokens per window (stride = seq)")->capture_default_str();
  c->add_option("--windows", a->windows, "At most this many windows");
  c->callback([a, &global] { run_eval(*a, global); });
}

}  // namespace tritter::cli
