#include "api/model_source.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/packed_model.h"
#include "train/trainer.h"

namespace tritter {

namespace fs = std::filesystem;

bool ModelSource::packed() const { return format == kPackedFormat; }

std::string ModelSource::describe() const {
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
    try {
      src.file = train::latest_checkpoint(path) / "model.safetensors";
    } catch (const Error&) {
      throw_error("model '", path, "': a directory without model.safetensors or step-* checkpoints; expected a ",
                  "packed file, a checkpoint or a training run directory");
    }
    src.run_dir = path;
  }
  const SafeTensorsFile f(src.file);
  auto it = f.metadata().find("format");
  src.format = it == f.metadata().end() ? "" : it->second;
  if (src.format != kPackedFormat && src.format != kCheckpointFormat) {
    throw_error("model '", src.file.string(), "': format '", src.format, "', expected '", kPackedFormat,
                "' (tritter pack/export) or '", kCheckpointFormat, "' (a tritter checkpoint)");
  }
  const auto bos = f.metadata().find("add_bos_token");
  src.add_bos = src.packed() ? packed_add_bos(f) : bos != f.metadata().end() && bos->second == "true";
  return src;
}

}  // namespace tritter
