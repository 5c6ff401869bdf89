// A tokenizer from a GGUF file's tokenizer.ggml.* metadata (docs/tokenizers.md): "gpt2" vocabularies (byte-level
// BPE with merges; the split regex from tokenizer.ggml.pre) and "llama" vocabularies (SentencePiece: pieces with
// scores, ▁ for spaces, <0xHH> byte fallback; merges derived from the scores as llama.cpp's tokenizer ranks
// them). Both become a tokenizer.json description run by the one BPE implementation (hf_tokenizer.h), so GGUF and
// Hugging Face files of one model give the same ids. Tritter's own byte vocabulary is recognized and becomes the
// byte tokenizer. Non-goals: reading the GGUF container (io/gguf.h), WordPiece/Unigram ("bert", "t5") vocabularies.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace tritter {

// ggml's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct GgufVocab {
  std::string where;                 // the file, for errors
  std::string model;                 // tokenizer.ggml.model: "gpt2", "llama" (or Tritter's "tritter-byte")
  std::string pre;                   // tokenizer.ggml.pre ("" when absent)
  std::vector<std::string> tokens;   // id → piece
  std::vector<float> scores;         // id → score (llama; may be empty for gpt2)
  std::vector<int32_t> types;        // id → GgufTokenType (empty: all Normal)
  std::vector<std::string> merges;   // "a b" (gpt2)
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false, has_add_bos = false, add_eos = false;
  bool add_space_prefix = true;      // llama: tokenizer.ggml.add_space_prefix
};

// Whether the vocabulary is Tritter's byte tokenizer as write_gguf_model spells it (8 specials, the 256 GPT-2 byte
// characters in byte order, no merges; more ids after 264 allowed).
bool gguf_vocab_is_byte_tokenizer(const GgufVocab& v);
// The tokenizer.json text the vocabulary describes. Throws Error naming v.where and the key
// ("tokenizer.ggml.pre: found 'x', expected ...") on what Tritter does not read.
std::string gguf_vocab_tokenizer_json(const GgufVocab& v);
// The tokenizer: the byte tokenizer for Tritter's vocabulary, else the BPE of gguf_vocab_tokenizer_json with
// v's bos/eos/unk/pad ids.
std::unique_ptr<Tokenizer> make_gguf_tokenizer(const GgufVocab& v);

// The reverse, for writing a GGUF from a Hugging Face folder: tokenizer.json as tokenizer.ggml.* (config: the
// folder's tokenizer_config.json bos/eos/pad/unk and add_bos_token). Byte-level files become "gpt2" (merges kept in
// order, pre from the split regex: llama-bpe, qwen2 or gpt2); SentencePiece-style files "llama" with scores −rank
// of the merge that first forms each piece (0 for pieces no merge forms). Throws Error naming `where` and the field
// when the pipeline has no GGUF spelling.
GgufVocab gguf_vocab_from_tokenizer_json(const std::string& json_text, const std::string& where,
                                         const struct TokenizerConfig* config);

}  // namespace tritter
