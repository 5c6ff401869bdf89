// The byte tokenizer (original.md §2.4, legacy byte scheme): ids 0-7 are specials (<pad> <bos> <eos> <unk> <text>
// <code> <image> <audio>), byte b is id b + 8, so the vocabulary needs 264 ids. Lossless for every byte string,
// invalid UTF-8 included; encoding plain text never produces a special. Non-goals: BPE, the original's lossy
// tiktoken remapping and its AST code path (docs/design.md says why).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tritter {

inline constexpr int32_t kTokenPad = 0;
inline constexpr int32_t kTokenBos = 1;
inline constexpr int32_t kTokenEos = 2;
inline constexpr int32_t kTokenUnk = 3;
inline constexpr int32_t kTokenText = 4;
inline constexpr int32_t kTokenCode = 5;
inline constexpr int32_t kTokenImage = 6;
inline constexpr int32_t kTokenAudio = 7;
inline constexpr int32_t kTokenSpecialCount = 8;
inline constexpr int32_t kTokenByteOffset = 8;   // byte b → b + 8
inline constexpr int32_t kByteVocabSize = 264;   // the smallest vocab_size that holds every byte

struct EncodeOptions {
  bool bos = true;            // prepend <bos>
  int32_t modality = -1;      // kTokenText / kTokenCode after <bos>, or -1 for none
  bool eos = false;           // append <eos>
};

// ids (n + specials) ← bytes (n): [<bos>] [modality] b0+8 ... [<eos>].
std::vector<int32_t> tokenize(std::string_view bytes, const EncodeOptions& options = {});
// The bytes of ids in [8, 264); specials and ids ≥ 264 (a larger model vocabulary) give nothing, or their names
// ("<eos>", "<id 300>") when show_special. Throws Error on a negative id.
std::string detokenize(std::span<const int32_t> ids, bool show_special = false);
// One token's bytes (streaming): "" for specials and ids ≥ 264.
std::string token_bytes(int32_t id);
// "<bos>" for 0..7, "<id N>" otherwise ("" for byte tokens is never returned: they print as the byte).
std::string token_name(int32_t id);
inline bool token_is_special(int32_t id) { return id >= 0 && id < kTokenSpecialCount; }

}  // namespace tritter
