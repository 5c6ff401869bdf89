// LoRA adapter files in Hugging Face PEFT's layout, so users' tools read them: a directory with
//   adapter_config.json        {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r", "lora_alpha", "lora_dropout",
//                               "target_modules", "base_model_name_or_path", "bias": "none", "fan_in_fan_out": false,
//                               "init_lora_weights", "use_rslora": false, "inference_mode": true, ...}
//   adapter_model.safetensors  base_model.model.<base tensor name without .weight>.lora_A.weight  (r, I) F32
//                              base_model.model.<...>.lora_B.weight  (O, r) F32
// The safetensors __metadata__ holds {"format": "pt"} (what PEFT writes) and "tritter_base_config" (the base's
// model config as JSON), which the loader compares with the base it is applied to. Reading accepts F32, F16 and
// BF16 tensors (PEFT saves in the training dtype). The one reader and writer of adapter files: fine-tuning, eval,
// generate (infer/lora_apply.h) and merge-lora use it. Non-goals: rsLoRA, DoRA, modules_to_save, per-layer ranks.
#pragma once
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "model/config.h"
#include "model/lora.h"

namespace tritter {

// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (each atomically; DIR is created).
void save_lora_adapter(const std::filesystem::path& dir, const TritterConfig& base_config, const LoraConfig& lora,
                       std::span<const float> params, const std::string& base_model_name);

struct LoraAdapter {
  LoraConfig config;
  std::string base_model_name;
  std::vector<LoraTensor> table;  // lora_table(base_config, config)
  Buffer params;                  // lora_num_params floats, the table's offsets
};
// Reads an adapter directory for a base with `base_config`. Errors (Error, naming the file and tensor): missing
// directory or files, bad JSON, peft_type other than LORA, r/lora_alpha/lora_dropout/target_modules missing or of a
// bad value (an unknown target module), use_rslora/use_dora true, a recorded base config ("tritter_base_config")
// that differs, a tensor missing, of another dtype or shape, an unexpected tensor, a non-finite value.
LoraAdapter load_lora_adapter(const std::filesystem::path& dir, const TritterConfig& base_config,
                              MemoryAccount* account);

// "DIR" → (DIR, 1); "DIR:0.5" → (DIR, 0.5): the --lora argument of generate, eval and merge-lora. The part after
// the last ':' is a weight only if it parses as a finite number; otherwise the whole string is the directory.
std::pair<std::filesystem::path, float> parse_lora_spec(const std::string& spec);

}  // namespace tritter
