#include "model/model_text.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "model/packed_model.h"
#include "text/byte_tokenizer.h"
#include "text/chat_template.h"
#include "text/hf_tokenizer.h"

namespace tritter {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const GgufValue* array_of(const GgufFile& f, const char* key, GgufValueType elem, const char* elem_name, bool numeric) {
  const GgufValue* v = f.find_value(key);
  if (!v) return nullptr;
  const bool ok = v->type == GgufValueType::Array &&
                  (v->elem == elem || (numeric && v->array.size() == 0) ||
                   (numeric && v->elem != GgufValueType::String && v->elem != GgufValueType::Array && v->elem != GgufValueType::Bool));
  if (!ok) {
    throw_error("file '", f.source(), "': key '", key, "': found ",
                v->type == GgufValueType::Array ? std::string("an array of ") + gguf_value_type_name(v->elem)
                                                : std::string(gguf_value_type_name(v->type)),
                ", expected an array of ", elem_name);
  }
  return v;
}

int32_t id_key(const GgufFile& f, const char* key) {
  const GgufValue* v = f.find_value(key);
  if (!v) return -1;
  if (!v->is_integer()) {
    throw_error("file '", f.source(), "': key '", key, "': found ", gguf_value_type_name(v->type), ", expected an integer id");
  }
  const int64_t id = v->as_int();
  if (id < -1 || id > INT32_MAX) throw_error("file '", f.source(), "': key '", key, "': found ", id, ", expected a token id");
  return static_cast<int32_t>(id);
}

std::optional<bool> bool_key(const GgufFile& f, const char* key) {
  const GgufValue* v = f.find_value(key);
  if (!v) return std::nullopt;
  if (v->type != GgufValueType::Bool) {
    throw_error("file '", f.source(), "': key '", key, "': found ", gguf_value_type_name(v->type), ", expected a BOOL");
  }
  return v->u != 0;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw_error("file '", p.string(), "': cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The byte tokenizer behind a HF tokenizer.json: 264 ids, the 8 specials then the 256 byte characters.
bool is_byte_tokenizer(const Tokenizer& t) {
  if (t.vocab_size() != kByteVocabSize || t.kind() != "bpe-byte-level") return false;
  static const char* kSpecials[kTokenSpecialCount] = {"<pad>", "<bos>", "<eos>", "<unk>", "<text>", "<code>",
                                                      "<image>", "<audio>"};
  for (int32_t i = 0; i < kTokenSpecialCount; ++i) if (t.token_piece(i) != kSpecials[i]) return false;
  for (int b = 0; b < 256; ++b) {
    if (t.token_bytes(b + kTokenByteOffset) != std::string(1, static_cast<char>(b))) return false;
  }
  return true;
}

void byte_defaults(ModelText& m) {
  m.tokenizer = make_byte_tokenizer();
  m.chat_template = builtin_chat_template();
  m.chat_template_where = "built-in (Tritter's byte-level chat format)";
  m.bos_token = "<bos>";
  m.eos_token = "<eos>";
}

void add_end(std::vector<int32_t>& ids, int32_t id) {
  if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

// The ids that end a turn by the tokenizer's own account: its end-of-generation controls and eos.
void add_tokenizer_ends(ModelText& m) {
  for (int32_t id : m.tokenizer->special_ids().end_of_generation) add_end(m.end_ids, id);
  add_end(m.end_ids, m.tokenizer->special_ids().eos);
}

}  // namespace

GenerationConfig parse_generation_config(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_error(where, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) throw_error(where, ": found a JSON ", j.type_name(), ", expected an object");
  GenerationConfig g;
  auto number = [&](const char* key) -> std::optional<float> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    if (!j[key].is_number()) throw_error(where, ": ", key, ": found a JSON ", j[key].type_name(), ", expected a number");
    return j[key].get<float>();
  };
  g.temperature = number("temperature");
  g.top_p = number("top_p");
  g.repetition_penalty = number("repetition_penalty");
  if (auto k = number("top_k")) g.top_k = static_cast<int>(*k);
  if (j.contains("do_sample") && j["do_sample"].is_boolean()) g.do_sample = j["do_sample"].get<bool>();
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    const json list = e.is_array() ? e : json::array({e});
    for (const json& id : list) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        throw_error(where, ": eos_token_id: found ", id.dump(), ", expected a token id (an integer >= 0)");
      }
      g.eos_token_ids.push_back(id.get<int32_t>());
    }
  }
  return g;
}

std::optional<float> generation_temperature(const GenerationConfig& g) {
  if (g.do_sample && !*g.do_sample) return 0.0f;
  return g.temperature;
}

GgufVocab gguf_vocab(const GgufFile& f) {
  GgufVocab v;
  v.where = "file '" + f.source() + "'";
  v.model = f.get_string("tokenizer.ggml.model");
  if (f.find_value("tokenizer.ggml.pre")) v.pre = f.get_string("tokenizer.ggml.pre");
  if (const GgufValue* t = array_of(f, "tokenizer.ggml.tokens", GgufValueType::String, "STRING", false)) {
    v.tokens.reserve(t->array.size());
    for (const GgufValue& e : t->array) v.tokens.push_back(e.s);
  } else {
    throw_error(v.where, ": key 'tokenizer.ggml.tokens' is missing (a GGUF model carries its vocabulary)");
  }
  if (const GgufValue* s = array_of(f, "tokenizer.ggml.scores", GgufValueType::F32, "F32", true)) {
    for (const GgufValue& e : s->array) v.scores.push_back(static_cast<float>(e.as_double()));
  }
  if (const GgufValue* s = array_of(f, "tokenizer.ggml.token_type", GgufValueType::I32, "I32", true)) {
    for (const GgufValue& e : s->array) v.types.push_back(static_cast<int32_t>(e.as_int()));
  }
  if (const GgufValue* s = array_of(f, "tokenizer.ggml.merges", GgufValueType::String, "STRING", false)) {
    for (const GgufValue& e : s->array) v.merges.push_back(e.s);
  }
  v.bos = id_key(f, "tokenizer.ggml.bos_token_id");
  v.eos = id_key(f, "tokenizer.ggml.eos_token_id");
  v.unk = id_key(f, "tokenizer.ggml.unknown_token_id");
  v.pad = id_key(f, "tokenizer.ggml.padding_token_id");
  if (auto b = bool_key(f, "tokenizer.ggml.add_bos_token")) v.add_bos = *b, v.has_add_bos = true;
  if (auto b = bool_key(f, "tokenizer.ggml.add_eos_token")) v.add_eos = *b;
  if (auto b = bool_key(f, "tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *b;
  return v;
}

ModelText byte_model_text() {
  ModelText m;
  byte_defaults(m);
  m.where = "byte tokenizer";
  add_tokenizer_ends(m);
  return m;
}

ModelText load_model_text(ModelFileKind kind, const fs::path& path, const fs::path& folder) {
  ModelText m;
  switch (kind) {
    case ModelFileKind::TritterPacked:
    case ModelFileKind::TritterCheckpoint: {
      const SafeTensorsFile f(path);
      const std::string tj = tritter_file_tokenizer_json(f);
      if (tj.empty()) {
        byte_defaults(m);
        m.where = "byte tokenizer (Tritter's own file)";
        break;
      }
      m.where = "file '" + path.string() + "': __metadata__ " + kTokenizerMetadataKey;
      m.tokenizer = parse_tokenizer_json(tj, m.where);
      m.add_bos = kind == ModelFileKind::TritterPacked ? packed_add_bos(f) : checkpoint_add_bos(f);
      if (is_byte_tokenizer(*m.tokenizer)) {  // Tritter's byte vocabulary written out as a tokenizer.json
        byte_defaults(m);
        break;
      }
      if (auto ct = f.metadata().find(kChatTemplateMetadataKey); ct != f.metadata().end()) {
        m.chat_template = ct->second;
        m.chat_template_where = "file '" + path.string() + "': __metadata__ " + kChatTemplateMetadataKey;
      }
      const SpecialTokenIds& ids = m.tokenizer->special_ids();
      if (ids.bos >= 0) m.bos_token = m.tokenizer->token_piece(ids.bos);
      if (ids.eos >= 0) m.eos_token = m.tokenizer->token_piece(ids.eos);
      break;
    }
    case ModelFileKind::HfFolder: {
      const fs::path tj = folder / "tokenizer.json", tc = folder / "tokenizer_config.json";
      const fs::path gc = folder / "generation_config.json";
      std::optional<TokenizerConfig> config;
      if (fs::exists(tc)) config = load_tokenizer_config(tc.string());
      if (!fs::exists(tj)) {
        // load_hf_folder accepted it: tokenizer_config.json names Tritter's byte tokenizer.
        byte_defaults(m);
        m.where = "byte tokenizer (" + tc.string() + ": tokenizer_class TritterByteTokenizer)";
      } else {
        m.tokenizer = load_hf_tokenizer_dir(folder.string());
        m.where = tj.string();
        if (is_byte_tokenizer(*m.tokenizer)) {
          byte_defaults(m);
          m.where = tj.string() + " (Tritter's byte tokenizer)";
        }
      }
      if (config && !config->chat_template.empty()) {
        m.chat_template = config->chat_template;
        m.chat_template_where = tc.string() + ": chat_template";
      }
      if (config && !config->bos_token.empty()) m.bos_token = config->bos_token;
      if (config && !config->eos_token.empty()) m.eos_token = config->eos_token;
      m.add_bos = config && config->has_add_bos_token ? config->add_bos_token : m.tokenizer->kind() != "byte";
      if (fs::exists(gc)) m.generation = parse_generation_config(read_text(gc), "file '" + gc.string() + "'");
      break;
    }
    case ModelFileKind::Gguf: {
      const GgufFile f(path);
      const GgufVocab v = gguf_vocab(f);
      m.tokenizer = make_gguf_tokenizer(v);
      m.where = "file '" + path.string() + "': tokenizer.ggml.* (" + v.model + ")";
      if (m.tokenizer->kind() == "byte") byte_defaults(m);
      m.add_bos = v.has_add_bos ? v.add_bos : m.tokenizer->kind() != "byte";
      if (f.find_value("tokenizer.chat_template")) {
        m.chat_template = f.get_string("tokenizer.chat_template");
        m.chat_template_where = "file '" + path.string() + "': tokenizer.chat_template";
      }
      auto text = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < v.tokens.size() ? v.tokens[id] : std::string(); };
      if (m.tokenizer->kind() != "byte") m.bos_token = text(v.bos), m.eos_token = text(v.eos);
      add_end(m.end_ids, id_key(f, "tokenizer.ggml.eot_token_id"));
      add_end(m.end_ids, id_key(f, "tokenizer.ggml.eom_token_id"));
      break;
    }
  }
  add_tokenizer_ends(m);
  for (int32_t id : m.generation.eos_token_ids) add_end(m.end_ids, id);
  return m;
}

std::optional<ModelVocab> model_file_vocab(ModelFileKind kind, const fs::path& path, const fs::path& folder) {
  ModelVocab v;
  switch (kind) {
    case ModelFileKind::HfFolder: {
      const fs::path tj = folder / "tokenizer.json", tc = folder / "tokenizer_config.json";
      if (!fs::exists(tj)) return std::nullopt;
      const ModelText text = load_model_text(kind, path, folder);
      if (text.tokenizer->kind() == "byte") return std::nullopt;
      const std::optional<TokenizerConfig> config =
          fs::exists(tc) ? std::optional<TokenizerConfig>(load_tokenizer_config(tc.string())) : std::nullopt;
      v.tokenizer_json = read_text(tj);
      v.gguf = gguf_vocab_from_tokenizer_json(v.tokenizer_json, tj.string(), config ? &*config : nullptr);
      v.chat_template = text.chat_template;
      v.add_bos = text.add_bos;
      v.hf_folder = folder;
      return v;
    }
    case ModelFileKind::Gguf: {
      const GgufFile f(path);
      v.gguf = gguf_vocab(f);
      if (gguf_vocab_is_byte_tokenizer(v.gguf)) return std::nullopt;
      if (f.find_value("tokenizer.chat_template")) v.chat_template = f.get_string("tokenizer.chat_template");
      v.tokenizer_json = gguf_vocab_tokenizer_json(v.gguf);
      v.add_bos = v.gguf.has_add_bos ? v.gguf.add_bos : true;
      return v;
    }
    case ModelFileKind::TritterPacked:
    case ModelFileKind::TritterCheckpoint: {
      const ModelText text = load_model_text(kind, path, folder);
      if (text.tokenizer->kind() == "byte") return std::nullopt;
      v.tokenizer_json = tritter_file_tokenizer_json(SafeTensorsFile(path));
      v.chat_template = text.chat_template;
      TokenizerConfig config;
      config.has_add_bos_token = true;
      config.add_bos_token = v.add_bos = text.add_bos;
      config.bos_token = text.bos_token;
      config.eos_token = text.eos_token;
      v.gguf = gguf_vocab_from_tokenizer_json(v.tokenizer_json, text.where, &config);
      return v;
    }
  }
  return std::nullopt;
}

void write_hf_tokenizer_files(const fs::path& dir, const ModelVocab& v) {
  if (!v.hf_folder.empty()) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
      if (fs::exists(v.hf_folder / name)) write_file_atomic(dir / name, read_text(v.hf_folder / name));
    }
    return;
  }
  write_file_atomic(dir / "tokenizer.json", v.tokenizer_json);
  json tc{{"add_bos_token", v.add_bos}};
  const GgufVocab& g = v.gguf;
  if (g.bos >= 0 && static_cast<size_t>(g.bos) < g.tokens.size()) tc["bos_token"] = g.tokens[static_cast<size_t>(g.bos)];
  if (g.eos >= 0 && static_cast<size_t>(g.eos) < g.tokens.size()) tc["eos_token"] = g.tokens[static_cast<size_t>(g.eos)];
  if (!v.chat_template.empty()) tc["chat_template"] = v.chat_template;
  write_file_atomic(dir / "tokenizer_config.json", tc.dump(2) + "\n");
}

}  // namespace tritter
