// One way to name a model: a packed file, a full-precision checkpoint, a training run directory (its latest
// checkpoint), a Hugging Face model folder or a GGUF file (model/model_files.h) resolve to the file to read and
// its kind. Model::open and the CLI's model-reading commands share it, so they accept the same things and name a
// wrong one the same way. Not in the façade.
#pragma once
#include <filesystem>
#include <string>

#include "model/model_files.h"

namespace tritter {

struct ModelSource {
  std::filesystem::path file;  // the safetensors or GGUF file to read; a HF folder's directory
  ModelFileKind kind = ModelFileKind::TritterPacked;
  std::string format;          // kPackedFormat / kCheckpointFormat for Tritter's files, else "hf-folder" / "gguf"
  std::string run_dir;         // the training run directory it came from, "" for a file
  // Whether prompts start with <bos>: a packed file's add_bos_token (true when absent, as in foreign files); a
  // checkpoint's when it says, else false (Tritter trains documents without <bos>, and packs that as false).
  // HF folders and GGUF files: known only once loaded (LoadedModel::add_bos); false here.
  bool add_bos = false;
  bool packed() const;     // a Tritter packed file (mapped, streamable)
  bool foreign() const;    // a HF folder or a GGUF file: converted at load into the engine's layout
  // For -v: "packed file F", "checkpoint F (full precision): packed in memory", "run directory D: latest
  // checkpoint F (full precision): packed in memory", "Hugging Face folder D: converted in memory", "GGUF file F:
  // converted in memory".
  std::string describe() const;
};

// Throws Error naming `path` when it is missing, a directory without checkpoints or config.json, or a file that
// is none of these.
ModelSource resolve_model_source(const std::string& path);

// Throws Error "COMMAND: model 'P' is a Hugging Face folder/GGUF file; COMMAND reads ... (convert it first: tritter
// convert P OUT.safetensors)" when src is foreign: for the commands that need Tritter's own file.
void require_tritter_file(const ModelSource& src, const std::string& command, const std::string& why);

}  // namespace tritter
