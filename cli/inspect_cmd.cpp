// `tritter inspect FILE [--json]`: any safetensors file's tensors (name, dtype, shape, bytes) and metadata; for
// tritter checkpoints and packed files also the config, and for packed files the bytes read per decoded token.
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "api/model_source.h"
#include "core/error.h"
#include "core/memory.h"
#include "inference_commands.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/model_files.h"
#include "model/packed_model.h"
#include "text/hf_tokenizer.h"

namespace tritter::cli {

namespace {
struct InspectOptions {
  std::string file;
  bool json = false;
};

bool detect_gguf(const std::string& path) {
  char magic[4] = {};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  const size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::string(magic, 4) == "GGUF";
}

// A GGUF file: metadata (long arrays summarized) and tensor infos.
void inspect_gguf(const InspectOptions& o) {
  const GgufFile f(o.file);
  auto value_text = [](const GgufValue& v) -> nlohmann::json {
    if (v.type == GgufValueType::Array) {
      if (v.array.size() > 8) return std::string("[") + gguf_value_type_name(v.elem) + " × " + std::to_string(v.array.size()) + "]";
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : v.array) a.push_back(e.type == GgufValueType::String ? nlohmann::json(e.s) : nlohmann::json(e.is_number() ? e.as_double() : 0.0));
      return a;
    }
    if (v.type == GgufValueType::String) return v.s.size() > 200 ? v.s.substr(0, 200) + "..." : v.s;
    if (v.type == GgufValueType::Bool) return v.u != 0;
    return v.is_integer() ? nlohmann::json(v.as_int()) : nlohmann::json(v.f);
  };
  nlohmann::ordered_json j;
  j["file"] = o.file;
  j["format"] = "gguf";
  j["version"] = f.version();
  nlohmann::ordered_json meta;
  for (const auto& [k, v] : f.metadata()) meta[k] = value_text(v);
  j["metadata"] = meta;
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    ts.push_back({{"name", t.name}, {"type", ggml_type_info(static_cast<uint32_t>(t.type))->name}, {"ne", t.ne}, {"bytes", t.bytes}});
    total += t.bytes;
  }
  j["tensor_bytes"] = total;
  j["tensors"] = ts;
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: GGUF v%u, %zu tensors, %s of data, alignment %u\n", o.file.c_str(), f.version(), f.tensors().size(),
              format_bytes(static_cast<double>(total)).c_str(), f.alignment());
  for (const auto& [k, v] : meta.items()) std::printf("%s: %s\n", k.c_str(), v.dump().c_str());
  std::printf("%-40s %-6s %-20s %12s\n", "tensor", "type", "ne", "bytes");
  for (const auto& t : f.tensors()) {
    std::printf("%-40s %-6s %-20s %12llu\n", t.name.c_str(), ggml_type_info(static_cast<uint32_t>(t.type))->name,
                shape_str(t.ne).c_str(), static_cast<unsigned long long>(t.bytes));
  }
}

// A Hugging Face folder: load it (validates everything) and print its config and size.
void inspect_hf(const InspectOptions& o) {
  const LoadedModel m = load_any_model(o.file, nullptr);
  const nlohmann::json cfg = config_to_json(m.model.config(), /*model_only=*/true);
  if (o.json) {
    nlohmann::ordered_json j;
    j["file"] = o.file;
    j["format"] = "hf-folder";
    j["config"] = cfg;
    j["bytes_per_token"] = m.model.weights().bytes_per_token;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: Hugging Face model folder (loaded in %.2f s)\nconfig:\n%s\nbytes read per decoded token: %s\n",
              o.file.c_str(), m.load_seconds, cfg.dump(2).c_str(),
              format_bytes(static_cast<double>(m.model.weights().bytes_per_token)).c_str());
}
}  // namespace

void add_inspect_command(CLI::App& app, GlobalOptions&) {
  auto opts = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "List a model file's tensors, dtypes, shapes, bytes and config");
  cmd->add_option("file", opts->file,
                  "A safetensors file, a training run directory (its latest checkpoint), a GGUF file or a Hugging Face "
                  "model folder")->required();
  cmd->add_flag("--json", opts->json, "Machine-readable output");
  cmd->callback([opts] {
    if (std::filesystem::is_directory(opts->file) && std::filesystem::exists(std::filesystem::path(opts->file) / "config.json")) {
      return inspect_hf(*opts);
    }
    if (!std::filesystem::is_directory(opts->file) && detect_gguf(opts->file)) return inspect_gguf(*opts);
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
      if (k == kTokenizerMetadataKey) {  // a whole tokenizer.json: its summary, not its text
        const auto tok = parse_tokenizer_json(v, opts->file + ": __metadata__ tokenizer");
        std::printf("tokenizer: %s, %lld ids (%s of tokenizer.json)\n", tok->kind().c_str(),
                    static_cast<long long>(tok->vocab_size()), format_bytes(static_cast<double>(v.size())).c_str());
        continue;
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
