// The one tokenizer interface the engine holds: encode text → ids, decode ids → text, per-token pieces, the special
// ids a model's generation and chat need, and the vocabulary size. Implemented by Tritter's byte tokenizer
// (byte_tokenizer.h, the default for Tritter's own models) and by Hugging Face tokenizer.json BPE files
// (hf_tokenizer.h). Non-goals: training tokenizers, pairs of sequences, offsets.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tritter {

// Ids a model's generation and chat use; -1 where the tokenizer has none.
struct SpecialTokenIds {
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  // Ids that end a generated turn: eos plus the chat control tokens that close a message (<|eot_id|>,
  // <|im_end|>, <|end_of_text|>, </s>) when the vocabulary has them.
  std::vector<int32_t> end_of_generation;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // ids ← text. add_special: the specials the tokenizer adds around a sequence (<bos> for the byte tokenizer and
  // Llama files; the file's post_processor for tokenizer.json). Special-token text inside `text` ("<|eot_id|>")
  // becomes its id for tokenizer.json files; the byte tokenizer never yields a special from text.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special) const = 0;
  // text ← ids. skip_special drops special tokens (else they appear as their text). Throws Error on an id outside
  // [0, vocab_size()).
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special = true) const = 0;
  // The token's vocabulary string as the file spells it ("Ġthe", "▁the", "<0x0A>", "<|eot_id|>"; the byte
  // tokenizer: the byte itself, or "<bos>").
  virtual std::string token_piece(int32_t id) const = 0;
  // The bytes this token adds to a decoded text, for streaming ("" for specials). Concatenating the bytes of a
  // sequence equals decode() except for a decoder's strip of the first leading space (SentencePiece files).
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // The id of a vocabulary string (a piece or an added token's content), if any.
  virtual std::optional<int32_t> token_id(std::string_view piece) const = 0;
  virtual const SpecialTokenIds& special_ids() const = 0;
  virtual int64_t vocab_size() const = 0;
  // "byte", "bpe-byte-level", "bpe-sentencepiece": for messages and `tritter inspect`.
  virtual std::string kind() const = 0;
};

// Tritter's byte tokenizer behind the interface: encode(text, true) = [<bos>] b+8 ..., decode drops specials
// unless !skip_special (then "<eos>" etc.).
std::unique_ptr<Tokenizer> make_byte_tokenizer();

// The byte tokenizer as a Hugging Face tokenizer.json (BPE over the GPT-2 byte alphabet with no merges, the 8
// specials as added tokens, <bos> added by a TemplateProcessing post-processor): Hugging Face's tokenizers and
// Tritter's tokenizer.json reader give the same ids as tokenize() on every valid UTF-8 text.
std::string byte_tokenizer_json();

}  // namespace tritter
