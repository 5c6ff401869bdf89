// Hugging Face model folders (docs/model-files.md): config.json, model.safetensors or shards listed by
// model.safetensors.index.json, tokenizer files. Reads BitNetForCausalLM (microsoft/bitnet-b1.58-2B-4T: U8
// weights packed 4 per byte along the output dimension + a weight_scale per matrix; its -bf16 masters, quantized
// at load by the absmean rule) and Tritter's own folders (TritterForCausalLM, F32/BF16/F16), and writes both.
// Non-goals: other architectures (Llama's SiLU MLP is not a BitNet layer), tokenizers (text/).
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"
#include "core/memory.h"
#include "model/packed_model.h"

namespace tritter {

// A BitNetForCausalLM (or Tritter) config.json → the Tritter config. `where` names the file in errors. Sets
// *multiply to whether weight_scale multiplies (quantization_config.linear_class "autobitlinear", the 2B4T
// release) or divides (the older "bitlinear" class); may be null.
TritterConfig hf_config_to_tritter(const nlohmann::json& j, const std::string& where, bool* multiply = nullptr);
// Whether a config can be written as BitNetForCausalLM (no q/k norm, no post norms, sub-norms, gated relu²,
// q_dim = hidden_size); otherwise the folder says TritterForCausalLM.
bool bitnet_compatible(const TritterConfig& c);

// Loads the folder's weights; *add_bos ← tokenizer_config.json's add_bos_token (true when absent for BitNet).
PackedModel load_hf_folder(const std::filesystem::path& dir, MemoryAccount* account, bool* add_bos,
                           HeadFormat head = HeadFormat::F32);

struct HfWriteOptions {
  DType dtype = DType::F32;  // norms, embeddings, head: F32, BF16 or F16 (BF16/F16 round the gains and embeddings)
};
// Writes `w` as a folder: config.json, generation_config.json, tokenizer_config.json, model.safetensors with
// the packed U8 layout and weight_scale (F32, exactly β). Atomic per file; `dir` is created.
void write_hf_folder(const std::filesystem::path& dir, const ModelWeights& w, const HfWriteOptions& options);

}  // namespace tritter
