// `tritter grads`: one forward and backward of a checkpoint on a fixed batch, written as safetensors — the
// contract another implementation is checked against (docs/training.md, "Checking Tritter against another
// implementation").
// Output (all F32): logits [B,T,V], loss [], grad.<name> for every parameter (the raw gradient of the mean loss,
// before clipping), and with --steps K: losses [K], the loss before each of K AdamW updates on the same batch
// (clip, then AdamW with constant lr and wd; β = (0.9, 0.95), ε = 1e-8).
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "train/model.h"
#include "train/optim.h"

namespace tritter::cli {

namespace {

struct GradsArgs {
  std::string model, batch, out;
  int64_t steps = 0;
  double lr = 1e-3, wd = 0.1, clip = 1.0;
};

// inputs, targets (B, T) from a batch file (its layout: docs/training.md).
void read_batch(const std::string& path, std::vector<int32_t>& in, std::vector<int32_t>& tg, int64_t& B, int64_t& T) {
  const SafeTensorsFile f(path);
  auto check = [&](const SafeTensor& t, const char* name) {
    if (t.dtype != DType::I32 || t.shape.size() != 2) {
      throw_error("batch '", path, "': tensor '", name, "': found ", dtype_name(t.dtype), " ", shape_str(t.shape),
                  ", expected I32 with 2 dims");
    }
  };
  if (const SafeTensor* tok = f.find("tokens")) {
    check(*tok, "tokens");
    B = tok->shape[0];
    T = tok->shape[1] - 1;
    if (T < 1) {
      throw_error("batch '", path, "': tokens: found ", shape_str(tok->shape), ", expected [B, T+1] with T >= 1");
    }
    std::vector<int32_t> all(static_cast<size_t>(B * (T + 1)));
    std::memcpy(all.data(), tok->data, all.size() * sizeof(int32_t));
    in.resize(static_cast<size_t>(B * T));
    tg.resize(in.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        in[b * T + t] = all[b * (T + 1) + t];
        tg[b * T + t] = all[b * (T + 1) + t + 1];
      }
    return;
  }
  const SafeTensor* ids = f.find("input_ids");
  const SafeTensor* tgt = f.find("targets");
  if (!ids || !tgt) throw_error("batch '", path, "': found neither 'tokens' nor 'input_ids' + 'targets'");
  check(*ids, "input_ids");
  check(*tgt, "targets");
  if (ids->shape != tgt->shape) {
    throw_error("batch '", path, "': targets: found ", shape_str(tgt->shape), ", expected ", shape_str(ids->shape));
  }
  B = ids->shape[0];
  T = ids->shape[1];
  in.resize(static_cast<size_t>(B * T));
  tg.resize(in.size());
  std::memcpy(in.data(), ids->data, in.size() * sizeof(int32_t));
  std::memcpy(tg.data(), tgt->data, tg.size() * sizeof(int32_t));
}

void run_grads(const GradsArgs& a, const GlobalOptions& global) {
  auto ctx = make_context(global);
  std::filesystem::path model_path = a.model;
  if (std::filesystem::is_directory(model_path)) model_path /= "model.safetensors";
  Checkpoint ck = load_checkpoint(model_path, &ctx->memory);
  std::vector<int32_t> in, tg;
  int64_t B = 0, T = 0;
  read_batch(a.batch, in, tg, B, T);

  train::TrainModel model(ck.config, *ctx);
  std::memcpy(model.params().data(), ck.params.data(), ck.params.bytes());
  model.reserve(B, T, false);
  model.zero_grad();
  const float loss = static_cast<float>(model.forward(in.data(), tg.data(), B, T));
  model.backward();
  const int64_t V = ck.config.vocab_size;
  std::vector<float> logits(model.logits(), model.logits() + B * T * V);
  std::vector<float> grads(model.grads().begin(), model.grads().end());

  std::vector<float> losses;
  if (a.steps > 0) {
    train::AdamW adam(model.num_params(), *ctx);
    for (int64_t k = 0; k < a.steps; ++k) {
      double l = loss;
      if (k > 0) {
        model.zero_grad();
        l = model.forward(in.data(), tg.data(), B, T);
        model.backward();
      }
      losses.push_back(static_cast<float>(l));
      train::clip_grad_norm(model.grads(), a.clip);
      adam.step(model.params(), model.grads(), model.table(), a.lr, a.wd);
    }
  }

  std::vector<SafeTensorOut> out;
  out.push_back({"logits", DType::F32, {B, T, V}, logits.data(), {}});
  out.push_back({"loss", DType::F32, {}, &loss, {}});
  if (a.steps > 0) out.push_back({"losses", DType::F32, {a.steps}, losses.data(), {}});
  for (const auto& t : model.table()) {
    out.push_back({"grad." + t.name, DType::F32, t.shape, grads.data() + t.offset, {}});
  }
  write_safetensors(a.out, out,
                    {{"format", "tritter-grads-v1"},
                     {"config", config_to_json(ck.config, true).dump()},
                     {"steps", std::to_string(a.steps)},
                     {"lr", std::to_string(a.lr)},
                     {"wd", std::to_string(a.wd)},
                     {"clip", std::to_string(a.clip)}});
  if (!global.quiet) {
    std::printf("loss %.6f (B=%lld T=%lld)%s -> %s\n", loss, static_cast<long long>(B), static_cast<long long>(T),
                a.steps > 0 ? detail::concat(", after ", a.steps, " AdamW steps ", losses.back()).c_str() : "",
                a.out.c_str());
  }
}

}  // namespace

void add_grads_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<GradsArgs>();
  CLI::App* c = app.add_subcommand("grads", "One forward+backward of a checkpoint on a fixed batch, written as "
                                            "safetensors (logits, loss, grad.<name>; --steps K adds losses)");
  c->add_option("--model", args->model, "Checkpoint (.safetensors, or a training checkpoint directory)")->required();
  c->add_option("--batch", args->batch, "Batch file: tokens I32 [B,T+1], or input_ids + targets I32 [B,T]")->required();
  c->add_option("-o,--out", args->out, "Output safetensors")->required();
  c->add_option("--steps", args->steps, "Also run K AdamW steps on the batch and write `losses` [K]")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--lr", args->lr, "AdamW learning rate for --steps")->capture_default_str();
  c->add_option("--wd", args->wd, "AdamW weight decay (2-D tensors) for --steps")->capture_default_str();
  c->add_option("--clip", args->clip, "Global-norm clip for --steps (0 = off)")->capture_default_str();
  c->callback([args, &global] { run_grads(*args, global); });
}

}  // namespace tritter::cli
