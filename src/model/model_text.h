// What a model file says about text (docs/tokenizers.md): its tokenizer, chat template and generation defaults.
// A HF folder: tokenizer.json + tokenizer_config.json (specials, add_bos_token, chat_template) and
// generation_config.json; a GGUF file: its tokenizer.ggml.* keys (text/gguf_vocab.h) and tokenizer.chat_template;
// Tritter's own files (and HF/GGUF files holding Tritter's byte vocabulary): the byte tokenizer and Tritter's
// built-in chat format. Non-goals: the weights (model_files.h).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/model_files.h"
#include "text/gguf_vocab.h"
#include "text/tokenizer.h"

namespace tritter {

// generation_config.json's sampling fields (absent ones stay nullopt).
struct GenerationConfig {
  std::optional<float> temperature, top_p, repetition_penalty;
  std::optional<int> top_k;
  std::optional<bool> do_sample;
  std::vector<int32_t> eos_token_ids;  // eos_token_id (an integer or a list)
};
GenerationConfig parse_generation_config(const std::string& json_text, const std::string& where);
// The temperature the file asks for: 0 (greedy, as transformers decodes) when do_sample is false, else its
// temperature; nullopt when it names neither.
std::optional<float> generation_temperature(const GenerationConfig& g);

struct ModelText {
  std::unique_ptr<Tokenizer> tokenizer;
  std::string chat_template;        // "" when the file has none (and the tokenizer is not the byte tokenizer)
  std::string chat_template_where;  // "DIR/tokenizer_config.json: chat_template", "FILE: tokenizer.chat_template", "built-in"
  std::string bos_token, eos_token; // their text, for the template's bos_token/eos_token
  GenerationConfig generation;
  std::vector<int32_t> end_ids;     // ids that end a generated turn: the tokenizer's and generation_config's
  std::string where;                // where the tokenizer came from, for -v and errors
  // Whether prompts start with <bos>: the file's add_bos_token (tokenizer_config.json, tokenizer.ggml.add_bos_token);
  // when it does not say, true for BPE vocabularies (BitNet 2B4T, Llama) and false for the byte tokenizer.
  bool add_bos = false;
};

// The GGUF tokenizer.ggml.* keys. Errors name the file, the key, the type found and the type expected.
GgufVocab gguf_vocab(const GgufFile& f);
// Tritter's byte tokenizer with its built-in chat format (a model made in memory).
ModelText byte_model_text();
// For `path` of this kind (folder: a HF folder's directory).
ModelText load_model_text(ModelFileKind kind, const std::filesystem::path& path, const std::filesystem::path& folder);

// A model file's own vocabulary, for writing the model in another container (convert, export): what a GGUF
// stores as tokenizer.ggml.*, what a HF folder or Tritter file stores as tokenizer.json, and the chat template.
// nullopt when the file uses Tritter's byte tokenizer (every writer's default).
struct ModelVocab {
  GgufVocab gguf;
  std::string tokenizer_json;
  std::string chat_template;
  bool add_bos = false;
  std::filesystem::path hf_folder;  // a HF source: its tokenizer files are copied as they are
};
std::optional<ModelVocab> model_file_vocab(ModelFileKind kind, const std::filesystem::path& path,
                                           const std::filesystem::path& folder);
// Writes DIR/tokenizer.json and DIR/tokenizer_config.json for `v` (a HF source's own files copied, with its
// generation_config.json), over the byte tokenizer's that write_hf_folder wrote.
void write_hf_tokenizer_files(const std::filesystem::path& dir, const ModelVocab& v);

}  // namespace tritter
