// LoRA adapters at inference (see lora_apply.h).
#include "infer/lora_apply.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace tritter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kKindNames[kLoraKinds] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                "down_proj"};
constexpr const char* kKindBlock[kLoraKinds] = {"self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp",
                                                "mlp"};
}  // namespace

const char* lora_kind_name(int kind) { return kKindNames[kind]; }

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
  }
  if (spec.empty()) throw_error("--lora: empty adapter directory");
  return {fs::path(spec), 1.0f};
}

void LoraSet::add(const fs::path& dir, float weight, const TritterConfig& c, MemoryAccount* account) {
  const fs::path cfg_path = dir / "adapter_config.json", st_path = dir / "adapter_model.safetensors";
  if (!fs::is_directory(dir)) throw_error("adapter '", dir.string(), "': not a directory");
  if (!fs::exists(cfg_path)) throw_error("adapter '", dir.string(), "': adapter_config.json is missing");
  if (!fs::exists(st_path)) throw_error("adapter '", dir.string(), "': adapter_model.safetensors is missing");
  if (!std::isfinite(weight)) throw_error("adapter '", dir.string(), "': weight ", weight, ", expected a finite number");

  // adapter_config.json
  const std::string where = "file '" + cfg_path.string() + "'";
  json j;
  try {
    j = json::parse(read_file_bytes(cfg_path));
  } catch (const json::exception& e) {
    throw_error(where, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) throw_error(where, ": found ", j.type_name(), ", expected a JSON object");
  if (j.contains("peft_type") && j["peft_type"] != "LORA") {
    throw_error(where, ": peft_type: found ", j["peft_type"].dump(), ", expected \"LORA\"");
  }
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() < 1) {
    throw_error(where, ": 'r': found ", j.contains("r") ? j["r"].dump() : "nothing", ", expected an integer rank ≥ 1");
  }
  if (!j.contains("lora_alpha") || !j["lora_alpha"].is_number() || !(j["lora_alpha"].get<double>() > 0) ||
      !std::isfinite(j["lora_alpha"].get<double>())) {
    throw_error(where, ": 'lora_alpha': found ", j.contains("lora_alpha") ? j["lora_alpha"].dump() : "nothing",
                ", expected a positive number");
  }
  if (!j.contains("target_modules") || !j["target_modules"].is_array() || j["target_modules"].empty()) {
    throw_error(where, ": 'target_modules': found ", j.contains("target_modules") ? j["target_modules"].dump() : "nothing",
                ", expected a list of module names (q_proj, ..., down_proj)");
  }
  if (j.value("use_rslora", false)) throw_error(where, ": use_rslora: found true, expected false (not supported)");
  if (j.value("use_dora", false)) throw_error(where, ": use_dora: found true, expected false (not supported)");
  Adapter a;
  a.dir = dir;
  a.rank = j["r"].get<int64_t>();
  a.scale = weight * static_cast<float>(j["lora_alpha"].get<double>() / static_cast<double>(a.rank));
  std::array<bool, kLoraKinds> targeted{};
  for (const auto& t : j["target_modules"]) {
    const std::string name = t.is_string() ? t.get<std::string>() : "";
    const auto* it = std::find_if(std::begin(kKindNames), std::end(kKindNames), [&](const char* k) { return name == k; });
    if (it == std::end(kKindNames)) {
      throw_error(where, ": 'target_modules': found ", t.dump(),
                  ", expected one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
    }
    targeted[static_cast<size_t>(it - std::begin(kKindNames))] = true;
  }
  if (!c.gated_mlp()) targeted[kLoraGate] = false;  // no gate_proj in this base (as train/lora.h's lora_table)

  // adapter_model.safetensors
  const SafeTensorsFile file(st_path);
  const std::string fname = st_path.string();
  if (auto it = file.metadata().find("tritter_base_config"); it != file.metadata().end()) {
    json recorded;
    try {
      recorded = json::parse(it->second);
    } catch (const json::exception& e) {
      throw_error("file '", fname, "': __metadata__ tritter_base_config: not valid JSON: ", e.what());
    }
    const json expected = config_to_json(c, true);
    if (recorded != expected) {
      throw_error("file '", fname, "': the adapter was trained for another base: its config ", recorded.dump(),
                  ", expected the base's ", expected.dump());
    }
  }
  const int64_t D = c.hidden_size, F = c.intermediate_size, HD = c.q_dim(), KVD = c.kv_dim(), r = a.rank;
  const std::array<std::pair<int64_t, int64_t>, kLoraKinds> shapes = {
      {{HD, D}, {KVD, D}, {KVD, D}, {D, HD}, {F, D}, {F, D}, {D, F}}};  // (O, I)
  int64_t floats = 0;
  for (int k = 0; k < kLoraKinds; ++k) {
    if (targeted[k]) floats += c.num_hidden_layers * r * (shapes[k].first + shapes[k].second);
  }
  a.params = Buffer(static_cast<size_t>(floats) * sizeof(float), MemCategory::Weights, account);
  float* p = a.params.as<float>().data();
  a.modules.resize(static_cast<size_t>(c.num_hidden_layers));
  std::set<std::string> expected_names;
  auto read = [&](const std::string& name, const Shape& shape) {
    expected_names.insert(name);
    const SafeTensor& st = file.expect(name, DType::F32, shape);
    const int64_t n = st.numel();
    float* dst = p;
    std::memcpy(dst, st.data, static_cast<size_t>(n) * sizeof(float));
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(dst[i])) {
        throw_error("file '", fname, "': tensor '", name, "': element ", i, " is ", dst[i], ", expected a finite value");
      }
    }
    p += n;
    return dst;
  };
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    for (int k = 0; k < kLoraKinds; ++k) {
      if (!targeted[k]) continue;
      const auto [O, I] = shapes[k];
      const std::string base = "base_model.model.model.layers." + std::to_string(l) + "." + kKindBlock[k] + "." +
                               kKindNames[k];
      Module& m = a.modules[static_cast<size_t>(l)][k];
      m.O = O;
      m.I = I;
      m.A = read(base + ".lora_A.weight", {r, I});
      float* B = read(base + ".lora_B.weight", {O, r});  // (O, r) → Bᵀ (r, O) in place
      std::vector<float> tmp(B, B + O * r);
      for (int64_t o = 0; o < O; ++o) {
        for (int64_t j = 0; j < r; ++j) B[j * O + o] = tmp[static_cast<size_t>(o * r + j)];
      }
      m.Bt = B;
    }
  }
  for (const auto& st : file.tensors()) {
    if (!expected_names.count(st.name)) {
      throw_error("file '", fname, "': unexpected tensor '", st.name,
                  "' (not a lora_A/lora_B of the targets in adapter_config.json for this base)");
    }
  }
  adapters_.push_back(std::move(a));
}

bool LoraSet::targets(int layer, int kind) const {
  for (const Adapter& a : adapters_) {
    if (a.modules[static_cast<size_t>(layer)][kind].A) return true;
  }
  return false;
}

void LoraSet::apply(const Context& ctx, int layer, int kind, const float* x, int64_t T, float* y) const {
  for (const Adapter& a : adapters_) {
    const Module& m = a.modules[static_cast<size_t>(layer)][kind];
    if (!m.A) continue;
    const int64_t r = a.rank, I = m.I, O = m.O;
    const float s = a.scale;
#pragma omp parallel for num_threads(std::max(1, ctx.threads)) schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * I;
      float* yt = y + t * O;
      for (int64_t j = 0; j < r; ++j) {
        // h_j = s·(A_j · x_t) with 16 explicit partial sums (a fixed order the compiler may vectorize; no fast-math)
        const float* Aj = m.A + j * I;
        float acc[16] = {};
        int64_t i = 0;
        for (; i + 16 <= I; i += 16) {
          for (int u = 0; u < 16; ++u) acc[u] += Aj[i + u] * xt[i + u];
        }
        float h = 0;
        for (; i < I; ++i) h += Aj[i] * xt[i];
        for (int u = 0; u < 16; ++u) h += acc[u];
        h *= s;
        const float* Bj = m.Bt + j * O;  // y_t += h_j · (Bᵀ)_j
        for (int64_t o = 0; o < O; ++o) yt[o] += h * Bj[o];
      }
    }
  }
}

}  // namespace tritter
