// The parsed form of a tokenizer.json and the pipeline stages over it (internal to text/: hf_tokenizer.cpp is the
// one user). Split out so the parser (with its field-naming errors) and the stages stay screen-sized.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
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

// A byte trie of the added tokens' contents: the longest one text[i..] starts with is found in one walk (a file
// such as Llama 3's has 256 added tokens that all start with "<|").
struct AddedTrie {
  struct Node {
    int32_t added = -1;                               // index into added of the content ending here, or -1
    std::vector<std::pair<uint8_t, int32_t>> next;    // byte → child node
  };
  std::vector<Node> nodes = std::vector<Node>(1);
  std::array<int32_t, 256> root;                      // the root's children by byte (-1: none), the hot first step

  AddedTrie() { root.fill(-1); }
  // The first index given for equal contents is kept (the file's first).
  void insert(std::string_view content, int32_t index) {
    if (content.empty()) return;
    int32_t n = 0;
    for (size_t k = 0; k < content.size(); ++k) {
      const uint8_t b = static_cast<uint8_t>(content[k]);
      int32_t child = -1;
      if (n == 0) {
        child = root[b];
      } else {
        for (const auto& [byte, c] : nodes[n].next) if (byte == b) child = c;
      }
      if (child < 0) {
        child = static_cast<int32_t>(nodes.size());
        nodes.emplace_back();
        if (n == 0) root[b] = child;
        else nodes[n].next.emplace_back(b, child);
      }
      n = child;
    }
    if (nodes[n].added < 0) nodes[n].added = index;
  }
  bool may_start(uint8_t b) const { return root[b] >= 0; }
  // The index into added of the longest content text[i..] starts with, and its length; -1 when none.
  int32_t longest(std::string_view text, size_t i, size_t& length) const {
    int32_t best = -1;
    int32_t n = root[static_cast<uint8_t>(text[i])];
    for (size_t k = i + 1; n >= 0; ++k) {
      if (nodes[n].added >= 0) best = nodes[n].added, length = k - i;
      if (k == text.size()) break;
      const uint8_t b = static_cast<uint8_t>(text[k]);
      int32_t child = -1;
      for (const auto& [byte, c] : nodes[n].next) {
        if (byte == b) {
          child = c;
          break;
        }
      }
      n = child;
    }
    return best;
  }
};

// Byte strings → ids in one open-addressed table (keys in one arena, a multiply-xor hash over 8-byte words): the
// byte-level vocabulary keyed by the raw bytes its pieces spell, so a pre-token is looked up as it stands, without
// spelling it in the byte alphabet first.
class ByteStringTable {
 public:
  void build(const std::vector<std::pair<std::string, int32_t>>& entries) {
    size_t cap = 16;
    while (cap < entries.size() * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (const auto& [key, id] : entries) {
      size_t h = hash(key) & mask_;
      while (slots_[h].id >= 0) h = (h + 1) & mask_;
      slots_[h] = {static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id};
      arena_ += key;
    }
    count_ = entries.size();
  }
  bool empty() const { return count_ == 0; }
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    for (size_t h = hash(key) & mask_;; h = (h + 1) & mask_) {
      const Slot& e = slots_[h];  // one cache line per probe, then the key's bytes
      if (e.id < 0) return -1;
      if (e.len == key.size() && std::memcmp(arena_.data() + e.off, key.data(), key.size()) == 0) return e.id;
    }
  }

 private:
  struct Slot {
    uint32_t off = 0, len = 0;
    int32_t id = -1;  // -1: empty
  };
  static size_t hash(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    }
    uint64_t w = 0;
    for (size_t k = i; k < s.size(); ++k) w = (w << 8) | static_cast<uint8_t>(s[k]);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    return static_cast<size_t>(h ^ (h >> 31));
  }
  std::string arena_;
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
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
  AddedTrie added_trie;                            // added contents → their index in added
  std::vector<NormStep> normalizer;
  std::vector<PreStep> pre_tokenizer;
  std::vector<DecStep> decoder;
  std::vector<int32_t> template_prefix, template_suffix;  // post_processor ids around a single sequence
  bool byte_level = false;       // pieces are spelled in the GPT-2 byte alphabet
  std::array<int32_t, 256> byte_ids{};  // byte-level: byte → id of its one-character piece, or -1
  std::array<std::array<char, 2>, 256> byte_chars{};
  ByteStringTable raw_vocab;  // byte-level: the vocabulary by the bytes each piece spells  // byte → its byte-alphabet character in UTF-8 (1-2 bytes; [1] 0 for 1)
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
// ignore_merges: the id of the piece (spelled in the byte alphabet for byte-level files) when the vocabulary has
// it whole, else -1.
int32_t whole_piece_id(const TokenizerSpec& s, std::string_view piece, std::string& mapped);
// Appends the BPE ids of one pre-token.
void bpe_piece(const TokenizerSpec& s, std::string_view piece, std::vector<int32_t>& out,
               std::vector<Symbol>& symbols, std::string& mapped);

std::string run_decoder(const TokenizerSpec& s, std::vector<std::string> tokens);
std::string piece_bytes(const TokenizerSpec& s, int32_t id);

}  // namespace tritter::hf
