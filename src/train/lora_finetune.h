// LoRA fine-tuning (issue 6): the trainer's loop (run_train_loop: TokenData, Schedule, AdamW, clipping, validation
// bits-per-byte, checkpoint directory naming and `latest`) around a LoraModel on a frozen packed base.
//
// Data: byte tokens for Tritter's byte vocabulary, the base's own tokenizer for a BPE base (finetune_data); the
// validation figure is bits per byte of text either way (nats over the bytes the targets decode to).
//
// Output directory: OUT/step-00000500/{adapter_config.json, adapter_model.safetensors (PEFT layout, model/peft.h),
// optimizer.safetensors (m.<name>, v.<name> of the adapters), state.json}; OUT/latest names the newest; at the end
// (and on Ctrl-C) OUT/adapter_config.json + OUT/adapter_model.safetensors hold the final adapter, so
// `tritter generate --lora OUT` works. Resume continues exactly (adapters, moments, step, data RNG).
#pragma once
#include <atomic>
#include <filesystem>
#include <functional>
#include <string>

#include "core/context.h"
#include "train/lora.h"
#include "train/trainer.h"

namespace tritter::train {

struct FinetuneOptions {
  std::string base;      // packed model file (tritter pack) or full-precision checkpoint
  LoraConfig lora;
  TrainOptions train;    // data, batch, seq, steps, accum, schedule, adam, clip, seed, eval, checkpoints, logging
  // (train.config is set from the base; train.recompute keeps one layer's activations, LoraModel::reserve)
};

struct FinetuneResult {
  TrainResult train;
  double base_val_bpb = -1;  // validation bits-per-byte of the base (B = 0) before the first step
  int64_t adapter_params = 0;
  int64_t activation_bytes = 0;
};

// Runs (or, with resume_from non-empty, continues) a fine-tune. `stop` polled after every step.
FinetuneResult run_finetune(Context& ctx, const FinetuneOptions& options, const std::filesystem::path& resume_from,
                            const std::atomic<bool>* stop, const std::function<void(const std::string&)>& print);
// The data a fine-tune of `base` trains on, as run_finetune reads it: Tritter's byte tokens for a base with the
// byte vocabulary (every Tritter file), else the base's own tokenizer (a HF folder's tokenizer.json or a GGUF
// file's vocabulary, model/model_text.h) with <bos> as the base adds it. Throws Error naming the id when a token
// is outside vocab_size (a tokenizer larger than the model's embedding; 0: not checked). `tritter eval` reads its
// data the same way.
TokenData finetune_data(const std::string& base, const DataOptions& data, int64_t vocab_size);
// Options stored in a fine-tune checkpoint directory's state.json.
FinetuneOptions read_finetune_options(const std::filesystem::path& ckpt_dir);

}  // namespace tritter::train
