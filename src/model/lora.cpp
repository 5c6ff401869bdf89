// LoRA configuration, adapter table, PEFT names, init and the base model LoRA runs on (see lora.h).
#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model_files.h"

namespace tritter {

namespace fs = std::filesystem;

bool LoraConfig::targets_kind(const std::string& kind) const {
  return std::find(targets.begin(), targets.end(), kind) != targets.end();
}

void LoraConfig::validate() const {
  if (rank < 1 || rank > kMaxLoraRank) throw_error("lora: rank: found ", rank, ", expected 1 .. ", kMaxLoraRank);
  if (!(alpha > 0) || !std::isfinite(alpha)) throw_error("lora: alpha: found ", alpha, ", expected a finite value > 0");
  if (!(dropout >= 0 && dropout < 1)) throw_error("lora: dropout: found ", dropout, ", expected a value in [0, 1)");
  if (targets.empty()) throw_error("lora: target modules: found none, expected at least one of q_proj ... down_proj");
  for (const auto& t : targets) {
    if (!proj_from_name(t)) throw_error("lora: target module '", t, "': not a BitLinear; expected ", kProjNameList);
  }
  if (init != "kaiming" && init != "gaussian") {
    throw_error("lora: init: found '", init, "', expected 'kaiming' or 'gaussian'");
  }
}

std::vector<std::string> parse_lora_targets(const std::string& list) {
  if (list == "all") {
    std::vector<std::string> all;
    for (Proj p : kProjs) all.push_back(proj_name(p));
    return all;
  }
  if (list == "attn") {
    std::vector<std::string> attn;
    for (Proj p : kProjs)
      if (std::string_view(proj_block(p)) == "self_attn") attn.push_back(proj_name(p));
    return attn;
  }
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, comma - start);
    if (!item.empty() && std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

std::vector<LoraTensor> lora_table(const TritterConfig& config, const LoraConfig& lora) {
  std::vector<LoraTensor> out;
  int64_t off = 0;
  for (const auto& t : tensor_table(config)) {
    if (t.role != TensorRole::BitLinear || !lora.targets_kind(t.kind)) continue;
    // A rank above min(O, I) adds parameters and no expressiveness; bounding it bounds the adapter by the base
    // (a 9.6 KB adapter_config.json cannot ask for gigabytes).
    if (lora.rank > std::min(t.shape[0], t.shape[1])) {
      throw_error("lora: rank r: found ", lora.rank, ", expected at most min(out, in) = ",
                  std::min(t.shape[0], t.shape[1]), " of ", t.name, " ", shape_str(t.shape));
    }
    LoraTensor lt{t.name, t.kind, t.layer, t.shape[0], t.shape[1], off, off + lora.rank * t.shape[1],
                  *proj_from_name(t.kind)};
    off += lora.rank * (t.shape[0] + t.shape[1]);
    out.push_back(std::move(lt));
  }
  return out;
}

int64_t lora_num_params(const std::vector<LoraTensor>& table, int64_t rank) {
  int64_t n = 0;
  for (const auto& t : table) n += rank * (t.O + t.I);
  return n;
}

std::string peft_tensor_name(const std::string& base_name, char which) {
  const std::string suffix = ".weight";
  std::string stem = base_name;
  if (stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0) {
    stem.resize(stem.size() - suffix.size());
  }
  return "base_model.model." + stem + ".lora_" + which + ".weight";
}

std::vector<TensorInfo> lora_tensor_infos(const std::vector<LoraTensor>& table, int64_t rank) {
  std::vector<TensorInfo> out;
  for (const auto& t : table) {
    out.push_back({peft_tensor_name(t.base_name, 'A'), {rank, t.I}, TensorRole::BitLinear, t.layer, t.kind, t.a_offset});
    out.push_back({peft_tensor_name(t.base_name, 'B'), {t.O, rank}, TensorRole::BitLinear, t.layer, t.kind, t.b_offset});
  }
  return out;
}

void lora_init(std::span<float> params, const std::vector<LoraTensor>& table, const LoraConfig& cfg, uint64_t seed) {
  cfg.validate();
  TRITTER_CHECK(static_cast<int64_t>(params.size()) == lora_num_params(table, cfg.rank), params.size());
  Rng rng(seed);
  for (const auto& t : table) {
    float* A = params.data() + t.a_offset;
    const int64_t n = cfg.rank * t.I;
    if (cfg.init == "kaiming") {
      const double bound = 1.0 / std::sqrt(static_cast<double>(t.I));  // kaiming_uniform_(a=√5), fan_in = I
      for (int64_t j = 0; j < n; ++j) A[j] = static_cast<float>((2.0 * rng.uniform_double() - 1.0) * bound);
    } else {
      const float sd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg.rank)));
      for (int64_t j = 0; j < n; ++j) A[j] = rng.normal() * sd;
    }
    std::fill_n(params.data() + t.b_offset, t.O * cfg.rank, 0.0f);
  }
}

PackedModel open_lora_base(const fs::path& path, MemoryAccount* account) {
  // A Hugging Face folder or GGUF file: converted in memory by the loader every other command uses.
  if (const ModelFileKind kind = detect_model_file(path); kind == ModelFileKind::HfFolder || kind == ModelFileKind::Gguf) {
    return load_any_model(path, account).model;
  }
  std::string format;
  {
    const SafeTensorsFile f(path);
    auto it = f.metadata().find("format");
    format = it == f.metadata().end() ? "" : it->second;
  }
  if (format == kPackedFormat) return PackedModel::open(path);
  if (format != kCheckpointFormat) {
    throw_error("base model '", path.string(), "': format '", format, "', expected '", kPackedFormat, "' or '",
                kCheckpointFormat, "'");
  }
  const SafeTensorsFile f(path);
  const TritterConfig c = config_from_metadata(f, kCheckpointFormat);
  check_checkpoint_tensors(f, c);
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    checkpoint_tensor_values(f, info, out);  // F32, BF16 or F16, as check_checkpoint_tensors accepted
  }, {}, account);
}

}  // namespace tritter
