// The parsed form of a tokenizer.json and the pipeline stages over it (internal to text/: hf_tokenizer.cpp is the
// one user). Split out so the parser (with its field-naming errors) and the stages stay screen-sized.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/hf_tokenizer.h"
#include "text/pre_tokenizer.h"

namespace tritter::hf {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false;
};

struct NormStep {
  enum Kind { prepend, replace, nfc, nfd, nfkc, nfkd, lowercase } kind;
  std::string a, b;  // prepend: a; replace: a → b
};

struct PreStep {
  enum Kind { split, byte_level, metaspace } kind = split;
  SplitPattern pattern = SplitPattern::gpt2;  // split; byte_level with use_regex
  bool use_regex = false, add_prefix_space = false;
  std::string replacement;                   // metaspace
  enum Scheme { always, first, never } scheme = always;
  bool split_on_replacement = true;
};

struct DecStep {
  enum Kind { byte_level, replace, byte_fallback, fuse, strip, metaspace } kind = fuse;
  std::string a, b;  // replace: a → b; strip: a is the character; metaspace: a is the replacement
  int start = 0, stop = 0;
  bool strip_first_space = false;  // metaspace: its prepend scheme added one
};

// Lets string-keyed maps be searched with a string_view, without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Merge {
  int32_t rank, id;
};

struct TokenizerSpec {
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab;  // model.vocab
  std::vector<std::string> pieces;                 // id → piece (vocab and added tokens)
  std::vector<uint8_t> special;                    // id → 1 for special added tokens
  std::unordered_map<uint64_t, Merge> merges;      // (left id << 32 | right id) → rank, merged id
  std::vector<AddedToken> added;
  std::array<std::vector<int>, 256> added_by_byte;  // first byte → indices into added, longest first
  std::vector<NormStep> normalizer;
  std::vector<PreStep> pre_tokenizer;
  std::vector<DecStep> decoder;
  std::vector<int32_t> template_prefix, template_suffix;  // post_processor ids around a single sequence
  bool byte_level = false;       // pieces are spelled in the GPT-2 byte alphabet
  std::array<int32_t, 256> byte_ids{};  // byte-level: byte → id of its one-character piece, or -1
  std::array<int32_t, 256> fallback_ids{};  // byte_fallback: byte → id of "<0xHH>", or -1
  bool byte_fallback = false, ignore_merges = false, fuse_unk = false;
  int32_t unk = -1;
  SpecialTokenIds ids;
};

TokenizerSpec parse_spec(std::string_view json_text, const std::string& where, const TokenizerConfig* config);

// The normalized section: a view of `section` when no step changes it, else of `storage`.
std::string_view run_normalizer(const TokenizerSpec& s, std::string_view section, std::string& storage);
// Appends the pre-tokenizer's pieces of text (views into text or into storage, which must outlive them).
void pre_tokenize(const TokenizerSpec& s, std::string_view text, bool first_section, std::string& storage,
                  std::vector<std::string_view>& pieces);

struct Symbol {
  int32_t id, prev, next, len;  // len 0: merged into its left neighbour
};
// Appends the BPE ids of one pre-token.
void bpe_piece(const TokenizerSpec& s, std::string_view piece, std::vector<int32_t>& out,
               std::vector<Symbol>& symbols, std::string& mapped);

std::string run_decoder(const TokenizerSpec& s, std::vector<std::string> tokens);
std::string piece_bytes(const TokenizerSpec& s, int32_t id);

}  // namespace tritter::hf
