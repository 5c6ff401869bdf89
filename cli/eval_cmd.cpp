// `tritter eval`: bits per byte and perplexity on held-out data of a full-precision checkpoint, a packed
// model, a HF folder or GGUF file, or any with a LoRA adapter (the fine-tune's effect on other data). Byte tokens
// make bits-per-token = bits-per-byte (each document's <eos> counts as one more symbol); a BPE tokenizer's nats are
// divided by the bytes of text its target tokens decode to (<eos> again one symbol), so the figure stays per byte. A packed model is evaluated with
// the LoRA trainer's forward on the frozen packed base (the same integer forward as QAT's quantized weights).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include <optional>

#include "api/model_source.h"
#include "infer/engine.h"
#include "infer/knn_eval.h"
#include "commands.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model_files.h"
#include "model/model_text.h"
#include "model/packed_model.h"
#include "text/byte_tokenizer.h"
#include "train/data.h"
#include "model/peft.h"
#include "train/lora.h"
#include "train/model.h"
#include "train/lora_finetune.h"
#include "train/trainer.h"

namespace tritter::cli {

namespace {

struct EvalArgs {
  std::string head = "auto";  // --head: the LM head of a converted model
  std::string model, lora, split = "all";
  std::vector<std::string> data, ext;
  int64_t batch = 8, seq = 256, windows = 1000000;
  double val_fraction = 0.05;
  bool exits = false;
};

void run_eval(const EvalArgs& a, const GlobalOptions& global) {
  // Before anything is read: --seq 0 would divide by zero, a huge --batch would size buffers from it.
  if (a.seq < 1 || a.seq > kMaxPositions) throw_error("eval: --seq: found ", a.seq, ", expected 1 .. ", kMaxPositions);
  if (a.batch < 1 || a.batch > 65536) throw_error("eval: --batch: found ", a.batch, ", expected 1 .. 65536");
  if (a.windows < 1) throw_error("eval: --windows: found ", a.windows, ", expected at least 1");
  if (!(a.val_fraction > 0.0 && a.val_fraction <= 1.0)) {
    throw_error("eval: --val-fraction: found ", a.val_fraction, ", expected a share in (0, 1]");
  }
  auto ctx = make_context(global);
  const ModelSource src = resolve_model_source(a.model);  // packed file, checkpoint or run directory
  const std::filesystem::path path = src.file;
  if (global.verbose) std::fprintf(stderr, "model: %s\n", src.describe().c_str());
  train::DataOptions d;
  d.paths = a.data;
  if (!a.ext.empty()) d.extensions = a.ext;
  if (a.split != "all" && a.split != "val") throw_error("eval: --split: found '", a.split, "', expected all or val");
  d.val_fraction = a.split == "all" ? 1.0 : a.val_fraction;
  // The model's own tokenizer reads the text when it has one (a HF/GGUF vocabulary, or `train --tokenizer`'s in a
  // Tritter file); bits per byte count the text each token stands for.
  const train::TokenData data = train::finetune_data(path.string(), d, /*vocab_size=*/0);
  auto check_vocab = [&](int64_t vocab_size) {
    for (const int32_t id : data.val_ids()) {
      if (id >= vocab_size) throw_error("eval: token id ", id, " is outside the model's vocab_size ", vocab_size);
    }
  };
  const std::string format = src.format;
  double bpb = -1;
  int64_t T = 0, windows = 0;
  auto check_windows = [&] {
    windows = std::min(data.val_windows(T), a.windows);
    if (windows <= 0) throw_error("eval: the data holds fewer than T+1 = ", T + 1, " tokens");
  };
  // A cosine head: the KNN exit against the argmax of the logits on the inference engine (the decode path).
  std::optional<KnnEval> knn;
  auto knn_eval = [&](const ModelWeights& w) {
    EngineOptions eo;
    eo.context = T;
    Engine engine(*ctx, w, eo);
    std::vector<int32_t> win(static_cast<size_t>(windows * (T + 1)));
    for (int64_t i = 0; i < windows; ++i) data.val_window(i, T, win.data() + i * (T + 1));
    knn = evaluate_knn_exit(engine, win.data(), windows, T);
  };
  const bool cosine_packed = format == kPackedFormat && a.lora.empty() &&
                             (a.exits || PackedModel::open(path).config().cosine_head());
  if (cosine_packed) {
    const PackedModel m = PackedModel::open(path);
    check_vocab(m.config().vocab_size);
    T = std::min(a.seq, m.config().max_position_embeddings);
    check_windows();
    knn_eval(m.weights());
    bpb = knn->bits_per_token();
  } else if (format == kPackedFormat || !a.lora.empty() || src.foreign()) {
    // Frozen packed base (+ adapter): the LoRA trainer's forward; no adapter = rank-1 adapter with B = 0, exact.
    const PackedModel base = [&] {
      if (!src.foreign()) {
        PackedModel m = open_lora_base(path, &ctx->memory);
        apply_head_choice(m, head_choice_from_name(a.head), path, &ctx->memory);
        return m;
      }
      LoadedModel loaded = load_any_model(path, &ctx->memory, LoadOptions{head_choice_from_name(a.head)});
      return std::move(loaded.model);
    }();
    LoraConfig lc;
    lc.rank = 1;
    Buffer adapter_params;
    if (!a.lora.empty()) {
      LoraAdapter adapter = load_lora_adapter(a.lora, base.config(), &ctx->memory);
      lc = adapter.config;
      adapter_params = std::move(adapter.params);
    }
    train::LoraModel model(base.weights(), lc, *ctx);
    if (a.lora.empty()) {
      model.init_adapters(1);
    } else {
      std::memcpy(model.params().data(), adapter_params.data(), adapter_params.bytes());
    }
    T = std::min(a.seq, base.config().max_position_embeddings);
    model.reserve(a.batch, T);
    auto loss = [&](const int32_t* in, const int32_t* tg) { return model.forward(in, tg, a.batch, T, 1.0f, false); };
    check_vocab(base.config().vocab_size);
    check_windows();
    bpb = train::evaluate_bits_per_byte(loss, data, a.batch, T, a.windows);
  } else {
    Checkpoint ck = load_checkpoint(path, &ctx->memory);
    check_vocab(ck.config.vocab_size);
    T = std::min(a.seq, ck.config.max_position_embeddings);
    check_windows();
    train::TrainModel model(ck.config, *ctx);
    std::memcpy(model.params().data(), ck.params.data(), ck.params.bytes());
    model.reserve(a.batch, T, false);
    bpb = train::evaluate_bits_per_byte(model, data, a.batch, T, a.windows);
    if ((ck.config.cosine_head() || a.exits) && ck.config.quant) {
      const PackedModel m = PackedModel::in_memory(ck.config, [&](float* out, const TensorInfo& info, size_t) {
        std::memcpy(out, ck.params.as<float>().data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
      }, PackOptions{}, &ctx->memory);
      knn_eval(m.weights());
    }
  }
  // --split all reads every document: none of them is "held out" from anything.
  std::printf("eval %s%s%s: %lld windows x %lld tokens of %lld %s (%lld tokens): %.4f bits/byte, "
              "perplexity %.3f\n",
              path.string().c_str(), a.lora.empty() ? "" : " + adapter ", a.lora.c_str(),
              static_cast<long long>(windows), static_cast<long long>(T),
              static_cast<long long>(data.stats().val_docs),
              a.split == "all" ? "documents (--split all: every document)" : "held-out documents (--split val)",
              static_cast<long long>(data.stats().val_tokens), bpb,
              std::exp2(bpb));
  if (knn && !knn->has_knn) {
    std::printf("exits: top-1 (argmax of the logits) %.2f %% over %lld positions, packed bits/byte %.4f\n",
                100.0 * knn->argmax_correct / std::max<double>(1, knn->positions),
                static_cast<long long>(knn->positions), knn->bits_per_token());
  } else if (knn) {
    const KnnEval& k = *knn;
    const double n = static_cast<double>(std::max<int64_t>(k.positions, 1));
    std::printf("knn exit: top-1 %.2f %% (argmax of the logits %.2f %%), agreement %.4f %% over %lld positions "
                "(%lld with a top-2 margin below the tier bound), mean cos(h, E_y) %.4f, packed bits/byte %.4f\n",
                100.0 * k.knn_correct / n, 100.0 * k.argmax_correct / n, 100.0 * k.agreement(),
                static_cast<long long>(k.positions), static_cast<long long>(k.narrow), k.cos_sum / n,
                k.bits_per_token());
  }
}

}  // namespace

void add_eval_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* c = app.add_subcommand("eval", "Bits per byte and perplexity of a model on a data set or its held-out split");
  c->add_option("-m,--model", a->model,
                 "Packed file, checkpoint, training run directory (its latest checkpoint), HF model folder or GGUF file")
      ->required();
  c->add_option("--lora", a->lora, "Apply this LoRA adapter directory (tritter finetune's output) to the model");
  add_head_option(c, &a->head);
  c->add_option("--data", a->data, "Files or directories")->required();
  c->add_option("--ext", a->ext, "Extensions kept when walking directories");
  c->add_option("--split", a->split, "all: every document; val: the training run's held-out split")
      ->capture_default_str();
  c->add_option("--val-fraction", a->val_fraction, "Held-out share used by --split val")->capture_default_str();
  c->add_option("--batch", a->batch, "Windows per forward")->capture_default_str();
  c->add_option("--seq", a->seq, "Tokens per window (stride = seq)")->capture_default_str();
  c->add_option("--windows", a->windows, "At most this many windows");
  c->add_flag("--exits", a->exits, "Also report top-1 accuracy of the exit on the inference engine (always on for "
                                   "a cosine head, with the KNN exit and its agreement with the logits)");
  c->callback([a, &global] { run_eval(*a, global); });
}

}  // namespace tritter::cli
