// Unicode helpers the tokenizers share: UTF-8 decoding with U+FFFD replacement (the WHATWG "maximal subpart"
// rule, so invalid bytes become what a JavaScript or Python caller's decode would give), code point categories
// over ICU (letters \p{L}, numbers \p{N}, and JavaScript's \s set), normalization forms, and GPT-2's byte-level
// alphabet (each byte ↔ one printable code point). Non-goals: grapheme clusters, case folding beyond ASCII.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace tritter::unicode {

inline constexpr char32_t kReplacement = 0xFFFD;

// Decodes one code point at s[i], advancing i by the bytes it took (≥ 1). An invalid or truncated sequence yields
// U+FFFD and advances past its maximal valid prefix only (WHATWG TextDecoder / Python errors="replace").
// Inline: the pre-tokenizer and the UTF-8 check call it once per code point.
inline char32_t decode_utf8(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);
// s with every invalid sequence replaced by U+FFFD (returns s unchanged, without copying work, when valid).
std::string sanitize_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);

bool is_letter(char32_t cp);   // General_Category L*
bool is_number(char32_t cp);   // General_Category N*
bool is_space(char32_t cp);    // JavaScript's \s: WhiteSpace + LineTerminator (U+FEFF included, U+0085 not)

enum class NormalForm { nfc, nfd, nfkc, nfkd };
std::string normalize(std::string_view utf8, NormalForm form);

// GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order.
char32_t byte_to_unicode(uint8_t b);
// The byte a byte-level code point stands for, or -1.
int unicode_to_byte(char32_t cp);

inline char32_t decode_utf8(std::string_view s, size_t& i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int need = 0;
  char32_t cp = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // the valid range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    ++i;
    return kReplacement;
  }
  size_t k = i + 1;
  for (int n = 0; n < need; ++n, ++k) {
    if (k >= s.size()) {
      i = k;
      return kReplacement;
    }
    const uint8_t b = byte(k);
    if (b < (n == 0 ? lo : 0x80) || b > (n == 0 ? hi : 0xBF)) {
      i = k;  // the offending byte starts the next sequence
      return kReplacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i = k;
  return cp;
}

}  // namespace tritter::unicode
