#include "model/hf_folder.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "kernels/block_quant.h"
#include "model/config.h"
#include "model/model_files.h"
#include "model/tensor_table.h"

namespace tritter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kBitNetArch = "BitNetForCausalLM";
constexpr const char* kTritterArch = "TritterForCausalLM";

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw_error("file '", path.string(), "': cannot be read");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw_error("file '", path.string(), "': not valid JSON: ", e.what());
  }
}

std::string architecture(const json& j) {
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    return j["architectures"][0].get<std::string>();
  }
  if (j.value("model_type", "") == "bitnet") return kBitNetArch;
  if (j.value("model_type", "") == "tritter") return kTritterArch;
  return "";
}

// The HF name of table tensor `info` in a folder of architecture `arch`: BitNet's pre-MLP norm is called
// post_attention_layernorm (mapped here, not renamed on disk); everything else is Tritter's own name.
std::string hf_name(const TensorInfo& info, bool bitnet) {
  if (bitnet && info.kind == "pre_feedforward_layernorm") {
    return "model.layers." + std::to_string(info.layer) + ".post_attention_layernorm.weight";
  }
  return info.name;
}

// The folder's safetensors: one file or the shards of model.safetensors.index.json.
struct Shards {
  std::vector<std::unique_ptr<SafeTensorsFile>> files;
  std::map<std::string, const SafeTensorsFile*> owner;  // tensor name → its file
};

Shards open_shards(const fs::path& dir) {
  Shards s;
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const json j = read_json(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      throw_error("file '", index.string(), "': field 'weight_map' is missing or not an object");
    }
    std::map<std::string, const SafeTensorsFile*> by_file;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw_error("file '", index.string(), "': weight_map['", name, "'] is not a string");
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
        throw_error("file '", index.string(), "': weight_map['", name, "'] = '", f, "' is not a file in the folder");
      }
      if (!by_file.count(f)) {
        s.files.push_back(std::make_unique<SafeTensorsFile>(dir / f));
        by_file[f] = s.files.back().get();
      }
      const SafeTensorsFile* st = by_file[f];
      if (!st->find(name)) throw_error("file '", st->source(), "': tensor '", name, "' is missing (", index.string(), " lists it there)");
      s.owner[name] = st;
    }
    return s;
  }
  const fs::path single = dir / "model.safetensors";
  if (!fs::exists(single)) {
    throw_error("folder '", dir.string(), "': has neither model.safetensors nor model.safetensors.index.json");
  }
  s.files.push_back(std::make_unique<SafeTensorsFile>(single));
  for (const auto& t : s.files.back()->tensors()) s.owner[t.name] = s.files.back().get();
  return s;
}

const SafeTensor& shard_tensor(const Shards& s, const std::string& name, const fs::path& dir) {
  auto it = s.owner.find(name);
  if (it == s.owner.end()) throw_error("folder '", dir.string(), "': tensor '", name, "' is missing");
  return it->second->get(name);
}

void to_f32(float* out, const SafeTensor& t, const std::string& where) {
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::F32: std::memcpy(out, t.data, static_cast<size_t>(n) * 4); return;
    case DType::BF16:
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = static_cast<uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8));
        out[i] = t.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      return;
    default:
      throw_error(where, ": tensor '", t.name, "': dtype ", dtype_name(t.dtype), ", expected F32, BF16 or F16");
  }
}

void expect_shape(const SafeTensor& t, const Shape& shape, const std::string& where) {
  if (t.shape != shape) {
    throw_error(where, ": tensor '", t.name, "': shape ", shape_str(t.shape), ", expected ", shape_str(shape),
                " (from config.json)");
  }
}

int64_t get_int(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_number_integer()) throw_error(where, ": field '", key, "' is missing or not an integer");
  return j[key].get<int64_t>();
}

}  // namespace

bool bitnet_compatible(const TritterConfig& c) {
  return c.quant && !c.qk_norm && c.sub_norm && c.post_norm == PostNorm::None && c.gated_mlp() &&
         c.q_dim() == c.hidden_size && !c.sliding_window;
}

TritterConfig hf_config_to_tritter(const json& j, const std::string& where, bool* multiply) {
  if (!j.is_object()) throw_error(where, ": expected a JSON object");
  const std::string arch = architecture(j);
  if (multiply) *multiply = true;
  if (arch == kTritterArch) {
    json model = j;
    for (const char* k : {"architectures", "model_type", "torch_dtype", "bos_token_id", "eos_token_id",
                          "pad_token_id", "transformers_version", "quantization_config", "tokenizer"}) {
      model.erase(k);
    }
    return config_from_json(model, where);
  }
  if (arch != kBitNetArch) {
    throw_error(where, ": architectures[0] '", arch, "', expected '", kBitNetArch, "' or '", kTritterArch,
                "' (Tritter runs BitNet b1.58 models)");
  }
  const std::string act = j.value("hidden_act", "relu2");
  if (act != "relu2") throw_error(where, ": field 'hidden_act' is '", act, "', expected 'relu2' (Tritter's MLP is relu²)");
  if (j.value("attention_bias", false)) throw_error(where, ": field 'attention_bias' is true, expected false");
  ConfigOverrides o;
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {  // Hugging Face's object, read as Tritter's key
    o.rope_scaling = config_overrides_from_json(json{{"rope_scaling", j["rope_scaling"]}}, where).rope_scaling;
  }
  o.model_size = "custom";
  o.vocab_size = get_int(j, "vocab_size", where);
  o.hidden_size = get_int(j, "hidden_size", where);
  o.intermediate_size = get_int(j, "intermediate_size", where);
  o.num_hidden_layers = get_int(j, "num_hidden_layers", where);
  o.num_attention_heads = get_int(j, "num_attention_heads", where);
  o.num_key_value_heads = j.contains("num_key_value_heads") ? get_int(j, "num_key_value_heads", where) : *o.num_attention_heads;
  if (j.contains("head_dim")) o.head_dim = get_int(j, "head_dim", where);
  else o.head_dim = *o.hidden_size / *o.num_attention_heads;
  o.max_position_embeddings = j.contains("max_position_embeddings") ? get_int(j, "max_position_embeddings", where) : 2048;
  o.rope_theta = j.value("rope_theta", 500000.0);  // transformers' BitNetConfig default
  o.rms_norm_eps = j.value("rms_norm_eps", 1e-5);
  o.tie_word_embeddings = j.value("tie_word_embeddings", false);
  o.qk_norm = false;
  o.sub_norm = true;
  o.post_norm = PostNorm::None;
  o.mlp_act = MlpAct::Relu2Glu;
  o.quant = true;
  if (multiply && j.contains("quantization_config") && j["quantization_config"].is_object()) {
    *multiply = j["quantization_config"].value("linear_class", "autobitlinear") == "autobitlinear";
  }
  try {
    return resolve_config(o);
  } catch (const Error& e) {
    throw_error(where, ": ", e.what());
  }
}

PackedModel load_hf_folder(const fs::path& dir, MemoryAccount* account, bool* add_bos, HeadFormat head) {
  const fs::path cfg_path = dir / "config.json";
  const std::string where = "file '" + cfg_path.string() + "'";
  const json cj = read_json(cfg_path);
  bool multiply = true;
  const TritterConfig c = hf_config_to_tritter(cj, where, &multiply);
  const bool bitnet = architecture(cj) == kBitNetArch;
  const fs::path tok_cfg = dir / "tokenizer_config.json";
  json tj = fs::exists(tok_cfg) ? read_json(tok_cfg) : json::object();
  const bool byte_tokenizer = tj.value("tokenizer_class", "") == "TritterByteTokenizer";
  if (!byte_tokenizer && !fs::exists(dir / "tokenizer.json")) {
    throw_error("folder '", dir.string(), "': tokenizer.json is missing (a Hugging Face model folder carries its ",
                "tokenizer; Tritter's byte tokenizer is named by tokenizer_config.json's tokenizer_class)");
  }
  // Absent add_bos_token: on for a BPE tokenizer.json (Hugging Face's post-processor adds <bos> for BitNet and
  // Llama files), as model_text.cpp decides it, so generate, tokenize -m and serve give one prompt.
  if (add_bos) *add_bos = tj.contains("add_bos_token") && tj["add_bos_token"].is_boolean() ? tj["add_bos_token"].get<bool>() : bitnet || !byte_tokenizer;
  const Shards shards = open_shards(dir);
  const std::string dwhere = "folder '" + dir.string() + "'";
  ForeignTensors src;
  src.values = [&](const TensorInfo& info, float* out) {
    const SafeTensor& t = shard_tensor(shards, hf_name(info, bitnet), dir);
    expect_shape(t, info.shape, dwhere);
    to_f32(out, t, dwhere);
  };
  src.ternary = [&](const TensorInfo& info, int8_t* codes) -> std::optional<float> {
    const std::string name = hf_name(info, bitnet);
    const SafeTensor& t = shard_tensor(shards, name, dir);
    if (t.dtype != DType::U8) return std::nullopt;  // masters: quantized at load
    const int64_t O = info.shape[0], I = info.shape[1];
    if (O % 4 != 0) throw_error(dwhere, ": tensor '", name, "': ", O, " output rows do not pack 4 per byte");
    const int64_t R = O / 4;
    expect_shape(t, {R, I}, dwhere);
    const std::string sname = name.substr(0, name.size() - 7) + ".weight_scale";
    const SafeTensor& st = shard_tensor(shards, sname, dir);
    if (st.numel() != 1) throw_error(dwhere, ": tensor '", sname, "': shape ", shape_str(st.shape), ", expected [1]");
    float s = 0.0f;
    to_f32(&s, st, dwhere);
    if (!std::isfinite(s) || !(s > 0.0f)) throw_error(dwhere, ": tensor '", sname, "': ", s, ", expected a finite value > 0");
    // Bits 2i..2i+1 of packed[r, c] hold row i·(O/4) + r (transformers' pack_weights), as w + 1.
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t col = 0; col < I; ++col) {
        const uint8_t b = t.data[r * I + col];
        for (int i = 0; i < 4; ++i) {
          const int q = (b >> (2 * i)) & 3;
          if (q == 3) throw_error(dwhere, ": tensor '", name, "' byte [", r, ", ", col, "]: 2-bit code 3, expected 0..2");
          codes[(i * R + r) * I + col] = static_cast<int8_t>(q - 1);
        }
      }
    }
    return multiply ? s : 1.0f / s;
  };
  PackedModel m = build_packed_model(c, src, account, head);
  // Nothing the table does not know (a misnamed tensor would otherwise be ignored silently).
  std::set<std::string> known;
  for (const TensorInfo& info : tensor_table(c)) {
    known.insert(hf_name(info, bitnet));
    if (info.role == TensorRole::BitLinear) known.insert(info.name.substr(0, info.name.size() - 7) + ".weight_scale");
  }
  for (const auto& [name, file] : shards.owner) {
    if (!known.count(name)) throw_error("file '", file->source(), "': unexpected tensor '", name, "' (not in the model's tensor table for config.json)");
  }
  return m;
}

void write_hf_folder(const fs::path& dir, const ModelWeights& w, const HfWriteOptions& options) {
  const TritterConfig& c = w.config;
  if (options.dtype != DType::F32 && options.dtype != DType::BF16 && options.dtype != DType::F16) {
    throw_error("write_hf_folder: dtype ", dtype_name(options.dtype), ", expected F32, BF16 or F16");
  }
  const bool bitnet = bitnet_compatible(c);
  fs::create_directories(dir);
  const char* dtype_word = options.dtype == DType::F32 ? "float32" : options.dtype == DType::BF16 ? "bfloat16" : "float16";
  json cfg;
  if (bitnet) {
    cfg = {{"architectures", {kBitNetArch}}, {"model_type", "bitnet"}, {"vocab_size", c.vocab_size},
           {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
           {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
           {"num_key_value_heads", c.num_key_value_heads}, {"head_dim", c.head_dim}, {"hidden_act", "relu2"},
           {"max_position_embeddings", c.max_position_embeddings}, {"rms_norm_eps", c.rms_norm_eps},
           {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tie_word_embeddings}, {"attention_bias", false},
           {"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 0}, {"torch_dtype", dtype_word},
           {"quantization_config", {{"quant_method", "bitnet"}, {"linear_class", "autobitlinear"},
                                    {"quantization_mode", "offline"}}}};
    const json tc = config_to_json(c, /*model_only=*/true);
    if (tc.contains("rope_scaling")) cfg["rope_scaling"] = tc["rope_scaling"];  // Hugging Face's object as is
  } else {
    cfg = config_to_json(c, /*model_only=*/true);
    cfg["architectures"] = {kTritterArch};
    cfg["model_type"] = "tritter";
    cfg["torch_dtype"] = dtype_word;
  }
  write_file_atomic(dir / "config.json", cfg.dump(2) + "\n");
  write_file_atomic(dir / "generation_config.json",
                    json{{"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 0}}.dump(2) + "\n");
  write_file_atomic(dir / "tokenizer_config.json",
                    json{{"tokenizer_class", "TritterByteTokenizer"}, {"add_bos_token", false},
                         {"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"pad_token", "<pad>"},
                         {"unk_token", "<unk>"}, {"model_max_length", c.max_position_embeddings}}.dump(2) + "\n");
  const auto table = tensor_table(c);
  std::vector<SafeTensorOut> out;
  std::vector<float> betas(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const TensorInfo& info = table[i];
    if (info.role == TensorRole::BitLinear) {
      const TernaryMatrix m = *layer_matrix_slot(const_cast<LayerWeights&>(w.layers[info.layer]), info.kind);
      const int64_t O = m.rows, I = m.cols;
      if (O % 4 != 0) throw_error("write_hf_folder: tensor '", info.name, "': ", O, " rows do not pack 4 per byte");
      betas[i] = ternary_matrix_beta(m);
      out.push_back({info.name, DType::U8, {O / 4, I}, nullptr, [m, O, I](const auto& sink) {
        std::vector<int8_t> q(static_cast<size_t>(O * I));
        ternary_matrix_codes(q.data(), m);
        const int64_t R = O / 4;
        std::vector<uint8_t> p(static_cast<size_t>(R * I), 0);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t col = 0; col < I; ++col)
            for (int k = 0; k < 4; ++k) p[r * I + col] |= static_cast<uint8_t>((q[(k * R + r) * I + col] + 1) << (2 * k));
        sink(p.data(), p.size());
      }});
      out.push_back({info.name.substr(0, info.name.size() - 7) + ".weight_scale", DType::F32, {1}, &betas[i], {}});
      continue;
    }
    const std::string name = hf_name(info, bitnet);
    const int64_t n = info.numel();
    auto values = [&w, info](float* dst) {
      if (info.role == TensorRole::Embedding) {
        std::memcpy(dst, w.embed, static_cast<size_t>(info.numel()) * 4);
      } else if (info.role == TensorRole::LmHead) {
        model_head_values(dst, w);
      } else {
        const float* p = info.layer < 0 ? w.final_norm
                                        : *layer_norm_slot(const_cast<LayerWeights&>(w.layers[info.layer]), info.kind);
        std::memcpy(dst, p, static_cast<size_t>(info.numel()) * 4);
      }
    };
    const DType dt = options.dtype;
    out.push_back({name, dt, info.shape, nullptr, [values, n, dt](const auto& sink) {
      std::vector<float> f(static_cast<size_t>(n));
      values(f.data());
      if (dt == DType::F32) {
        sink(f.data(), f.size() * 4);
        return;
      }
      std::vector<uint16_t> h(f.size());
      for (size_t k = 0; k < f.size(); ++k) h[k] = dt == DType::BF16 ? f32_to_bf16(f[k]) : f32_to_f16(f[k]);
      sink(h.data(), h.size() * 2);
    }});
  }
  write_safetensors(dir / "model.safetensors", out, {{"format", "pt"}});
}

}  // namespace tritter
