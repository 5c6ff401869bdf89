#include "model/gguf_model.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/block_quant.h"
#include "model/config.h"
#include "model/hf_folder.h"
#include "model/model_files.h"
#include "model/tensor_table.h"
#include "text/byte_tokenizer.h"

namespace tritter {

namespace fs = std::filesystem;

namespace {

// Tritter table kind → llama.cpp tensor name (src/llama-arch.cpp); Tritter-only kinds take llama.cpp's names for
// the same roles in other architectures (q/k norms, Gemma's post norms).
const std::map<std::string, std::string>& gguf_kinds() {
  static const std::map<std::string, std::string> k = {
      {"input_layernorm", "attn_norm"},      {"q_proj", "attn_q"},
      {"k_proj", "attn_k"},                  {"v_proj", "attn_v"},
      {"q_norm", "attn_q_norm"},             {"k_norm", "attn_k_norm"},
      {"attn_sub_norm", "attn_sub_norm"},    {"o_proj", "attn_output"},
      {"post_attention_layernorm", "post_attention_norm"},
      {"pre_feedforward_layernorm", "ffn_norm"},
      {"gate_proj", "ffn_gate"},             {"up_proj", "ffn_up"},
      {"ffn_sub_norm", "ffn_sub_norm"},      {"down_proj", "ffn_down"},
      {"post_feedforward_layernorm", "post_ffw_norm"}};
  return k;
}

std::string gguf_base(const TensorInfo& info) {
  if (info.role == TensorRole::Embedding) return "token_embd";
  if (info.role == TensorRole::LmHead) return "output";
  if (info.layer < 0) return "output_norm";
  return "blk." + std::to_string(info.layer) + "." + gguf_kinds().at(info.kind);
}

std::vector<int64_t> gguf_ne(const Shape& s) { return std::vector<int64_t>(s.rbegin(), s.rend()); }

bool is_bitnet_arch(const std::string& a) { return a == "bitnet" || a == "bitnet-b1.58" || a == "bitnet-25"; }

// f32 values of any non-ternary tensor type Tritter reads.
void gguf_values(float* out, const GgufTensor& t, const std::string& where) {
  const int64_t n = t.numel();
  switch (t.type) {
    case GgmlType::F32: std::memcpy(out, t.data, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = static_cast<uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8));
        out[i] = t.type == GgmlType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      return;
    case GgmlType::Q8_0: dequantize_q8_0(out, t.data, n); return;
    case GgmlType::Q4_0: dequantize_q4_0(out, t.data, n); return;
    case GgmlType::Q4_K: dequantize_q4_k(out, t.data, n); return;
    case GgmlType::Q6_K: dequantize_q6_k(out, t.data, n); return;
    case GgmlType::TQ2_0: dequantize_tq2_0(out, t.data, n); return;
    case GgmlType::TQ1_0: dequantize_tq1_0(out, t.data, n); return;
    default:
      throw_error(where, ": tensor '", t.name, "': type ", ggml_type_info(static_cast<uint32_t>(t.type))->name,
                  " is not read by Tritter (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, TQ1_0, TQ2_0)");
  }
}

// GGUF stores ε and θ as F32: the shortest decimal that gives back the same float (1e-05, not 9.99999974e-06),
// so a config read from GGUF equals the one it was written from.
double f32_decimal(double v) {
  const float f = static_cast<float>(v);
  for (int digits = 6; digits <= 9; ++digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == f) return d;
  }
  return v;
}

// llama.cpp's {arch}.rope.scaling.* keys (type none/linear/yarn, factor, original_context_length, attn_factor,
// yarn_beta_fast/slow). A file Tritter wrote also carries its config in 'tritter.config', which holds every
// rope_scaling field exactly (yarn's mscale and truncate have no llama.cpp keys), so that wins.
RopeScaling gguf_rope_scaling(const GgufFile& f, const std::string& p, const std::string& where) {
  if (const GgufValue* tc = f.find_value("tritter.config"); tc && tc->type == GgufValueType::String) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(tc->s);
    } catch (const nlohmann::json::exception& e) {
      throw_error(where, ": key 'tritter.config' is not valid JSON: ", e.what());
    }
    if (!j.is_object()) throw_error(where, ": key 'tritter.config': found a JSON ", j.type_name(), ", expected an object");
    if (!j.contains("rope_scaling")) return RopeScaling{};
    return config_overrides_from_json(nlohmann::json{{"rope_scaling", j["rope_scaling"]}}, where + " key 'tritter.config'")
        .rope_scaling.value_or(RopeScaling{});
  }
  if (f.find("rope_freqs.weight")) {
    throw_error(where, ": tensor 'rope_freqs.weight' (llama.cpp's per-frequency RoPE factors, its form of Llama 3 ",
                "scaling) is present without key 'tritter.config'; expected no such tensor (Tritter reads RoPE ",
                "scaling from the rope.scaling.* keys)");
  }
  std::string type = "linear";  // llama.cpp's default
  if (const GgufValue* t = f.find_value(p + "rope.scaling.type")) {
    if (t->type != GgufValueType::String) {
      throw_error(where, ": key '", p, "rope.scaling.type': found ", gguf_value_type_name(t->type), ", expected a STRING");
    }
    type = t->s;
  }
  const auto number = [&](const char* key, double def) {
    return f.find_value(p + key) ? f32_decimal(f.get_number(p + key)) : def;
  };
  RopeScaling s;
  const double factor = number("rope.scaling.factor", 0.0);
  if (type == "none" || ((type == "linear") && (factor == 0.0 || factor == 1.0))) return s;
  if (type == "linear") {
    s.type = RopeScaling::Type::Linear;
  } else if (type == "yarn") {
    s.type = RopeScaling::Type::Yarn;
    if (f.find_value(p + "rope.scaling.original_context_length")) {
      s.original_max_position_embeddings = f.get_int(p + "rope.scaling.original_context_length");
    }
    if (f.find_value(p + "rope.scaling.attn_factor")) s.attention_factor = number("rope.scaling.attn_factor", 1.0);
    s.beta_fast = number("rope.scaling.yarn_beta_fast", s.beta_fast);
    s.beta_slow = number("rope.scaling.yarn_beta_slow", s.beta_slow);
  } else {
    throw_error(where, ": key '", p, "rope.scaling.type': found '", type, "', expected 'none', 'linear' or 'yarn'");
  }
  s.factor = factor == 0.0 ? 1.0 : factor;
  return s;
}

}  // namespace

TritterConfig gguf_model_config(const GgufFile& f) {
  const std::string where = "file '" + f.source() + "'";
  const std::string arch = f.get_string("general.architecture");
  if (arch == "tritter") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(f.get_string("tritter.config"));
    } catch (const nlohmann::json::exception& e) {
      throw_error(where, ": key 'tritter.config' is not valid JSON: ", e.what());
    }
    return config_from_json(j, where + " key 'tritter.config'");
  }
  if (!is_bitnet_arch(arch)) {
    throw_error(where, ": general.architecture '", arch, "', expected 'bitnet' (also 'bitnet-b1.58', 'bitnet-25') or ",
                "'tritter': Tritter runs BitNet b1.58 models");
  }
  const std::string p = arch + ".";
  if (arch == "bitnet") {
    const GgufValue* act = f.find_value(p + "hidden_act");
    if (!act || act->type != GgufValueType::String || act->s != "relu2") {
      throw_error(where, ": key '", p, "hidden_act' is ", act ? "'" + act->s + "'" : std::string("absent (llama.cpp then runs SiLU)"),
                  ", expected 'relu2' (Tritter's MLP is relu²)");
    }
  }
  ConfigOverrides o;
  o.model_size = "custom";
  o.hidden_size = f.get_int(p + "embedding_length");
  o.num_hidden_layers = f.get_int(p + "block_count");
  o.intermediate_size = f.get_int(p + "feed_forward_length");
  o.num_attention_heads = f.get_int(p + "attention.head_count");
  o.num_key_value_heads = f.find_value(p + "attention.head_count_kv") ? f.get_int(p + "attention.head_count_kv")
                                                                      : *o.num_attention_heads;
  o.head_dim = f.find_value(p + "rope.dimension_count") ? f.get_int(p + "rope.dimension_count")
                                                        : *o.hidden_size / *o.num_attention_heads;
  if (f.find_value(p + "context_length")) o.max_position_embeddings = f.get_int(p + "context_length");
  if (f.find_value(p + "rope.freq_base")) o.rope_theta = f32_decimal(f.get_number(p + "rope.freq_base"));
  if (f.find_value(p + "attention.layer_norm_rms_epsilon")) o.rms_norm_eps = f32_decimal(f.get_number(p + "attention.layer_norm_rms_epsilon"));
  const GgufTensor& embd = f.get("token_embd.weight");
  if (embd.ne.size() != 2 || embd.ne[0] != *o.hidden_size) {
    throw_error(where, ": tensor 'token_embd.weight': ne ", shape_str(embd.ne), ", expected [", *o.hidden_size, ", n_vocab]");
  }
  o.vocab_size = f.find_value(p + "vocab_size") ? f.get_int(p + "vocab_size") : embd.ne[1];
  o.tie_word_embeddings = f.find("output.weight") == nullptr;
  o.qk_norm = false;
  o.sub_norm = true;
  o.post_norm = PostNorm::None;
  o.mlp_act = MlpAct::Relu2Glu;
  o.quant = true;
  o.rope_scaling = gguf_rope_scaling(f, p, where);
  try {
    return resolve_config(o);
  } catch (const Error& e) {
    throw_error(where, ": ", e.what());
  }
}

namespace {

// bitnet.cpp's I2_S (type 36) as its converter (utils/convert-hf-to-gguf-bitnet.py) and its x86 kernels lay it out:
// the matrix row-major, 2 bits per value coded −1→0, 0→1, +1→2, in blocks of 128 values; value j of a block sits
// in byte j % 32 at bits 6 − 2·(j / 32). After the n/4 bytes, a 32-byte tail whose first 4 bytes are the f32
// scale (W = code · scale, one per matrix). codes (n) i8; returns the scale.
float i2_s_to_codes(int8_t* codes, const GgufTensor& t, const std::string& where) {
  const int64_t n = t.numel();
  if (n % 128 != 0) {
    throw_error(where, ": tensor '", t.name, "': I2_S with ", n, " values, expected a multiple of 128 (its blocks)");
  }
  const uint8_t* b = t.data;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = i % 128;
    const int v = (b[i / 128 * 32 + j % 32] >> (6 - 2 * (j / 32))) & 3;
    if (v == 3) throw_error(where, ": tensor '", t.name, "': I2_S value ", i, " has code 3, expected 0, 1 or 2");
    codes[i] = static_cast<int8_t>(v - 1);
  }
  float scale = 0.0f;
  std::memcpy(&scale, b + n / 4, 4);
  return scale;
}

}  // namespace

bool gguf_head_is_quantized(const GgufFile& f) {
  const GgufTensor* t = f.find("output.weight");
  if (!t) t = f.find("token_embd.weight");
  if (!t) return false;
  return t->type == GgmlType::Q8_0 || t->type == GgmlType::Q4_0 || t->type == GgmlType::Q4_K ||
         t->type == GgmlType::Q6_K;
}

PackedModel load_gguf_model(const GgufFile& f, MemoryAccount* account, bool* add_bos, HeadFormat head) {
  const std::string where = "file '" + f.source() + "'";
  const TritterConfig c = gguf_model_config(f);
  if (!f.find_value("tokenizer.ggml.model")) {
    throw_error(where, ": key 'tokenizer.ggml.model' is missing (a GGUF model carries its tokenizer)");
  }
  if (add_bos) {
    const GgufValue* b = f.find_value("tokenizer.ggml.add_bos_token");
    *add_bos = b && b->type == GgufValueType::Bool ? b->u != 0 : f.get_string("tokenizer.ggml.model") != "tritter-byte";
  }
  const auto table = tensor_table(c);
  std::set<std::string> known;
  for (const TensorInfo& info : table) {
    known.insert(gguf_base(info) + ".weight");
    if (info.role == TensorRole::BitLinear) known.insert(gguf_base(info) + ".scale");
  }
  for (const GgufTensor& t : f.tensors()) {
    if (!known.count(t.name)) throw_error(where, ": unexpected tensor '", t.name, "' (not in the model's tensor table)");
  }
  auto get = [&](const TensorInfo& info) -> const GgufTensor& {
    const GgufTensor& t = f.get(gguf_base(info) + ".weight");
    if (t.ne != gguf_ne(info.shape)) {
      throw_error(where, ": tensor '", t.name, "': ne ", shape_str(t.ne), ", expected ", shape_str(gguf_ne(info.shape)),
                  " (from the metadata)");
    }
    return t;
  };
  ForeignTensors src;
  src.values = [&](const TensorInfo& info, float* out) { gguf_values(out, get(info), where); };
  src.ternary = [&](const TensorInfo& info, int8_t* codes) -> std::optional<float> {
    const GgufTensor& t = get(info);
    if (t.type == GgmlType::I2_S) {
      float scale = i2_s_to_codes(codes, t, where);
      if (const GgufTensor* s = f.find(gguf_base(info) + ".scale")) {
        if (s->numel() != 1 || s->type != GgmlType::F32) throw_error(where, ": tensor '", s->name, "': expected one F32");
        float m = 1.0f;
        std::memcpy(&m, s->data, 4);
        scale *= m;
      }
      return scale;
    }
    if (t.type != GgmlType::TQ2_0 && t.type != GgmlType::TQ1_0) return std::nullopt;
    const int64_t n = t.numel();
    std::vector<float> d(static_cast<size_t>(n / kQkK));
    if (t.type == GgmlType::TQ2_0) tq2_0_to_codes(codes, d.data(), t.data, n);
    else tq1_0_to_codes(codes, d.data(), t.data, n);
    // One β per matrix: every block with a non-zero scale must carry the same one (llama.cpp's converter writes
    // the checkpoint's weight_scale into every block); blocks with d = 0 hold zeros.
    float dm = 0.0f;
    for (size_t b = 0; b < d.size(); ++b) {
      if (d[b] == 0.0f) {
        std::memset(codes + b * kQkK, 0, kQkK);
        continue;
      }
      if (dm == 0.0f) dm = d[b];
      if (d[b] != dm) {
        throw_error(where, ": tensor '", t.name, "': block ", b, " has scale ", d[b], ", block 0 ", dm,
                    ": Tritter's ternary matrices carry one scale per matrix");
      }
    }
    if (dm == 0.0f) dm = 1.0f;
    float scale = 1.0f;
    if (const GgufTensor* s = f.find(gguf_base(info) + ".scale")) {
      if (s->numel() != 1 || s->type != GgmlType::F32) throw_error(where, ": tensor '", s->name, "': expected one F32");
      std::memcpy(&scale, s->data, 4);
    }
    return dm * scale;
  };
  return build_packed_model(c, src, account, head);
}

namespace {

// GPT-2's byte → printable code point map (what llama.cpp's BPE vocabularies store for byte tokens).
std::string gpt2_byte_token(int b) {
  auto printable = [](int x) { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255); };
  int cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int x = 0; x < b; ++x) n += !printable(x);
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// The byte tokenizer as a BPE vocabulary without merges: every byte is one token, as Tritter encodes it.
void append_byte_vocab(std::vector<std::pair<std::string, GgufValue>>& kv, int64_t vocab_size) {
  static const char* kSpecials[kTokenSpecialCount] = {"<pad>", "<bos>", "<eos>", "<unk>", "<text>", "<code>",
                                                      "<image>", "<audio>"};
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int64_t id = 0; id < vocab_size; ++id) {
    if (id < kTokenSpecialCount) {
      tokens.emplace_back(kSpecials[id]);
      types.push_back(3);  // CONTROL
    } else if (id < kByteVocabSize) {
      tokens.push_back(gpt2_byte_token(static_cast<int>(id - kTokenByteOffset)));
      types.push_back(1);  // NORMAL
    } else {
      tokens.push_back("<id " + std::to_string(id) + ">");
      types.push_back(5);  // UNUSED
    }
  }
  kv.emplace_back("tokenizer.ggml.model", GgufValue::str("gpt2"));
  kv.emplace_back("tokenizer.ggml.pre", GgufValue::str("default"));
  kv.emplace_back("tokenizer.ggml.tokens", GgufValue::strings(tokens));
  kv.emplace_back("tokenizer.ggml.token_type", GgufValue::i32s(types));
  kv.emplace_back("tokenizer.ggml.merges", GgufValue::strings({}));
  kv.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(kTokenBos));
  kv.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(kTokenEos));
  kv.emplace_back("tokenizer.ggml.unknown_token_id", GgufValue::u32(kTokenUnk));
  kv.emplace_back("tokenizer.ggml.padding_token_id", GgufValue::u32(kTokenPad));
  kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
  kv.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));

}

}  // namespace

void write_gguf_model(const fs::path& path, const ModelWeights& w, const GgufWriteOptions& options) {
  const TritterConfig& c = w.config;
  if (options.embed != GgmlType::Q8_0 && options.embed != GgmlType::F16 && options.embed != GgmlType::F32) {
    throw_error("write_gguf_model: embedding type must be Q8_0, F16 or F32");
  }
  // llama.cpp's bitnet graph has RoPE scaling of the linear and yarn kinds only (its rope.scaling.* keys, no
  // per-frequency factors): a model with llama3 or dynamic scaling is written as 'tritter', which llama.cpp refuses
  // by name rather than running with other frequencies.
  const RopeScaling& rs = c.rope_scaling;
  const bool llama_cpp_rope = rs.type == RopeScaling::Type::None || rs.type == RopeScaling::Type::Linear ||
                              rs.type == RopeScaling::Type::Yarn;
  const bool bitnet = bitnet_compatible(c) && c.tie_word_embeddings && llama_cpp_rope;
  const std::string arch = bitnet ? "bitnet" : "tritter";
  const std::string p = arch + ".";
  std::vector<std::pair<std::string, GgufValue>> kv;
  auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  kv.emplace_back("general.architecture", GgufValue::str(arch));
  kv.emplace_back("general.name", GgufValue::str(options.name));
  kv.emplace_back("general.file_type", GgufValue::u32(37));  // MOSTLY_TQ2_0
  kv.emplace_back("general.quantization_version", GgufValue::u32(2));
  kv.emplace_back("general.alignment", GgufValue::u32(32));
  kv.emplace_back(p + "context_length", u32(c.max_position_embeddings));
  kv.emplace_back(p + "embedding_length", u32(c.hidden_size));
  kv.emplace_back(p + "feed_forward_length", u32(c.intermediate_size));
  kv.emplace_back(p + "block_count", u32(c.num_hidden_layers));
  kv.emplace_back(p + "attention.head_count", u32(c.num_attention_heads));
  kv.emplace_back(p + "attention.head_count_kv", u32(c.num_key_value_heads));
  kv.emplace_back(p + "attention.key_length", u32(c.head_dim));
  kv.emplace_back(p + "attention.value_length", u32(c.head_dim));
  kv.emplace_back(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
  kv.emplace_back(p + "rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  kv.emplace_back(p + "rope.dimension_count", u32(c.head_dim));
  // RoPE scaling in llama.cpp's keys where it has them (linear, yarn); tritter.config below holds every field.
  if (rs.type == RopeScaling::Type::Linear || rs.type == RopeScaling::Type::Yarn) {
    kv.emplace_back(p + "rope.scaling.type", GgufValue::str(rs.type == RopeScaling::Type::Linear ? "linear" : "yarn"));
    kv.emplace_back(p + "rope.scaling.factor", GgufValue::f32(static_cast<float>(rs.factor)));
  }
  if (rs.type == RopeScaling::Type::Yarn) {
    if (rs.original_max_position_embeddings > 0) {
      kv.emplace_back(p + "rope.scaling.original_context_length", u32(rs.original_max_position_embeddings));
    }
    if (rs.attention_factor) kv.emplace_back(p + "rope.scaling.attn_factor", GgufValue::f32(static_cast<float>(*rs.attention_factor)));
    kv.emplace_back(p + "rope.scaling.yarn_beta_fast", GgufValue::f32(static_cast<float>(rs.beta_fast)));
    kv.emplace_back(p + "rope.scaling.yarn_beta_slow", GgufValue::f32(static_cast<float>(rs.beta_slow)));
  }
  kv.emplace_back(p + "vocab_size", u32(c.vocab_size));
  kv.emplace_back(p + "hidden_act", GgufValue::str("relu2"));
  kv.emplace_back("tritter.config", GgufValue::str(config_to_json(c, /*model_only=*/true).dump()));
  if (options.vocab) {
    const GgufVocab& v = *options.vocab;
    if (static_cast<int64_t>(v.tokens.size()) > c.vocab_size) {
      throw_error("write_gguf_model: the tokenizer has ", v.tokens.size(), " tokens, more than vocab_size ", c.vocab_size);
    }
    make_gguf_tokenizer(v);  // what the reader will build must build (named errors before the file is written)
    kv.emplace_back("tokenizer.ggml.model", GgufValue::str(v.model));
    if (!v.pre.empty()) kv.emplace_back("tokenizer.ggml.pre", GgufValue::str(v.pre));
    kv.emplace_back("tokenizer.ggml.tokens", GgufValue::strings(v.tokens));
    if (!v.scores.empty()) kv.emplace_back("tokenizer.ggml.scores", GgufValue::f32s(v.scores));
    if (!v.types.empty()) kv.emplace_back("tokenizer.ggml.token_type", GgufValue::i32s(v.types));
    if (v.model == "gpt2") kv.emplace_back("tokenizer.ggml.merges", GgufValue::strings(v.merges));
    const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", v.bos}, {"tokenizer.ggml.eos_token_id", v.eos},
                                                   {"tokenizer.ggml.unknown_token_id", v.unk}, {"tokenizer.ggml.padding_token_id", v.pad}};
    for (const auto& [key, id] : ids) if (id >= 0) kv.emplace_back(key, u32(id));
    if (v.has_add_bos) kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(v.add_bos));
    kv.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(v.add_eos));
    if (v.model == "llama") kv.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(v.add_space_prefix));
  } else {
    append_byte_vocab(kv, c.vocab_size);
  }
  if (!options.chat_template.empty()) kv.emplace_back("tokenizer.chat_template", GgufValue::str(options.chat_template));

  const auto table = tensor_table(c);
  std::vector<GgufTensorOut> out;
  std::vector<float> scales(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const TensorInfo& info = table[i];
    const std::string base = gguf_base(info);
    if (info.role == TensorRole::BitLinear) {
      const TernaryMatrix m = *layer_matrix_slot(const_cast<LayerWeights&>(w.layers[info.layer]), info.kind);
      if (m.cols % kQkK != 0) {
        throw_error("write_gguf_model: tensor '", info.name, "': ", m.cols, " input columns, expected a multiple of ",
                    kQkK, " (TQ2_0 blocks)");
      }
      // d = β in f16 in every block, and scale such that d · scale == β in f32 (llama.cpp multiplies by both).
      const float beta = ternary_matrix_beta(m);
      const float d = f16_to_f32(f32_to_f16(beta));
      float s = beta / d;
      for (int k = 0; k < 4 && d * s != beta; ++k) s = std::nextafter(s, d * s < beta ? INFINITY : 0.0f);
      const bool exact = d * s == beta && d > 0.0f;
      scales[i] = exact ? s : beta;
      const float block_d = exact ? d : 1.0f;
      out.push_back({base + ".weight", GgmlType::TQ2_0, gguf_ne(info.shape), nullptr, [m, block_d](const auto& sink) {
        std::vector<int8_t> q(static_cast<size_t>(m.rows * m.cols));
        ternary_matrix_codes(q.data(), m);
        std::vector<uint8_t> b(static_cast<size_t>(m.rows * m.cols / kQkK * kTq2_0Bytes));
        tq2_0_from_codes(b.data(), q.data(), m.rows * m.cols, block_d);
        sink(b.data(), b.size());
      }});
      out.push_back({base + ".scale", GgmlType::F32, {1}, &scales[i], {}});
      continue;
    }
    const bool matrix = info.role == TensorRole::Embedding || info.role == TensorRole::LmHead;
    const GgmlType type = matrix ? options.embed : GgmlType::F32;
    if (type == GgmlType::Q8_0 && info.shape.back() % kQ8_0Block != 0) {
      throw_error("write_gguf_model: tensor '", info.name, "': ", info.shape.back(), " columns, expected a multiple of 32 for Q8_0");
    }
    out.push_back({base + ".weight", type, gguf_ne(info.shape), nullptr, [&w, info, type](const auto& sink) {
      std::vector<float> f(static_cast<size_t>(info.numel()));
      if (info.role == TensorRole::Embedding) {
        std::memcpy(f.data(), w.embed, f.size() * 4);
      } else if (info.role == TensorRole::LmHead) {
        model_head_values(f.data(), w);
      } else {
        const float* src = info.layer < 0 ? w.final_norm
                                          : *layer_norm_slot(const_cast<LayerWeights&>(w.layers[info.layer]), info.kind);
        std::memcpy(f.data(), src, f.size() * 4);
      }
      if (type == GgmlType::F32) {
        sink(f.data(), f.size() * 4);
      } else if (type == GgmlType::F16) {
        std::vector<uint16_t> h(f.size());
        for (size_t k = 0; k < f.size(); ++k) h[k] = f32_to_f16(f[k]);
        sink(h.data(), h.size() * 2);
      } else {
        std::vector<uint8_t> b(f.size() / kQ8_0Block * kQ8_0Bytes);
        quantize_q8_0(b.data(), f.data(), static_cast<int64_t>(f.size()));
        sink(b.data(), b.size());
      }
    }});
  }
  write_gguf(path, kv, out);
}

}  // namespace tritter
