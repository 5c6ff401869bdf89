// GGUF model files (docs/model-files.md): llama.cpp's "bitnet" architecture (also bitnet.cpp's "bitnet-b1.58"
// and "bitnet-25" names) and Tritter's own "tritter" architecture for configs llama.cpp's graph cannot run.
// Ternary matrices (TQ2_0, TQ1_0) are repacked at load into the kernels' T16 layout; F32/F16/BF16 masters are
// quantized by the absmean rule; embeddings and heads in F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K are converted
// to f32 once. The writer emits TQ2_0 matrices, F32 norms and a Q8_0/F16/F32 embedding, with the byte
// tokenizer as GGUF tokenizer metadata. Non-goals: I2_S (bitnet.cpp's own type; see docs/model-files.md).
#pragma once
#include <filesystem>
#include <string>

#include "core/memory.h"
#include "io/gguf.h"
#include "model/packed_model.h"
#include "text/gguf_vocab.h"

namespace tritter {

// The Tritter config a GGUF file describes (errors name the file and key).
TritterConfig gguf_model_config(const GgufFile& f);
PackedModel load_gguf_model(const GgufFile& f, MemoryAccount* account, bool* add_bos,
                            HeadFormat head = HeadFormat::F32);
// Whether the file's LM head (output.weight, or token_embd.weight when tied) is stored in 8 bits or fewer per
// weight (Q8_0, Q4_0, Q4_K, Q6_K): an int8 head then keeps about what the file has, at a quarter of f32's bytes.
bool gguf_head_is_quantized(const GgufFile& f);

struct GgufWriteOptions {
  GgmlType embed = GgmlType::Q8_0;  // token_embd (also the tied head): Q8_0, F16 or F32
  std::string name = "tritter";     // general.name
  // The tokenizer to carry (e.g. a HF folder's, gguf_vocab_from_tokenizer): null writes Tritter's byte vocabulary.
  const GgufVocab* vocab = nullptr;
  std::string chat_template;        // tokenizer.chat_template when not empty
};
// Writes `w` as GGUF v3. BitNet-compatible configs (model/hf_folder.h bitnet_compatible) with tied embeddings
// get architecture "bitnet", which llama.cpp runs; others "tritter". Every matrix is TQ2_0 with d = β rounded to
// f16 plus an F32 "<name>.scale" tensor such that d · scale = β exactly.
void write_gguf_model(const std::filesystem::path& path, const ModelWeights& w, const GgufWriteOptions& options);

}  // namespace tritter
