// Every model file Tritter runs, behind one call (docs/model-files.md): Tritter's packed file and checkpoints
// (F32, BF16, F16), Hugging Face model folders (model/hf_folder.h) and GGUF files (model/gguf_model.h). Each is
// detected from its bytes, not its name, and becomes the PackedModel the engine runs. Non-goals: tokenizers
// (text/) and training state.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/memory.h"
#include "model/packed_model.h"

namespace tritter {

enum class ModelFileKind { TritterPacked, TritterCheckpoint, HfFolder, Gguf };
const char* model_file_kind_name(ModelFileKind k);  // "tritter-packed", "tritter-checkpoint", "hf-folder", "gguf"

// What `path` is. A directory with config.json is a HF folder, as is a model.safetensors beside a config.json that
// is not a Tritter file. Throws Error naming the path and listing what Tritter reads when it is none of these.
ModelFileKind detect_model_file(const std::filesystem::path& path);

struct LoadedModel {
  PackedModel model;
  ModelFileKind kind = ModelFileKind::TritterPacked;
  bool add_bos = false;            // prompts start with <bos> (the file's tokenizer settings)
  std::filesystem::path folder;    // a HF folder: where tokenizer.json and the configs are; empty otherwise
  double load_seconds = 0.0;       // wall time of the load, repacking included
};

// The entry point of every command: detects the kind and loads it. Errors name the file and field.
LoadedModel load_any_model(const std::filesystem::path& path, MemoryAccount* account);

// How a loader hands one table tensor over. For a BitLinear, `ternary` fills codes (O, I) i8 in {−1, 0, +1} and
// returns β (W = codes · β), or returns nullopt when the file holds full-precision masters: then `values` fills
// them (O·I f32) and they are quantized by the absmean rule exactly as `tritter pack` does. For every other
// tensor `values` fills numel f32.
struct ForeignTensors {
  std::function<std::optional<float>(const TensorInfo& info, int8_t* codes)> ternary;
  std::function<void(const TensorInfo& info, float* out)> values;
};
// Builds the engine's weights (T16 matrices, f32 gains, f32 head) from a loader's tensors, in parallel.
PackedModel build_packed_model(const TritterConfig& config, const ForeignTensors& source, MemoryAccount* account);

// The ternary codes (O, I) of a loaded matrix and its β = 1/σ, chosen so that 1.0f/β gives back σ exactly (the
// writers store β; every loader forms σ = 1.0f/β).
void ternary_matrix_codes(int8_t* codes, const TernaryMatrix& m);
float ternary_matrix_beta(const TernaryMatrix& m);
// The f32 (V, D) head rows of `w` (the embedding when tied; the int8 head dequantized otherwise) into out.
void model_head_values(float* out, const ModelWeights& w);

// Writes `w` as a Tritter packed file (format tritter-packed-v1, f32 head) without requantizing: the codes and
// scales are kept bit for bit. `add_bos` is recorded as the file's add_bos_token.
void write_packed_weights(const std::filesystem::path& path, const ModelWeights& w, bool add_bos);

}  // namespace tritter
