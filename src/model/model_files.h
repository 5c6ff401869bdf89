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

#include "core/cpu.h"
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

// The LM head the engine runs for a model that is converted at load (HF folder, GGUF, checkpoint). Auto: int8
// when the file already stores its head in 8 bits or fewer (a GGUF's Q8_0, Q4_*, Q6_K: per-row int8 keeps about
// that precision and reads a quarter of f32's bytes per token), f32 otherwise, so a full-precision head's logits
// stay those of the file. I8 forces the int8 head (what `tritter pack --head i8` writes), F32 the f32 one.
// A packed file runs the head it was packed with under auto; a narrower stored head cannot be widened (f32 on an
// int8 or 4-bit file, i8 on a 4-bit one: an Error naming the file).
// I4 runs the 4-bit head of kernels/head.h (groups of 32, about 4.3 bits per weight), quantized at load from the
// head the file holds, for any file (a packed file may also store it: `tritter pack --head i4`).
enum class HeadChoice { Auto, F32, I8, I4 };
HeadChoice head_choice_from_name(const std::string& name);  // "auto" | "f32" | "i8" | "i4"; throws Error

// The kernel layout a resident model's ternary matrices run in (kernels/ternary_matmul.h); a file stores one of
// the two (qweight_layout) and the other is built at load. T16: 2 bits per weight. T20 (1.6 bits) reads 20 % fewer
// bytes per token: on AVX-512 VNNI its one-stream decode ran up to 1.3x T16's (2 threads; about even on one),
// but batches of 2 to 64 tokens run 0.4-0.97x (the bytes need twice the multiply-adds, or a decode to T16), and
// without vpdpbusd it is slower at every size. Auto: T20 on a CPU with AVX-512 VNNI, T16 elsewhere — for commands
// that decode one stream (generate, the Python API); batching commands (serve, eval, bench batch) run T16.
enum class LayoutChoice { Auto, T16, T20 };
LayoutChoice layout_choice_from_name(const std::string& name);  // "auto" | "t16" | "t20"; throws Error
TernaryLayout resolve_ternary_layout(LayoutChoice choice, const CpuFeatures& cpu);

struct LoadOptions {
  HeadChoice head = HeadChoice::Auto;
  LayoutChoice layout = LayoutChoice::T16;
};

// The choice for a model already loaded from a Tritter file (packed, or a checkpoint packed in memory): I8
// quantizes an f32 head; F32 on an int8 head is an Error naming `path` (the f32 rows are gone).
void apply_head_choice(PackedModel& model, HeadChoice choice, const std::filesystem::path& path,
                       MemoryAccount* account);

// The entry point of every command: detects the kind and loads it. Errors name the file and field.
LoadedModel load_any_model(const std::filesystem::path& path, MemoryAccount* account, const LoadOptions& options = {});

// How a loader hands one table tensor over. For a BitLinear, `ternary` fills codes (O, I) i8 in {−1, 0, +1} and
// returns β (W = codes · β), or returns nullopt when the file holds full-precision masters: then `values` fills
// them (O·I f32) and they are quantized by the absmean rule exactly as `tritter pack` does. For every other
// tensor `values` fills numel f32.
struct ForeignTensors {
  std::function<std::optional<float>(const TensorInfo& info, int8_t* codes)> ternary;
  std::function<void(const TensorInfo& info, float* out)> values;
};
// Builds the engine's weights (T16 matrices, f32 gains, the head in `head` format) from a loader's tensors, in
// parallel. An int8 head is quantized per row from the f32 values (quantize_head_rows), a 4-bit one by
// head_i4_quantize_rows (kernels/head.h).
PackedModel build_packed_model(const TritterConfig& config, const ForeignTensors& source, MemoryAccount* account,
                               HeadFormat head = HeadFormat::F32);

// The ternary codes (O, I) of a loaded matrix and its β = 1/σ, chosen so that 1.0f/β gives back σ exactly (the
// writers store β; every loader forms σ = 1.0f/β).
void ternary_matrix_codes(int8_t* codes, const TernaryMatrix& m);
float ternary_matrix_beta(const TernaryMatrix& m);
// The f32 (V, D) head rows of `w` (the embedding when tied; the int8 head dequantized otherwise) into out.
void model_head_values(float* out, const ModelWeights& w);

// Writes `w` as a Tritter packed file (format tritter-packed-v1) without requantizing: the codes, scales and the
// head (f32, or int8 levels and row scales) are kept bit for bit. `add_bos` is recorded as the file's add_bos_token,
// `tokenizer_json` (a tokenizer.json text; "" for the byte tokenizer) as its own tokenizer, with its chat template.
// The qweights are stored in `layout` whatever layout `w` runs in.
void write_packed_weights(const std::filesystem::path& path, const ModelWeights& w, bool add_bos,
                          const std::string& tokenizer_json = "", const std::string& chat_template = "",
                          TernaryLayout layout = TernaryLayout::T16);

}  // namespace tritter
