// Each alternative of a pattern is one branch below, tried in the regex's order; a greedy quantifier with a
// lookahead (\s+(?!\S)) or a trailing class (\s*[\r\n]+) is resolved by the position its backtracking would stop at.
#include "text/pre_tokenizer.h"

#include <cstdint>
#include <memory>

#include "text/unicode.h"

namespace tritter {

namespace {

constexpr uint8_t kLetter = 1, kNumber = 2, kSpace = 4, kNewline = 8;

// Left uninitialized on allocation (every entry is written before it is read): zeroing them cost more than the split.
struct Text {
  std::unique_ptr<char32_t[]> cp;
  std::unique_ptr<uint8_t[]> cls;
  std::unique_ptr<uint32_t[]> off;  // byte offset of each code point; off[n] = size
  size_t n = 0;
};

uint8_t class_of(char32_t c) {
  if (unicode::is_letter(c)) return kLetter;
  if (unicode::is_number(c)) return kNumber;
  if (unicode::is_space(c)) return c == '\r' || c == '\n' ? (kSpace | kNewline) : kSpace;
  return 0;
}

// The classes of the Basic Multilingual Plane (64 KB, built once): ICU's category lookup per code point cost more
// than the rest of the split for CJK and other non-Latin text.
struct BmpClasses {
  std::unique_ptr<uint8_t[]> cls{new uint8_t[0x10000]};
  BmpClasses() { for (char32_t c = 0; c < 0x10000; ++c) cls[c] = class_of(c); }
};

void classify(std::string_view s, Text& t) {
  static const BmpClasses bmp;  // a constant table, built once
  t.cp.reset(new char32_t[s.size()]), t.cls.reset(new uint8_t[s.size()]), t.off.reset(new uint32_t[s.size() + 1]);
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    t.off[n] = static_cast<uint32_t>(i);
    const uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      t.cp[n] = b, t.cls[n] = bmp.cls[b], ++i;
      continue;
    }
    const char32_t c = unicode::decode_utf8(s, i);
    t.cp[n] = c, t.cls[n] = c < 0x10000 ? bmp.cls[c] : class_of(c);
  }
  t.n = n;
  t.off[n] = static_cast<uint32_t>(s.size());
}

bool is_punct(uint8_t k) { return (k & (kLetter | kNumber | kSpace)) == 0; }

char32_t lower_ascii(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// Length in code points of a contraction at i ('s 't 're 've 'm 'll 'd), or 0.
size_t contraction(const Text& t, size_t i, bool ignore_case) {
  if (t.cp[i] != '\'' || i + 1 >= t.n) return 0;
  const auto at = [&](size_t k) { return k < t.n ? (ignore_case ? lower_ascii(t.cp[k]) : t.cp[k]) : 0; };
  const char32_t a = at(i + 1), b = at(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

size_t run(const Text& t, size_t i, uint8_t mask) {
  while (i < t.n && (t.cls[i] & mask)) ++i;
  return i;
}
size_t run_punct(const Text& t, size_t i) {
  while (i < t.n && is_punct(t.cls[i])) ++i;
  return i;
}

// The whitespace alternatives shared by both families: \s+(?!\S) then \s+. Returns the end.
size_t space_tail(const Text& t, size_t i) {
  const size_t k = run(t, i, kSpace);
  if (k == t.n || k - 1 == i) return k;
  return k - 1;
}

size_t match_gpt2(const Text& t, size_t i) {
  if (size_t c = contraction(t, i, false)) return i + c;
  const size_t s = (t.cp[i] == ' ' && i + 1 < t.n) ? i + 1 : i;  // the optional leading space
  for (uint8_t k : {kLetter, kNumber}) {
    if (t.cls[s] & k) return run(t, s, k);
    if (s != i && (t.cls[i] & k)) return run(t, i, k);
  }
  if (is_punct(t.cls[s])) return run_punct(t, s);
  if (is_punct(t.cls[i])) return run_punct(t, i);
  return space_tail(t, i);
}

size_t match_llama3(const Text& t, size_t i, size_t max_digits) {
  if (size_t c = contraction(t, i, true)) return i + c;
  const uint8_t k = t.cls[i];
  if (k & kLetter) return run(t, i, kLetter);  // [^\r\n\p{L}\p{N}]? empty, \p{L}+
  if (!(k & (kNewline | kNumber)) && i + 1 < t.n && (t.cls[i + 1] & kLetter)) return run(t, i + 1, kLetter);
  if (k & kNumber) {
    size_t e = i;
    while (e < t.n && e - i < max_digits && (t.cls[e] & kNumber)) ++e;
    return e;
  }
  const size_t s = (t.cp[i] == ' ' && i + 1 < t.n && is_punct(t.cls[i + 1])) ? i + 1 : i;
  if (is_punct(t.cls[s])) return run(t, run_punct(t, s), kNewline);  // ?[^\s\p{L}\p{N}]+[\r\n]*
  // k is whitespace here. \s*[\r\n]+ ends after the run's last newline.
  const size_t e = run(t, i, kSpace);
  for (size_t p = e; p > i; --p) {
    if (t.cls[p - 1] & kNewline) return p;
  }
  return space_tail(t, i);
}

}  // namespace

std::optional<SplitPattern> recognize_split_pattern(std::string_view regex) {
  if (regex == R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)") return SplitPattern::gpt2;
  if (regex == R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)") {
    return SplitPattern::llama3;
  }
  if (regex == R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)") {
    return SplitPattern::qwen2;
  }
  return std::nullopt;
}

void split_pieces(std::string_view utf8, SplitPattern pattern, std::vector<std::string_view>& out) {
  Text t;
  classify(utf8, t);
  for (size_t i = 0; i < t.n;) {
    size_t e = pattern == SplitPattern::gpt2     ? match_gpt2(t, i)
               : pattern == SplitPattern::llama3 ? match_llama3(t, i, 3)
                                                 : match_llama3(t, i, 1);
    if (e <= i) e = i + 1;  // unreachable for these patterns; keeps the loop finite
    out.push_back(utf8.substr(t.off[i], t.off[e] - t.off[i]));
    i = e;
  }
}

}  // namespace tritter
