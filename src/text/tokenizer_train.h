// Training a BPE tokenizer for code with SentencePiece's trainer (libsentencepiece) and writing it as a Hugging Face
// tokenizer.json in the SentencePiece style (▁ for spaces, <0xHH> byte fallback, merges ranked by piece score), which
// Tritter's tokenizer.json reader and Hugging Face's tokenizers encode to SentencePiece's own ids. A library of its
// own (tritter_text_train): only the CLI and the tests link SentencePiece. Non-goals: Unigram models, reading files
// (the caller streams documents in), pre-tokenizer regexes.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tritter {

struct TokenizerTrainOptions {
  int64_t vocab_size = 8192;           // every id: 3 specials + 256 bytes + learned pieces
  std::string model_type = "bpe";      // the one Tritter's tokenizer.json reader runs
  int64_t max_input_bytes = 50 << 20;  // documents are read until this many bytes (the rest is not read)
  size_t max_sentence_bytes = 8192;    // a document goes to the trainer cut at line ends into pieces of at most this
  double character_coverage = 0.9995;  // characters rarer than this share are left to byte fallback
  bool split_digits = true;            // every digit its own piece (numbers spelled digit by digit)
  bool split_by_whitespace = true;     // false: pieces may span spaces ("\n▁▁▁▁", "▁=▁")
  bool split_by_unicode_script = false;  // true: no piece mixes scripts ("self." has Latin and Common)
  bool split_by_number = false;        // true: no piece mixes digits and letters ("utf8")
  bool add_dummy_prefix = false;       // true: a ▁ before every text (Llama 2); code starts lines without one
  int64_t max_piece_length = 16;       // characters per piece
  int threads = 1;
  int log_level = 0;                   // SentencePiece's own progress lines on stderr: 0 all, 1 warnings, 2 errors
};

struct TrainedTokenizer {
  std::string tokenizer_json;        // the Hugging Face file
  std::string sentencepiece_model;   // SentencePiece's serialized ModelProto (tokenizer.model)
  int64_t documents = 0, sentences = 0, bytes = 0;  // what the trainer read
};

// Called for the next document; returns false at the end. The text may hold any bytes.
using DocumentFeed = std::function<bool(std::string& text)>;
// Progress lines for the caller to print (stderr in the CLI).
using TrainLog = std::function<void(const std::string& line)>;

// Trains on the documents `next` yields (until max_input_bytes). Throws Error when no text was read, the
// vocabulary is too small for the bytes and characters (or too large for the text), or an option is invalid.
TrainedTokenizer train_bpe_tokenizer(const TokenizerTrainOptions& options, const DocumentFeed& next,
                                     const TrainLog& log = {});

// A serialized SentencePiece BPE model (no user-defined pieces) as tokenizer.json (what train_bpe_tokenizer writes).
std::string sentencepiece_to_tokenizer_json(std::string_view serialized_model, bool add_dummy_prefix);

}  // namespace tritter
