// ICU (libicu) answers the category and normalization questions: it is the library of this field, its tables
// follow the same Unicode version as the JavaScript and Rust references, and it spares us generated tables.
#include "text/unicode.h"

#include <cstring>

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <array>

#include "core/error.h"

namespace tritter::unicode {


void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// The end of the valid UTF-8 run that starts at s[i]: ASCII 32, then 8 bytes at a time (source code is mostly
// ASCII: curation validates every file), other sequences decoded.
size_t valid_run_end(std::string_view s, size_t i) {
  while (i < s.size()) {
    if (i + 32 <= s.size()) {
      uint64_t w[4];
      std::memcpy(w, s.data() + i, 32);
      if (((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ULL) == 0) {
        i += 32;
        continue;
      }
    }
    if (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t j = i;
    if (decode_utf8(s, j) == kReplacement && !(j - i == 3 && s.substr(i, 3) == "\xEF\xBF\xBD")) return i;
    i = j;
  }
  return i;
}

}  // namespace

bool is_valid_utf8(std::string_view s) { return valid_run_end(s, 0) == s.size(); }

std::string sanitize_utf8(std::string_view s) {
  size_t end = valid_run_end(s, 0);
  if (end == s.size()) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t start = 0;
  while (end < s.size()) {  // valid runs copied whole; each invalid sequence (its maximal subpart) → U+FFFD
    out.append(s.substr(start, end - start));
    decode_utf8(s, end);
    append_utf8(out, kReplacement);
    start = end;
    end = valid_run_end(s, end);
  }
  out.append(s.substr(start, end - start));
  return out;
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & U_GC_L_MASK) != 0;
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & U_GC_N_MASK) != 0;
}

bool is_space(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::string normalize(std::string_view utf8, NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::nfc: n = icu::Normalizer2::getNFCInstance(status); break;
    case NormalForm::nfd: n = icu::Normalizer2::getNFDInstance(status); break;
    case NormalForm::nfkc: n = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalForm::nfkd: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status)) throw_error("unicode normalizer: ICU failed to load: ", u_errorName(status));
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
  if (n->isNormalized(in, status) && U_SUCCESS(status)) return std::string(utf8);
  status = U_ZERO_ERROR;
  const icu::UnicodeString out = n->normalize(in, status);
  if (U_FAILURE(status)) throw_error("unicode normalizer: ", u_errorName(status));
  std::string result;
  out.toUTF8String(result);
  return result;
}

namespace {
struct ByteAlphabet {
  std::array<char32_t, 256> to_cp{};
  ByteAlphabet() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? static_cast<char32_t>(b) : next++;
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;  // immutable after construction: a constant table, not state
  return a;
}
}  // namespace

char32_t byte_to_unicode(uint8_t b) { return alphabet().to_cp[b]; }

int unicode_to_byte(char32_t cp) {
  if (cp < 256) {
    const bool printable = (cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF);
    return printable ? static_cast<int>(cp) : -1;
  }
  if (cp < 256 + 68) {
    for (int b = 0; b < 256; ++b) if (alphabet().to_cp[b] == cp) return b;
  }
  return -1;
}

}  // namespace tritter::unicode
