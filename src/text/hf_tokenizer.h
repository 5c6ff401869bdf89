// Hugging Face tokenizer.json files with a BPE model: byte-level files (GPT-2, Llama 3, Qwen2: a Split regex and/or
// a ByteLevel pre-tokenizer) and SentencePiece-style files (Llama 2, Mistral: ▁ for spaces, <0xHH> byte fallback).
// Encoding gives Hugging Face's ids; invalid UTF-8 in the text is first replaced by U+FFFD, as a JavaScript or
// Python caller's decoding would. Non-goals: WordPiece/Unigram/WordLevel models, pairs, offsets, truncation and
// padding (read and ignored), BPE dropout.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "text/tokenizer.h"

namespace tritter {

// Reads and parses the file at path; every error names the file and the JSON field ("tokenizer.json: model.merges[3]:
// found ..., expected ...").
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path);
// Parses tokenizer.json text; `where` names it in errors (a path, or "tokenizer.json").
std::unique_ptr<Tokenizer> parse_tokenizer_json(std::string_view json, const std::string& where);

// The tokenizer_config.json fields a model needs beside tokenizer.json.
struct TokenizerConfig {
  std::string chat_template;          // "" when the file has none; the "default" one when it names several
  std::string bos_token, eos_token;   // their text ("<|begin_of_text|>"), "" when absent
  std::string pad_token, unk_token;
  bool add_bos_token = false, add_eos_token = false;
  bool has_add_bos_token = false;     // whether the file says add_bos_token at all
};
TokenizerConfig load_tokenizer_config(const std::string& path);
TokenizerConfig parse_tokenizer_config(std::string_view json, const std::string& where);

// A HF model folder's tokenizer: DIR/tokenizer.json, with the bos/eos/pad of DIR/tokenizer_config.json (when present)
// applied to special_ids(). The chat template comes from load_tokenizer_config(DIR/tokenizer_config.json).
// tokenizer.json text with a tokenizer_config's bos/eos/pad/unk and add_bos/add_eos applied (GGUF vocabularies).
std::unique_ptr<Tokenizer> parse_tokenizer_json(std::string_view json, const std::string& where,
                                                const TokenizerConfig& config);

std::unique_ptr<Tokenizer> load_hf_tokenizer_dir(const std::string& dir);

}  // namespace tritter
