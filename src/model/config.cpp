#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"

namespace tritter {

namespace {

using json = nlohmann::json;

struct Preset {
  const char* name;
  TritterConfig config;
};

// The original's architecture (original.md §3.1): head_dim 128, gated MLP (gate/up/down), vocab 65536, 128K
// context, rope θ 500000; plus Tritter's QK-Norm, sub-norms and post-FFN norm. 30B differs: see docs/specs.md.
TritterConfig spec_size(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn) {
  TritterConfig c;
  c.vocab_size = 65536;
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.intermediate_size = ffn;
  c.max_position_embeddings = 131072;
  c.rope_theta = 500000.0;
  c.mlp_act = MlpAct::Relu2Glu;
  return c;
}

TritterConfig small_preset(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn, int64_t ctx) {
  TritterConfig c;
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.intermediate_size = ffn;
  c.max_position_embeddings = ctx;
  return c;
}

// BitNet's own layer (training-spec §2): no QK-Norm, no post-FFN norm, gated squared ReLU, sub-norms.
TritterConfig bitnet_shape(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn,
                           int64_t vocab, bool tied) {
  TritterConfig c = small_preset(hidden, layers, heads, kv_heads, ffn, 4096);
  c.vocab_size = vocab;
  c.rope_theta = 500000.0;
  c.qk_norm = false;
  c.post_norm = PostNorm::None;
  c.mlp_act = MlpAct::Relu2Glu;
  c.tie_word_embeddings = tied;
  return c;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> kPresets = [] {
    std::vector<Preset> p;
    p.push_back({"test", small_preset(64, 2, 4, 2, 256, 512)});        // ~0.12M: unit tests (GQA 2:1)
    p.push_back({"tiny", small_preset(384, 6, 6, 6, 1536, 1024)});     // ~10.8M: the shipped code model
    p.push_back({"small", small_preset(768, 16, 12, 4, 3072, 2048)});  // ~101M: LoRA and training benchmarks
    p.push_back({"700M-shape", bitnet_shape(1536, 24, 16, 16, 4096, 32000, false)});  // bitnet_b1_58-large
    p.push_back({"2B-shape", bitnet_shape(2560, 30, 20, 5, 6912, 128256, true)});     // BitNet b1.58 2B4T
    p.push_back({"1B", spec_size(2048, 16, 16, 16, 5632)});
    p.push_back({"3B", spec_size(2560, 26, 20, 20, 6912)});
    p.push_back({"7B", spec_size(4096, 32, 32, 8, 11008)});
    p.push_back({"10B", spec_size(4096, 40, 32, 8, 14336)});
    p.push_back({"13B", spec_size(5120, 40, 40, 8, 13824)});
    // The original's 52 heads over 8 kv heads is not a whole GQA group. 4 kv heads (13:1) with FFN 18176
    // instead of 17920 keeps the parameter count within 0.4 % of 28.48B (docs/specs.md).
    p.push_back({"30B", spec_size(6656, 60, 52, 4, 18176)});
    p.push_back({"33B", spec_size(6912, 60, 54, 6, 18432)});
    p.push_back({"40B", spec_size(8192, 60, 64, 8, 21760)});
    p.push_back({"65B", spec_size(8192, 80, 64, 8, 22016)});
    p.push_back({"70B", spec_size(8192, 80, 64, 8, 28672)});
    for (auto& preset : p) preset.config.model_size = preset.name;
    return p;
  }();
  return kPresets;
}

std::string joined_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void require_positive(const char* field, int64_t v) {
  if (v <= 0) throw_error("config: ", field, " ", v, " must be positive");
}

// A size from a file or flag, bounded before anything is allocated from it (docs/model-files.md, "Limits").
void require_in_range(const char* field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) throw_error("config: ", field, ": found ", v, ", expected ", lo, " .. ", hi);
}

void require_finite_positive(const char* field, double v) {
  if (!(v > 0) || !std::isfinite(v)) throw_error("config: ", field, ": found ", v, ", expected a finite value > 0");
}

void require_one_of(const char* field, const std::string& v, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += (list.empty() ? "'" : ", '") + std::string(a) + "'";
  }
  throw_error("config: ", field, " '", v, "' is not supported; expected one of ", list);
}

// JSON value → field type, with errors naming the source, the key, what was found and what was expected.
template <typename T>
T field_from_json(const json& v, const std::string& source, const char* key);

[[noreturn]] void bad_type(const std::string& source, const char* key, const json& v, const char* expected) {
  throw_error(source, ": key '", key, "': found ", v.dump(), " (", v.type_name(), "), expected ", expected);
}

template <>
int64_t field_from_json<int64_t>(const json& v, const std::string& source, const char* key) {
  // nlohmann stores integers above INT64_MAX as unsigned: get<int64_t> would wrap them negative.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    bad_type(source, key, v, "an integer below 2^63");
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    // The range first: casting a double outside int64's range (1e308) is undefined behaviour.
    const double d = v.get<double>();
    if (!(d > -9.2e18 && d < 9.2e18)) bad_type(source, key, v, "an integer in -9.2e18 .. 9.2e18");
    if (d == std::trunc(d)) return static_cast<int64_t>(d);
  }
  bad_type(source, key, v, "an integer");
}
template <>
double field_from_json<double>(const json& v, const std::string& source, const char* key) {
  if (v.is_number()) return v.get<double>();
  bad_type(source, key, v, "a number");
}
template <>
bool field_from_json<bool>(const json& v, const std::string& source, const char* key) {
  if (v.is_boolean()) return v.get<bool>();
  bad_type(source, key, v, "true or false");
}
template <>
std::string field_from_json<std::string>(const json& v, const std::string& source, const char* key) {
  if (v.is_string()) return v.get<std::string>();
  bad_type(source, key, v, "a string");
}
template <>
std::optional<int64_t> field_from_json<std::optional<int64_t>>(const json& v, const std::string& source,
                                                               const char* key) {
  if (v.is_null()) return std::nullopt;
  return field_from_json<int64_t>(v, source, key);
}

template <typename T>
json field_to_json(const T& v) {
  return json(v);
}
template <>
json field_to_json<std::optional<int64_t>>(const std::optional<int64_t>& v) {
  return v ? json(*v) : json(nullptr);
}
template <>
json field_to_json<PostNorm>(const PostNorm& v) {
  return post_norm_name(v);
}
template <>
json field_to_json<MlpAct>(const MlpAct& v) {
  return mlp_act_name(v);
}
template <>
json field_to_json<HeadType>(const HeadType& v) {
  return head_type_name(v);
}
template <>
json field_to_json<EmbedPredLoss>(const EmbedPredLoss& v) {
  return embed_pred_loss_name(v);
}
template <>
HeadType field_from_json<HeadType>(const json& v, const std::string& source, const char* key) {
  if (!v.is_string()) bad_type(source, key, v, "a string");
  try {
    return head_type_from_name(v.get<std::string>());
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}
template <>
EmbedPredLoss field_from_json<EmbedPredLoss>(const json& v, const std::string& source, const char* key) {
  if (!v.is_string()) bad_type(source, key, v, "a string");
  try {
    return embed_pred_loss_from_name(v.get<std::string>());
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}
template <>
PostNorm field_from_json<PostNorm>(const json& v, const std::string& source, const char* key) {
  if (!v.is_string()) bad_type(source, key, v, "a string");
  try {
    return post_norm_from_name(v.get<std::string>());
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}
template <>
MlpAct field_from_json<MlpAct>(const json& v, const std::string& source, const char* key) {
  if (!v.is_string()) bad_type(source, key, v, "a string");
  try {
    return mlp_act_from_name(v.get<std::string>());
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}

// rope_scaling: null, or HF's object {"rope_type" (or "type"), "factor", ...}; only the keys of its type.
template <>
RopeScaling field_from_json<RopeScaling>(const json& v, const std::string& source, const char* key) {
  RopeScaling s;
  if (v.is_null()) return s;
  if (!v.is_object()) bad_type(source, key, v, "null or an object with rope_type");
  const json* type = v.contains("rope_type") ? &v["rope_type"] : v.contains("type") ? &v["type"] : nullptr;
  if (!type || !type->is_string()) {
    throw_error(source, ": key 'rope_scaling': found ", v.dump(), ", expected a \"rope_type\" string");
  }
  const std::string name = type->get<std::string>();
  std::vector<std::string> allowed = {"rope_type", "type", "factor"};
  using T = RopeScaling::Type;
  if (name == "default") s.type = T::None;
  else if (name == "linear") s.type = T::Linear;
  else if (name == "dynamic") s.type = T::Dynamic;
  else if (name == "yarn") s.type = T::Yarn;
  else if (name == "llama3") s.type = T::Llama3;
  else {
    throw_error(source, ": key 'rope_scaling': rope_type '", name,
                "' is not supported; expected one of 'default', 'linear', 'dynamic', 'yarn', 'llama3'");
  }
  if (s.type == T::Dynamic || s.type == T::Yarn || s.type == T::Llama3) allowed.push_back("original_max_position_embeddings");
  if (s.type == T::Yarn) {
    for (const char* k : {"beta_fast", "beta_slow", "attention_factor", "mscale", "mscale_all_dim", "truncate"}) {
      allowed.push_back(k);
    }
  }
  if (s.type == T::Llama3) allowed.insert(allowed.end(), {"low_freq_factor", "high_freq_factor"});
  for (const auto& [k, value] : v.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      throw_error(source, ": key 'rope_scaling': '", k, "' is not a key of rope_type '", name, "'; expected ",
                  joined_names(allowed));
    }
  }
  const auto num = [&](const char* k, double& out, bool required) {
    if (v.contains(k) && !v[k].is_null()) out = field_from_json<double>(v[k], source, (std::string("rope_scaling.") + k).c_str());
    else if (required) throw_error(source, ": key 'rope_scaling': rope_type '", name, "' needs '", k, "'");
  };
  num("factor", s.factor, s.type != T::None);
  if (v.contains("original_max_position_embeddings") && !v["original_max_position_embeddings"].is_null()) {
    s.original_max_position_embeddings =
        field_from_json<int64_t>(v["original_max_position_embeddings"], source, "rope_scaling.original_max_position_embeddings");
  } else if (s.type == T::Llama3) {
    throw_error(source, ": key 'rope_scaling': rope_type 'llama3' needs 'original_max_position_embeddings'");
  }
  num("beta_fast", s.beta_fast, false);
  num("beta_slow", s.beta_slow, false);
  num("mscale", s.mscale, false);
  num("mscale_all_dim", s.mscale_all_dim, false);
  if (v.contains("attention_factor") && !v["attention_factor"].is_null()) {
    s.attention_factor = field_from_json<double>(v["attention_factor"], source, "rope_scaling.attention_factor");
  }
  if (v.contains("truncate")) s.truncate = field_from_json<bool>(v["truncate"], source, "rope_scaling.truncate");
  num("low_freq_factor", s.low_freq_factor, s.type == T::Llama3);
  num("high_freq_factor", s.high_freq_factor, s.type == T::Llama3);
  if (s.type == T::None) s = RopeScaling{};
  return s;
}
template <>
json field_to_json<RopeScaling>(const RopeScaling& s) {
  using T = RopeScaling::Type;
  if (s.type == T::None) return nullptr;
  json j{{"rope_type", rope_scaling_name(s.type)}, {"factor", s.factor}};
  if (s.original_max_position_embeddings > 0) j["original_max_position_embeddings"] = s.original_max_position_embeddings;
  if (s.type == T::Yarn) {
    j["beta_fast"] = s.beta_fast;
    j["beta_slow"] = s.beta_slow;
    if (s.attention_factor) j["attention_factor"] = *s.attention_factor;
    if (s.mscale != 0) j["mscale"] = s.mscale;
    if (s.mscale_all_dim != 0) j["mscale_all_dim"] = s.mscale_all_dim;
    j["truncate"] = s.truncate;
  }
  if (s.type == T::Llama3) {
    j["low_freq_factor"] = s.low_freq_factor;
    j["high_freq_factor"] = s.high_freq_factor;
  }
  return j;
}

}  // namespace

PostNorm post_norm_from_name(const std::string& name) {
  if (name == "ffn") return PostNorm::Ffn;
  if (name == "both") return PostNorm::Both;
  if (name == "none") return PostNorm::None;
  require_one_of("post_norm", name, {"ffn", "both", "none"});
  return PostNorm::Ffn;  // not reached
}

MlpAct mlp_act_from_name(const std::string& name) {
  if (name == "relu2") return MlpAct::Relu2;
  if (name == "relu2_glu") return MlpAct::Relu2Glu;
  require_one_of("mlp_act", name, {"relu2", "relu2_glu"});
  return MlpAct::Relu2;  // not reached
}

const char* post_norm_name(PostNorm p) {
  switch (p) {
    case PostNorm::Ffn: return "ffn";
    case PostNorm::Both: return "both";
    case PostNorm::None: return "none";
  }
  return "?";
}

const char* mlp_act_name(MlpAct a) { return a == MlpAct::Relu2Glu ? "relu2_glu" : "relu2"; }

HeadType head_type_from_name(const std::string& name) {
  if (name == "linear") return HeadType::Linear;
  if (name == "cosine_tied") return HeadType::CosineTied;
  require_one_of("head_type", name, {"linear", "cosine_tied"});
  return HeadType::Linear;  // not reached
}

EmbedPredLoss embed_pred_loss_from_name(const std::string& name) {
  if (name == "none") return EmbedPredLoss::None;
  if (name == "cosine") return EmbedPredLoss::Cosine;
  require_one_of("embed_pred_loss", name, {"none", "cosine"});
  return EmbedPredLoss::None;  // not reached
}

const char* head_type_name(HeadType h) { return h == HeadType::CosineTied ? "cosine_tied" : "linear"; }
const char* embed_pred_loss_name(EmbedPredLoss l) { return l == EmbedPredLoss::Cosine ? "cosine" : "none"; }

double embed_pred_beta(const std::string& schedule, double progress) {
  auto bad = [&](const std::string& why) -> double {
    throw_error("config: embed_pred_weight '", schedule, "': ", why,
                "; expected a number >= 0 or points \"beta@progress,...\" with progress increasing in [0, 1]");
  };
  auto number = [&](const std::string& t) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      bad("'" + t + "' is not a number");
    }
    if (used != t.size() || !std::isfinite(v)) bad("'" + t + "' is not a number");
    return v;
  };
  std::vector<std::pair<double, double>> pts;  // (progress, β)
  size_t start = 0;
  while (start <= schedule.size()) {
    const size_t comma = schedule.find(',', start);
    const std::string item = schedule.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t at = item.find('@');
    const double beta = number(item.substr(0, at));
    const double p = at == std::string::npos ? 0.0 : number(item.substr(at + 1));
    if (beta < 0) bad("beta " + item.substr(0, at) + " is negative");
    if (p < 0 || p > 1 || (!pts.empty() && p <= pts.back().first)) bad("progress '" + item + "' out of order");
    if (at == std::string::npos && (comma != std::string::npos || !pts.empty())) bad("a point without '@progress'");
    pts.emplace_back(p, beta);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (pts.size() == 1 || progress <= pts.front().first) return pts.front().second;
  for (size_t i = 1; i < pts.size(); ++i) {
    if (progress <= pts[i].first) {
      const auto [p0, b0] = pts[i - 1];
      const auto [p1, b1] = pts[i];
      return b0 + (b1 - b0) * (progress - p0) / (p1 - p0);
    }
  }
  return pts.back().second;
}

void TritterConfig::validate() const {
  if (vocab_size < 264) {
    throw_error("config: vocab_size ", vocab_size, " < 264: byte-level encoding needs 8 special tokens + 256 bytes");
  }
  require_positive("hidden_size", hidden_size);
  require_positive("intermediate_size", intermediate_size);
  require_positive("num_hidden_layers", num_hidden_layers);
  require_positive("num_attention_heads", num_attention_heads);
  require_positive("num_key_value_heads", num_key_value_heads);
  require_positive("head_dim", head_dim);
  require_positive("max_position_embeddings", max_position_embeddings);
  // Stated maxima: every table, buffer and loop below is sized from these, so a config (a file's metadata, a
  // --config, a flag) can never ask for an unbounded allocation.
  require_in_range("vocab_size", vocab_size, 264, kMaxVocabSize);
  require_in_range("hidden_size", hidden_size, 1, kMaxHiddenSize);
  require_in_range("intermediate_size", intermediate_size, 1, kMaxIntermediateSize);
  require_in_range("num_hidden_layers", num_hidden_layers, 1, kMaxLayers);
  require_in_range("num_attention_heads", num_attention_heads, 1, kMaxHeads);
  require_in_range("head_dim", head_dim, 1, kMaxHeadDim);
  require_in_range("max_position_embeddings", max_position_embeddings, 1, kMaxPositions);
  if (hidden_size % num_attention_heads != 0) {
    throw_error("config: hidden_size ", hidden_size, " is not divisible by num_attention_heads ", num_attention_heads);
  }
  if (num_key_value_heads > num_attention_heads) {
    throw_error("config: num_key_value_heads ", num_key_value_heads, " exceeds num_attention_heads ",
                num_attention_heads, "; expected at most ", num_attention_heads);
  }
  if (num_attention_heads % num_key_value_heads != 0) {
    std::string divisors;
    for (int64_t k = 1; k <= num_attention_heads; ++k) {
      if (num_attention_heads % k == 0) divisors += (divisors.empty() ? "" : ", ") + std::to_string(k);
    }
    throw_error("config: num_attention_heads ", num_attention_heads, " is not divisible by num_key_value_heads ",
                num_key_value_heads, " (grouped-query attention needs whole groups); expected one of ", divisors);
  }
  if (head_dim % 2 != 0) throw_error("config: head_dim ", head_dim, " is odd; RoPE needs an even head_dim");
  require_finite_positive("rope_theta", rope_theta);
  require_finite_positive("rms_norm_eps", rms_norm_eps);
  require_finite_positive("quant_eps", quant_eps);
  if (act_bits != 8) throw_error("config: act_bits ", act_bits, " is not supported; expected 8 (int8 activations)");
  if (sliding_window && *sliding_window <= 0) {
    throw_error("config: sliding_window ", *sliding_window, " must be positive (or null for full causal attention)");
  }
  if (sliding_window) require_in_range("sliding_window", *sliding_window, 1, kMaxPositions);
  if (!(z_loss >= 0) || !std::isfinite(z_loss)) throw_error("config: z_loss: found ", z_loss, ", expected a finite value >= 0");
  require_finite_positive("init_std", init_std);
  if (rope_scaling.type != RopeScaling::Type::None) {
    const RopeScaling& r = rope_scaling;
    if (!(r.factor >= 1.0) || !std::isfinite(r.factor)) {
      throw_error("config: rope_scaling.factor ", r.factor, " must be a finite number >= 1");
    }
    if (r.original_max_position_embeddings < 0) {
      throw_error("config: rope_scaling.original_max_position_embeddings ", r.original_max_position_embeddings,
                  " must be positive");
    }
    if (r.type == RopeScaling::Type::Yarn && !(r.beta_fast > 0 && r.beta_slow > 0)) {
      throw_error("config: rope_scaling.beta_fast ", r.beta_fast, " and beta_slow ", r.beta_slow, " must be positive");
    }
    if (r.type == RopeScaling::Type::Llama3 && !(r.high_freq_factor > r.low_freq_factor && r.low_freq_factor > 0)) {
      throw_error("config: rope_scaling.high_freq_factor ", r.high_freq_factor, " must exceed low_freq_factor ",
                  r.low_freq_factor, " (> 0)");
    }
  }
  if (cosine_head() && !tie_word_embeddings) {
    throw_error("config: head_type 'cosine_tied' needs tie_word_embeddings true (the head is the embedding table), "
                "found false");
  }
  if (!(cos_scale_min > 0) || !(cos_scale_min <= cos_scale_max) || !std::isfinite(cos_scale_max)) {
    throw_error("config: cos_scale_min ", cos_scale_min, ", cos_scale_max ", cos_scale_max,
                ": expected 0 < cos_scale_min <= cos_scale_max (finite)");
  }
  if (!(cos_scale_init >= cos_scale_min && cos_scale_init <= cos_scale_max)) {
    throw_error("config: cos_scale_init ", cos_scale_init, " outside [cos_scale_min, cos_scale_max] = [",
                cos_scale_min, ", ", cos_scale_max, "]");
  }
  if (embed_pred_loss != EmbedPredLoss::None && !cosine_head()) {
    throw_error("config: embed_pred_loss '", embed_pred_loss_name(embed_pred_loss),
                "' needs head_type 'cosine_tied' (its targets are the normalized embedding rows), found 'linear'");
  }
  embed_pred_beta(embed_pred_weight, 0.0);  // throws on a malformed schedule
  // The whole model, in double (no overflow): each field may be within its bound while their product is not.
  const double params = parameter_estimate(*this);
  if (params > static_cast<double>(kMaxParameters)) {
    throw_error("config: the model would have ", params, " parameters (", format_bytes(4.0 * params),
                " in f32), expected at most ", static_cast<double>(kMaxParameters));
  }
}

double parameter_estimate(const TritterConfig& c) {
  const double D = static_cast<double>(c.hidden_size), V = static_cast<double>(c.vocab_size);
  const double Hd = static_cast<double>(c.num_attention_heads) * static_cast<double>(c.head_dim);
  const double Kd = static_cast<double>(c.num_key_value_heads) * static_cast<double>(c.head_dim);
  const double F = static_cast<double>(c.intermediate_size);
  const double layer = 2 * Hd * D + 2 * Kd * D + (c.mlp_act == MlpAct::Relu2Glu ? 3 : 2) * F * D + 4 * D + F + 2 * Hd;
  return static_cast<double>(c.num_hidden_layers) * layer + V * D * (c.tie_word_embeddings ? 1 : 2) + D;
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n;
    for (const auto& p : presets()) n.push_back(p.name);
    return n;
  }();
  return kNames;
}

const std::vector<std::string>& spec_size_names() {
  static const std::vector<std::string> kNames = {"1B", "3B", "7B", "10B", "13B", "30B", "33B", "40B", "65B", "70B"};
  return kNames;
}

TritterConfig preset_config(const std::string& model_size) {
  for (const auto& p : presets()) {
    if (model_size == p.name) return p.config;
  }
  throw_error("model_size '", model_size, "' is unknown; expected one of ", joined_names(preset_names()),
              " (or \"custom\" with hidden_size, num_hidden_layers and num_attention_heads)");
}

TritterConfig resolve_config(const ConfigOverrides& o) {
  const std::string size = o.model_size.value_or("custom");
  TritterConfig c;
  if (size == "custom") {
    const std::pair<const char*, bool> required[] = {{"hidden_size", o.hidden_size.has_value()},
                                                     {"num_hidden_layers", o.num_hidden_layers.has_value()},
                                                     {"num_attention_heads", o.num_attention_heads.has_value()}};
    for (const auto& [field, given] : required) {
      if (!given) throw_error("config: ", field, " is required when no model_size preset is given");
    }
    c.model_size = "custom";
  } else {
    c = preset_config(size);
  }
#define TRITTER_APPLY(type, name, def) \
  if (o.name) c.name = *o.name;
  TRITTER_MODEL_FIELDS(TRITTER_APPLY)
#undef TRITTER_APPLY
  const bool custom = size == "custom";
  // Derived fields follow their base unless given explicitly.
  if (!o.head_dim && (custom || o.hidden_size || o.num_attention_heads) && c.num_attention_heads > 0) {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (!o.num_key_value_heads && (custom || o.num_attention_heads)) {
    const bool preset_kv_fits = !custom && c.num_key_value_heads > 0 &&
                                c.num_attention_heads % c.num_key_value_heads == 0;
    if (!preset_kv_fits) c.num_key_value_heads = c.num_attention_heads;
  }
  if (!o.intermediate_size && custom) c.intermediate_size = 4 * c.hidden_size;
  if (c.cosine_head() && !o.tie_word_embeddings) c.tie_word_embeddings = true;  // the cosine head is tied
  c.validate();
  return c;
}

ConfigOverrides config_overrides_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw_error(source, ": expected a JSON object, found ", j.type_name());
  ConfigOverrides o;
  std::vector<std::string> known = {"model_size"};
#define TRITTER_KNOWN(type, name, def) known.push_back(#name);
  TRITTER_MODEL_FIELDS(TRITTER_KNOWN)
#undef TRITTER_KNOWN
  for (const auto& [key, value] : j.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw_error(source, ": unknown key '", key, "'; known keys are ", joined_names(known));
    }
  }
  if (j.contains("model_size")) o.model_size = field_from_json<std::string>(j["model_size"], source, "model_size");
#define TRITTER_READ(type, name, def) \
  if (j.contains(#name)) o.name = field_from_json<type>(j[#name], source, #name);
  TRITTER_MODEL_FIELDS(TRITTER_READ)
#undef TRITTER_READ
  return o;
}

TritterConfig config_from_json(const json& j, const std::string& source) {
  const ConfigOverrides o = config_overrides_from_json(j, source);
  try {
    return resolve_config(o);
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}

TritterConfig load_config_file(const std::string& path) {
  const std::string text = read_file_bytes(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw_error(path, ": not valid JSON: ", json_error_text(e));
  } catch (const json::exception& e) {  // out_of_range: a number past double's range, e.g. 31e308
    throw_error(path, ": not valid JSON: ", e.what());
  }
  return config_from_json(j, path);
}

std::string json_error_text(const std::exception& e) {
  std::string text = e.what();
  if (text.rfind("[json.exception.", 0) == 0) {
    const size_t close = text.find("] ");
    if (close != std::string::npos) text = text.substr(close + 2);
  }
  return text;
}

int64_t json_to_int(const json& v, const std::string& source, const char* key) {
  return field_from_json<int64_t>(v, source, key);
}

double json_to_number(const json& v, const std::string& source, const char* key) {
  const double d = field_from_json<double>(v, source, key);
  if (!std::isfinite(d)) bad_type(source, key, v, "a finite number");
  return d;
}

json config_to_json(const TritterConfig& c, bool model_only) {
  json j = json::object();
#define TRITTER_WRITE(type, name, def) j[#name] = field_to_json<type>(c.name);
  TRITTER_MODEL_FIELDS(TRITTER_WRITE)
  if (!model_only) j["model_size"] = c.model_size;
#undef TRITTER_WRITE
  if (j["rope_scaling"].is_null()) j.erase("rope_scaling");  // plain RoPE: files stay as they were
  const TritterConfig d;
  if (c.head_type == d.head_type && c.cos_scale_init == d.cos_scale_init && c.cos_scale_min == d.cos_scale_min &&
      c.cos_scale_max == d.cos_scale_max && c.embed_pred_loss == d.embed_pred_loss &&
      c.embed_pred_weight == d.embed_pred_weight && c.embed_pred_stopgrad == d.embed_pred_stopgrad) {
    for (const char* k : {"head_type", "cos_scale_init", "cos_scale_min", "cos_scale_max", "embed_pred_loss",
                          "embed_pred_weight", "embed_pred_stopgrad"}) {
      j.erase(k);
    }
  }
  return j;
}

void save_config_file(const TritterConfig& c, const std::string& path) {
  write_file_atomic(path, config_to_json(c).dump(2) + "\n");
}

}  // namespace tritter
