// One way to name a model: a packed file, a full-precision checkpoint or a training run directory (its latest
// checkpoint) resolve to the safetensors file to read and its format. Model::open and the CLI's model-reading
// commands share it, so they accept the same things and name a wrong one the same way. Not in the façade.
#pragma once
#include <filesystem>
#include <string>

namespace tritter {

struct ModelSource {
  std::filesystem::path file;  // the safetensors file to read
  std::string format;          // kPackedFormat ("tritter-packed-v1") or kCheckpointFormat ("tritter-v1")
  std::string run_dir;         // the training run directory it came from, "" for a file
  // Whether prompts start with <bos>: a packed file's add_bos_token (true when absent, as in foreign files); a
  // checkpoint's when it says, else false (Tritter trains documents without <bos>, and packs that as false).
  bool add_bos = false;
  bool packed() const;
  // For -v: "packed file F", "checkpoint F (full precision): packed in memory", "run directory D: latest
  // checkpoint F (full precision): packed in memory".
  std::string describe() const;
};

// Throws Error naming `path` when it is missing, a directory without checkpoints, or a safetensors file of
// another format.
ModelSource resolve_model_source(const std::string& path);

}  // namespace tritter
