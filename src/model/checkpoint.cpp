#include "model/checkpoint.h"

#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/tensor_table.h"

namespace tritter {

namespace {
std::map<std::string, std::string> checkpoint_metadata(const std::filesystem::path& path, const TritterConfig& config,
                                                       const std::map<std::string, std::string>& extra) {
  if (extra.count("format") || extra.count("config")) {
    throw_error("save_checkpoint '", path.string(), "': extra metadata may not set 'format' or 'config'");
  }
  std::map<std::string, std::string> meta = extra;
  meta["format"] = kCheckpointFormat;
  meta["config"] = config_to_json(config, /*model_only=*/true).dump();
  return meta;
}
}  // namespace

void save_checkpoint(const std::filesystem::path& path, const TritterConfig& config, std::span<const float> params,
                     const std::map<std::string, std::string>& extra_metadata) {
  const auto table = tensor_table(config);
  const int64_t total = parameter_count(config);
  if (static_cast<int64_t>(params.size()) != total) {
    throw_error("save_checkpoint '", path.string(), "': found ", params.size(), " parameters, expected ", total);
  }
  const auto meta = checkpoint_metadata(path, config, extra_metadata);
  std::vector<SafeTensorOut> out;
  out.reserve(table.size());
  for (const auto& info : table) out.push_back({info.name, DType::F32, info.shape, params.data() + info.offset, {}});
  write_safetensors(path, out, meta);
}

void save_checkpoint_streaming(const std::filesystem::path& path, const TritterConfig& config,
                               const std::function<void(float*, const TensorInfo&, size_t)>& produce,
                               const std::map<std::string, std::string>& extra_metadata) {
  const auto table = tensor_table(config);
  const auto meta = checkpoint_metadata(path, config, extra_metadata);
  std::vector<SafeTensorOut> out;
  out.reserve(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    out.push_back({table[i].name, DType::F32, table[i].shape, nullptr, [&, i](const auto& sink) {
      std::vector<float> buf(table[i].numel());
      produce(buf.data(), table[i], i);
      sink(buf.data(), buf.size() * sizeof(float));
    }});
  }
  write_safetensors(path, out, meta);
}

TritterConfig config_from_metadata(const SafeTensorsFile& file, const std::string& expected_format) {
  const std::string where = "file '" + file.source() + "'";
  auto it = file.metadata().find("format");
  if (it == file.metadata().end()) {
    throw_error(where, ": __metadata__ has no 'format', expected '", expected_format, "'");
  }
  if (it->second != expected_format) {
    throw_error(where, ": format '", it->second, "', expected '", expected_format, "'");
  }
  const std::string& text = file.metadata_value("config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw_error(where, ": __metadata__ 'config' is not valid JSON: ", e.what());
  }
  return config_from_json(j, where + " config");
}

void check_checkpoint_tensors(const SafeTensorsFile& file, const TritterConfig& config) {
  std::set<std::string> known;
  for (const auto& info : tensor_table(config)) {
    file.expect(info.name, DType::F32, info.shape);
    known.insert(info.name);
  }
  for (const auto& t : file.tensors()) {
    if (!known.count(t.name)) {
      throw_error("file '", file.source(), "': unexpected tensor '", t.name, "' (not in the model's tensor table for ",
                  "this config)");
    }
  }
}

void load_checkpoint_tensors(const SafeTensorsFile& file, const TritterConfig& config, std::span<float> params) {
  const int64_t total = parameter_count(config);
  if (static_cast<int64_t>(params.size()) != total) {
    throw_error("load_checkpoint: buffer has ", params.size(), " floats, expected ", total);
  }
  check_checkpoint_tensors(file, config);
  for (const auto& info : tensor_table(config)) {
    std::memcpy(params.data() + info.offset, file.get(info.name).data, info.numel() * sizeof(float));
  }
}

Checkpoint load_checkpoint(const std::filesystem::path& path, MemoryAccount* account) {
  SafeTensorsFile file(path);
  Checkpoint ck;
  ck.config = config_from_metadata(file, kCheckpointFormat);
  ck.params = Buffer(static_cast<size_t>(parameter_count(ck.config)) * sizeof(float), MemCategory::Weights, account);
  load_checkpoint_tensors(file, ck.config, ck.params.as<float>());
  return ck;
}

}  // namespace tritter
