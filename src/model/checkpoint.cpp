#include "model/checkpoint.h"

#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/memory.h"
#include "kernels/block_quant.h"
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
                     const std::map<std::string, std::string>& extra_metadata, DType dtype) {
  const auto table = tensor_table(config);
  const int64_t total = parameter_count(config);
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16) {
    throw_error("save_checkpoint '", path.string(), "': dtype ", dtype_name(dtype), ", expected F32, BF16 or F16");
  }
  if (static_cast<int64_t>(params.size()) != total) {
    throw_error("save_checkpoint '", path.string(), "': found ", params.size(), " parameters, expected ", total);
  }
  const auto meta = checkpoint_metadata(path, config, extra_metadata);
  std::vector<SafeTensorOut> out;
  out.reserve(table.size());
  for (const auto& info : table) {
    const float* src = params.data() + info.offset;
    if (dtype == DType::F32) {
      out.push_back({info.name, DType::F32, info.shape, src, {}});
      continue;
    }
    out.push_back({info.name, dtype, info.shape, nullptr, [src, n = info.numel(), dtype](const auto& sink) {
      std::vector<uint16_t> h(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) h[i] = dtype == DType::BF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
      sink(h.data(), h.size() * sizeof(uint16_t));
    }});
  }
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
    throw_error(where, ": __metadata__ 'config' is not valid JSON: ", json_error_text(e));
  }
  return config_from_json(j, where + " config");
}

void check_checkpoint_tensors(const SafeTensorsFile& file, const TritterConfig& config) {
  // What the config asks for against what the file can hold, before any table-sized work: a few bytes of
  // metadata must not be able to ask for gigabytes (half precision is the smallest dtype a checkpoint may use).
  const double needed = 2.0 * static_cast<double>(parameter_count(config));
  if (needed > static_cast<double>(file.file_bytes())) {
    throw_error("file '", file.source(), "': its config needs ", parameter_count(config), " parameters (at least ",
                format_bytes(needed), " at 16 bits), expected at most what the file holds: ",
                format_bytes(static_cast<double>(file.file_bytes())));
  }
  std::set<std::string> known;
  for (const auto& info : tensor_table(config)) {
    const SafeTensor& t = file.get(info.name);
    const DType dt = t.dtype == DType::BF16 || t.dtype == DType::F16 ? t.dtype : DType::F32;
    file.expect(info.name, dt, info.shape);
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
  for (const auto& info : tensor_table(config)) checkpoint_tensor_values(file, info, params.data() + info.offset);
}

void checkpoint_tensor_values(const SafeTensorsFile& file, const TensorInfo& info, float* out) {
  const SafeTensor& t = file.get(info.name);
  const int64_t n = info.numel();
  if (t.dtype == DType::F32) {
    std::memcpy(out, t.data, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  TRITTER_CHECK(t.dtype == DType::BF16 || t.dtype == DType::F16, info.name, " has dtype ", dtype_name(t.dtype));
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = static_cast<uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8));
    out[i] = t.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
}

void check_finite_tensors(const std::string& source, const TritterConfig& config, std::span<const float> params) {
  for (const auto& info : tensor_table(config)) {
    const int64_t bad = first_non_finite(params.data() + info.offset, info.numel());
    if (bad >= 0) {
      throw_error("file '", source, "': tensor '", info.name, "' element ", bad, ": found ",
                  params[static_cast<size_t>(info.offset + bad)], ", expected a finite value");
    }
  }
}

Checkpoint load_checkpoint(const std::filesystem::path& path, MemoryAccount* account) {
  SafeTensorsFile file(path);
  Checkpoint ck;
  ck.config = config_from_metadata(file, kCheckpointFormat);
  check_checkpoint_tensors(file, ck.config);  // every tensor present with its shape before the buffer is sized
  ck.params = Buffer(static_cast<size_t>(parameter_count(ck.config)) * sizeof(float), MemCategory::Weights, account);
  load_checkpoint_tensors(file, ck.config, ck.params.as<float>());
  check_finite_tensors(file.source(), ck.config, ck.params.as<float>());
  return ck;
}

}  // namespace tritter
