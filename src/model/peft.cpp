// PEFT-layout adapter files (see peft.h).
#include "model/peft.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace tritter {

namespace fs = std::filesystem;
using nlohmann::json;

void save_lora_adapter(const fs::path& dir, const TritterConfig& base_config, const LoraConfig& lora,
                       std::span<const float> params, const std::string& base_model_name) {
  lora.validate();
  const auto table = lora_table(base_config, lora);
  if (static_cast<int64_t>(params.size()) != lora_num_params(table, lora.rank)) {
    throw_error("save adapter: parameters: found ", params.size(), " values, expected ",
                lora_num_params(table, lora.rank));
  }
  fs::create_directories(dir);
  std::vector<SafeTensorOut> out;
  for (const auto& info : lora_tensor_infos(table, lora.rank)) {
    out.push_back({info.name, DType::F32, info.shape, params.data() + info.offset, {}});
  }
  write_safetensors(dir / "adapter_model.safetensors", out,
                    {{"format", "pt"}, {"tritter_base_config", config_to_json(base_config, true).dump()}});
  const json cfg{{"peft_type", "LORA"},
                 {"task_type", "CAUSAL_LM"},
                 {"r", lora.rank},
                 {"lora_alpha", lora.alpha},
                 {"lora_dropout", lora.dropout},
                 {"target_modules", lora.targets},
                 {"base_model_name_or_path", base_model_name},
                 {"bias", "none"},
                 {"fan_in_fan_out", false},
                 {"init_lora_weights", true},
                 {"use_rslora", false},
                 {"use_dora", false},
                 {"inference_mode", true},
                 {"modules_to_save", nullptr},
                 {"layers_to_transform", nullptr},
                 {"revision", nullptr}};
  write_file_atomic(dir / "adapter_config.json", cfg.dump(2) + "\n");
}

namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Copies tensor st (F32, F16 or BF16) into dst as f32.
void read_as_f32(float* dst, const SafeTensor& st, const std::string& file) {
  const int64_t n = st.numel();
  switch (st.dtype) {
    case DType::F32: std::memcpy(dst, st.data, static_cast<size_t>(n) * 4); break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, st.data + 2 * i, 2);
        dst[i] = half_to_float(h);
      }
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, st.data + 2 * i, 2);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(dst + i, &bits, 4);
      }
      break;
    default:
      throw_error("file '", file, "': tensor '", st.name, "': dtype ", dtype_name(st.dtype),
                  ", expected F32, F16 or BF16");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(dst[i])) {
      throw_error("file '", file, "': tensor '", st.name, "': element ", i, " is ", dst[i], ", expected a finite value");
    }
    if (std::fabs(dst[i]) > kLoraMaxAbs) {
      throw_error("file '", file, "': tensor '", st.name, "': element ", i, " is ", dst[i],
                  ", expected a value within +-", kLoraMaxAbs, " (an adapter this large overflows the activations)");
    }
  }
}

LoraConfig parse_adapter_config(const fs::path& path) {
  json j;
  try {
    j = json::parse(read_file_bytes(path));
  } catch (const json::exception& e) {
    throw_error("file '", path.string(), "': not valid JSON: ", json_error_text(e));
  }
  const std::string where = "file '" + path.string() + "'";
  if (!j.is_object()) throw_error(where, ": found ", j.type_name(), ", expected a JSON object");
  if (j.contains("peft_type") && j["peft_type"] != "LORA") {
    throw_error(where, ": peft_type: found ", j["peft_type"].dump(), ", expected \"LORA\"");
  }
  LoraConfig c;
  for (const char* flag : {"use_rslora", "use_dora", "inference_mode", "fan_in_fan_out"}) {
    if (j.contains(flag) && !j[flag].is_boolean() && !j[flag].is_null()) {
      throw_error(where, ": '", flag, "': found ", j[flag].dump(), ", expected true or false");
    }
  }
  if (j.contains("r") && j["r"].is_number_unsigned() && j["r"].get<uint64_t>() > uint64_t{1} << 62) {
    throw_error(where, ": 'r': found ", j["r"].dump(), ", expected an integer rank 1 .. ", kMaxLoraRank);
  }
  if (!j.contains("r") || !j["r"].is_number_integer()) {
    throw_error(where, ": 'r': found ", j.contains("r") ? j["r"].dump() : "nothing", ", expected an integer rank");
  }
  c.rank = j["r"].get<int64_t>();
  if (!j.contains("lora_alpha") || !j["lora_alpha"].is_number()) {
    throw_error(where, ": 'lora_alpha': found ", j.contains("lora_alpha") ? j["lora_alpha"].dump() : "nothing",
                ", expected a number");
  }
  c.alpha = j["lora_alpha"].get<double>();
  if (j.contains("lora_dropout") && j["lora_dropout"].is_number()) c.dropout = j["lora_dropout"].get<double>();
  if (!j.contains("target_modules") || !j["target_modules"].is_array()) {
    throw_error(where, ": 'target_modules': found ", j.contains("target_modules") ? j["target_modules"].dump() : "nothing",
                ", expected a list of module names (q_proj, ..., down_proj)");
  }
  c.targets.clear();
  for (const auto& t : j["target_modules"]) {
    if (!t.is_string() || !proj_from_name(t.get<std::string>())) {
      throw_error(where, ": 'target_modules': found ", t.dump(), ", expected one of ", kProjNameList);
    }
    c.targets.push_back(t.get<std::string>());
  }
  const auto is_true = [&](const char* k) { return j.contains(k) && j[k].is_boolean() && j[k].get<bool>(); };
  if (is_true("use_rslora")) throw_error(where, ": use_rslora: found true, expected false (not supported)");
  if (is_true("use_dora")) throw_error(where, ": use_dora: found true, expected false (not supported)");
  try {
    c.validate();
  } catch (const Error& e) {
    throw_error(where, ": ", e.what());
  }
  return c;
}

}  // namespace

LoraAdapter load_lora_adapter(const fs::path& dir, const TritterConfig& base_config, MemoryAccount* account) {
  const fs::path cfg_path = dir / "adapter_config.json", st_path = dir / "adapter_model.safetensors";
  if (!fs::is_directory(dir)) throw_error("adapter '", dir.string(), "': not a directory");
  if (!fs::exists(cfg_path)) throw_error("adapter '", dir.string(), "': adapter_config.json is missing");
  if (!fs::exists(st_path)) throw_error("adapter '", dir.string(), "': adapter_model.safetensors is missing");
  LoraAdapter a;
  a.config = parse_adapter_config(cfg_path);
  {
    const json j = json::parse(read_file_bytes(cfg_path));
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()) {
      a.base_model_name = j["base_model_name_or_path"].get<std::string>();
    }
  }
  const SafeTensorsFile file(st_path);
  const std::string fname = st_path.string();
  const auto& meta = file.metadata();
  if (auto it = meta.find("tritter_base_config"); it != meta.end()) {
    json recorded;
    try {
      recorded = json::parse(it->second);
    } catch (const json::exception& e) {
      throw_error("file '", fname, "': __metadata__ tritter_base_config: not valid JSON: ", json_error_text(e));
    }
    const json expected = config_to_json(base_config, true);
    if (recorded != expected) {
      throw_error("file '", fname, "': the adapter was trained for another base: its config ", recorded.dump(),
                  ", expected the base's ", expected.dump());
    }
  }
  try {
    a.table = lora_table(base_config, a.config);
  } catch (const Error& e) {
    throw_error("file '", cfg_path.string(), "': ", e.what());
  }
  const auto infos = lora_tensor_infos(a.table, a.config.rank);
  std::set<std::string> expected_names;
  // Every tensor present with its shape (bytes the file holds) before the buffer is sized from the config.
  for (const auto& info : infos) {
    expected_names.insert(info.name);
    const SafeTensor& st = file.get(info.name);
    if (st.shape != info.shape) {
      throw_error("file '", fname, "': tensor '", info.name, "': shape ", shape_str(st.shape), ", expected ",
                  shape_str(info.shape));
    }
  }
  const int64_t n = lora_num_params(a.table, a.config.rank);
  a.params = Buffer(static_cast<size_t>(n) * sizeof(float), MemCategory::Weights, account);
  float* p = a.params.as<float>().data();
  for (const auto& info : infos) read_as_f32(p + info.offset, file.get(info.name), fname);
  for (const auto& st : file.tensors()) {
    if (!expected_names.count(st.name)) {
      throw_error("file '", fname, "': unexpected tensor '", st.name, "' (not a lora_A/lora_B of the targets ",
                  "in adapter_config.json for this base)");
    }
  }
  return a;
}

std::pair<fs::path, float> parse_lora_spec(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size()) {
    const std::string w = spec.substr(colon + 1);
    char* end = nullptr;
    const double v = std::strtod(w.c_str(), &end);
    if (end && *end == '\0' && std::isfinite(v)) {
      if (colon == 0) throw_error("--lora '", spec, "': no directory before the weight");
      return {fs::path(spec.substr(0, colon)), static_cast<float>(v)};
    }
    // "DIR:0.5x": DIR is an adapter and the whole string is not, so the part after ':' was meant as its weight.
    std::error_code ec;
    if (colon > 0 && !fs::exists(spec, ec) && fs::is_directory(spec.substr(0, colon), ec)) {
      throw_error("--lora '", spec, "': weight '", w, "' is not a number; expected DIR or DIR:WEIGHT with a finite ",
                  "number (e.g. ", spec.substr(0, colon), ":0.5)");
    }
  }
  if (spec.empty()) throw_error("--lora: empty adapter directory");
  return {fs::path(spec), 1.0f};
}

}  // namespace tritter
