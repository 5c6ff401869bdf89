// `tritter inspect FILE [--json]`: any safetensors file's tensors (name, dtype, shape, bytes) and metadata; for
// tritter checkpoints and packed files also the config, and for packed files the bytes read per decoded token.
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "api/model_source.h"
#include "core/error.h"
#include "core/memory.h"
#include "inference_commands.h"
#include "io/safetensors.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {
struct InspectOptions {
  std::string file;
  bool json = false;
};
}  // namespace

void add_inspect_command(CLI::App& app, GlobalOptions&) {
  auto opts = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "List a model file's tensors, dtypes, shapes, bytes and config");
  cmd->add_option("file", opts->file, "A safetensors file (or a training run directory: its latest checkpoint)")->required();
  cmd->add_flag("--json", opts->json, "Machine-readable output");
  cmd->callback([opts] {
    // A training run directory means its latest checkpoint, as in every command that reads a model.
    if (std::filesystem::is_directory(opts->file)) opts->file = resolve_model_source(opts->file).file.string();
    SafeTensorsFile f(opts->file);
    size_t total = 0;
    for (const auto& t : f.tensors()) total += t.bytes();
    size_t per_token = 0;
    auto fmt = f.metadata().find("format");
    if (fmt != f.metadata().end() && fmt->second == kPackedFormat) {
      per_token = PackedModel::open(opts->file).weights().bytes_per_token;  // also validates it
    }
    if (opts->json) {
      nlohmann::ordered_json j;
      j["file"] = opts->file;
      j["metadata"] = f.metadata();
      j["tensor_bytes"] = total;
      if (per_token) j["bytes_per_token"] = per_token;
      nlohmann::ordered_json ts = nlohmann::ordered_json::array();
      for (const auto& t : f.tensors()) {
        ts.push_back({{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"bytes", t.bytes()}});
      }
      j["tensors"] = ts;
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%s: %zu tensors, %s of data, header %zu bytes\n", opts->file.c_str(), f.tensors().size(),
                format_bytes(static_cast<double>(total)).c_str(), f.header_bytes());
    for (const auto& [k, v] : f.metadata()) {
      if (k == "config") {
        try {
          std::printf("config:\n%s\n", nlohmann::json::parse(v).dump(2).c_str());
          continue;
        } catch (const nlohmann::json::exception&) {
        }
      }
      std::printf("%s: %s\n", k.c_str(), v.c_str());
    }
    if (per_token) std::printf("bytes read per decoded token: %s\n", format_bytes(static_cast<double>(per_token)).c_str());
    std::printf("%-60s %-5s %-16s %12s\n", "tensor", "dtype", "shape", "bytes");
    for (const auto& t : f.tensors()) {
      std::printf("%-60s %-5s %-16s %12zu\n", t.name.c_str(), std::string(dtype_name(t.dtype)).c_str(),
                  shape_str(t.shape).c_str(), t.bytes());
    }
  });
}

}  // namespace tritter::cli
