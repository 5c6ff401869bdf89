#include "api/model_source.h"

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/packed_model.h"
#include "train/trainer.h"

namespace tritter {

namespace fs = std::filesystem;

namespace {
bool gguf_magic(const fs::path& p) {
  char head[4] = {};
  std::ifstream in(p, std::ios::binary);
  in.read(head, 4);
  return in.gcount() == 4 && std::memcmp(head, "GGUF", 4) == 0;
}
}  // namespace

bool ModelSource::packed() const { return kind == ModelFileKind::TritterPacked; }
bool ModelSource::foreign() const { return kind == ModelFileKind::HfFolder || kind == ModelFileKind::Gguf; }

std::string ModelSource::describe() const {
  if (kind == ModelFileKind::HfFolder) return "Hugging Face folder " + file.string() + ": converted in memory";
  if (kind == ModelFileKind::Gguf) return "GGUF file " + file.string() + ": converted in memory";
  std::string s = run_dir.empty() ? "" : "run directory " + run_dir + ": latest ";
  if (packed()) return s + "packed file " + file.string();
  return s + "checkpoint " + file.string() + " (full precision): packed in memory";
}

ModelSource resolve_model_source(const std::string& path) {
  ModelSource src;
  src.file = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_error("model '", path, "': no such file or directory");
  if (fs::is_directory(path, ec)) {
    if (fs::exists(fs::path(path) / "config.json", ec)) {
      src.kind = ModelFileKind::HfFolder;
      src.format = model_file_kind_name(src.kind);
      return src;
    }
    try {
      src.file = train::latest_checkpoint(path) / "model.safetensors";
      src.run_dir = path;
    } catch (const Error&) {
      // A model's folder (the shipped model's, a model card beside its file): the file in it.
      if (!fs::is_regular_file(fs::path(path) / "model.safetensors", ec))
        throw_error("model '", path, "': a directory without model.safetensors, step-* checkpoints or config.json; ",
                    "expected a packed file, a checkpoint, a training run directory, a folder holding ",
                    "model.safetensors, a Hugging Face model folder or a GGUF file");
      src.file = fs::path(path) / "model.safetensors";
    }
  }
  require_regular_file(src.file, "model");  // a FIFO would block the magic-number read forever
  if (gguf_magic(src.file)) {
    src.kind = ModelFileKind::Gguf;
    src.format = model_file_kind_name(src.kind);
    return src;
  }
  const SafeTensorsFile f(src.file);
  auto it = f.metadata().find("format");
  src.format = it == f.metadata().end() ? "" : it->second;
  if (src.format != kPackedFormat && src.format != kCheckpointFormat) {
    if (src.run_dir.empty() && fs::exists(src.file.parent_path() / "config.json", ec)) {
      src.kind = ModelFileKind::HfFolder;  // model.safetensors of a HF folder: the folder
      src.file = src.file.parent_path();
      src.format = model_file_kind_name(src.kind);
      return src;
    }
    throw_error("model '", src.file.string(), "': format '", src.format, "', expected '", kPackedFormat,
                "' (tritter pack/export) or '", kCheckpointFormat, "' (a tritter checkpoint), or a Hugging Face ",
                "folder (config.json beside it) or a GGUF file");
  }
  src.kind = src.format == kPackedFormat ? ModelFileKind::TritterPacked : ModelFileKind::TritterCheckpoint;
  src.add_bos = src.packed() ? packed_add_bos(f) : checkpoint_add_bos(f);
  return src;
}

void require_tritter_file(const ModelSource& src, const std::string& command, const std::string& why) {
  if (!src.foreign()) return;
  throw_error(command, ": model '", src.file.string(), "' is a ",
              src.kind == ModelFileKind::HfFolder ? "Hugging Face model folder" : "GGUF file", "; ", why,
              ", expected a Tritter packed file or checkpoint (convert it first: tritter convert ", src.file.string(),
              " OUT.safetensors)");
}

}  // namespace tritter
