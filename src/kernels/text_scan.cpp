// Byte scans for the curation stages (see text_scan.h).
#include "kernels/text_scan.h"

#include <algorithm>
#include <cstring>
#include <array>
#include <cstdint>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace tritter {

size_t find_first_of3(std::string_view s, size_t i, char a, char b, char c) {
  const size_t n = s.size();
  const char* d = s.data();
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b), vc = _mm_set1_epi8(c);
  for (; i + 16 <= n; i += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)), _mm_cmpeq_epi8(x, vc));
    if (const unsigned m = unsigned(_mm_movemask_epi8(hit))) return i + size_t(__builtin_ctz(m));
  }
#endif
  for (; i < n; ++i)
    if (d[i] == a || d[i] == b || d[i] == c) return i;
  return n;
}

size_t find_json_special(std::string_view s, size_t i) {
  const size_t n = s.size();
  const char* d = s.data();
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), top = _mm_set1_epi8(0x1F);
  for (; i + 16 <= n; i += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(x, top), top);  // x <= 0x1F, unsigned
    const __m128i hit = _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
    if (const unsigned m = unsigned(_mm_movemask_epi8(hit))) return i + size_t(__builtin_ctz(m));
  }
#endif
  for (; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(d[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
  }
  return n;
}

size_t find_bytes(std::string_view hay, std::string_view needle) {
  const size_t k = needle.size(), n = hay.size();
  if (k == 0) return 0;
  if (k > n) return std::string_view::npos;
  size_t i = 0;
#if defined(__SSE2__)
  if (k >= 2) {
    const __m128i first = _mm_set1_epi8(needle[0]), last = _mm_set1_epi8(needle[k - 1]);
    for (; i + k - 1 + 16 <= n; i += 16) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay.data() + i));
      const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hay.data() + i + k - 1));
      for (unsigned m = unsigned(_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(x, first), _mm_cmpeq_epi8(y, last))));
           m; m &= m - 1) {
        const size_t at = i + size_t(__builtin_ctz(m));
        if (std::memcmp(hay.data() + at + 1, needle.data() + 1, k - 2) == 0) return at;
      }
    }
  }
#endif
  const size_t r = hay.substr(i).find(needle);
  return r == std::string_view::npos ? r : i + r;
}

LineStats line_stats(std::string_view text) {
  LineStats st;
  const char* d = text.data();
  const size_t n = text.size();
  size_t newlines = 0, line_start = 0, i = 0;
  auto newline_at = [&](size_t j) {
    st.max_line = std::max(st.max_line, j - line_start);
    line_start = j + 1;
    ++newlines;
  };
#if defined(__SSE2__)
  const __m128i nl = _mm_set1_epi8('\n'), case_bit = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'),
                zero = _mm_set1_epi8('0'), z25 = _mm_set1_epi8(25), z9 = _mm_set1_epi8(9), nothing = _mm_setzero_si128();
  while (i + 16 <= n) {
    __m128i acc = _mm_setzero_si128();  // per-byte counts, summed before they can wrap (255 steps)
    for (int k = 0; k < 255 && i + 16 <= n; ++k, i += 16) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
      for (unsigned m = unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(x, nl))); m; m &= m - 1)
        newline_at(i + size_t(__builtin_ctz(m)));
      // (x | 0x20) - 'a' <= 25 unsigned: a letter; x - '0' <= 9: a digit (saturating subtract, compare with 0).
      const __m128i letter =
          _mm_cmpeq_epi8(_mm_subs_epu8(_mm_sub_epi8(_mm_or_si128(x, case_bit), a), z25), nothing);
      const __m128i digit = _mm_cmpeq_epi8(_mm_subs_epu8(_mm_sub_epi8(x, zero), z9), nothing);
      acc = _mm_sub_epi8(acc, _mm_or_si128(letter, digit));  // a hit is -1
    }
    const __m128i sums = _mm_sad_epu8(acc, nothing);
    st.alnum += size_t(_mm_cvtsi128_si32(sums)) + size_t(_mm_cvtsi128_si32(_mm_srli_si128(sums, 8)));
  }
#endif
  for (; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(d[i]);
    if (c == '\n') newline_at(i);
    st.alnum += (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  }
  if (line_start < n) st.max_line = std::max(st.max_line, n - line_start);
  st.lines = newlines + (line_start < n ? 1 : 0);
  return st;
}

namespace {
constexpr bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// From byte `i` on, with prev_space telling whether the byte before i was whitespace (true at the start: a leading
// run is dropped); a trailing run leaves one space, removed at the end.
size_t fold_tail(std::string_view s, size_t i, bool prev_space, char* out, char* o) {
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (is_space(static_cast<unsigned char>(c))) {
      if (!prev_space) *o++ = ' ';
      prev_space = true;
    } else {
      *o++ = c;
      prev_space = false;
    }
  }
  if (o != out && prev_space) --o;
  return size_t(o - out);
}

#if defined(__SSE2__)
// Per 8-bit keep mask: the kept bytes' indices in order, then 0x80 (pshufb writes a zero).
constexpr auto kCompact = [] {
  std::array<uint64_t, 256> t{};
  for (unsigned m = 0; m < 256; ++m) {
    uint64_t v = 0;
    int k = 0;
    for (unsigned b = 0; b < 8; ++b)
      if (m >> b & 1) v |= uint64_t(b) << (8 * k++);
    for (; k < 8; ++k) v |= uint64_t(0x80) << (8 * k);
    t[m] = v;
  }
  return t;
}();

__attribute__((target("ssse3,popcnt"))) size_t fold_ssse3(std::string_view s, char* out) {
  const char* d = s.data();
  const size_t n = s.size();
  char* o = out;
  unsigned prev = 1;  // the byte before is whitespace: a leading run is dropped
  const __m128i space = _mm_set1_epi8(' '), low = _mm_set1_epi8(char(128 - '\t')), top = _mm_set1_epi8(char(0x80 + 5));
  size_t i = 0;
  // o <= i always: a whole-block store (o + 16 <= i + 16 <= n) and the two 8-byte half stores stay inside out.
  for (; i + 16 <= n; i += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    // ' ', or c - '\t' < 5 unsigned (after adding 0x80, a signed compare)
    const __m128i ws = _mm_or_si128(_mm_cmpeq_epi8(x, space), _mm_cmplt_epi8(_mm_add_epi8(x, low), top));
    const unsigned w = unsigned(_mm_movemask_epi8(ws));
    const unsigned keep = (~w | (w & ~(w << 1 | prev))) & 0xFFFFu;  // non-space bytes and the first of each run
    prev = w >> 15;
    const __m128i y = _mm_or_si128(_mm_and_si128(ws, space), _mm_andnot_si128(ws, x));
    if (keep == 0xFFFFu) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), y);
      o += 16;
      continue;
    }
    // Each half compacts into 8 bytes, stored 8 wide: the second half starts at most 8 bytes past i, so a 16-byte
    // store there would run past the end of out on the last block.
    const unsigned lo = keep & 0xFF, hi = keep >> 8;
    _mm_storel_epi64(reinterpret_cast<__m128i*>(o),
                     _mm_shuffle_epi8(y, _mm_cvtsi64_si128(static_cast<long long>(kCompact[lo]))));
    o += __builtin_popcount(lo);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(o), _mm_shuffle_epi8(_mm_srli_si128(y, 8),
                                                                     _mm_cvtsi64_si128(static_cast<long long>(kCompact[hi]))));
    o += __builtin_popcount(hi);
  }
  return fold_tail(s, i, prev != 0, out, o);
}
#endif
}  // namespace

size_t fold_whitespace_into(std::string_view s, char* out) {
#if defined(__SSE2__)
  if (__builtin_cpu_supports("ssse3") && __builtin_cpu_supports("popcnt")) return fold_ssse3(s, out);
#endif
  return fold_tail(s, 0, true, out, out);
}

namespace ref {
size_t fold_whitespace_into(std::string_view s, char* out) {
  char* o = out;
  bool pending_space = false;
  for (const char c : s) {
    if (is_space(static_cast<unsigned char>(c))) {
      pending_space = o != out;
      continue;
    }
    if (pending_space) *o++ = ' ';
    pending_space = false;
    *o++ = c;
  }
  return size_t(o - out);
}
}  // namespace ref

namespace {
// The escape of one special byte (c < 0x20, '"' or '\\') at o; returns the bytes written.
inline size_t escape_byte(unsigned char c, char* o) {
  static constexpr char kHex[] = "0123456789abcdef";
  char second = 0;
  switch (c) {
    case '"': second = '"'; break;
    case '\\': second = '\\'; break;
    case '\n': second = 'n'; break;
    case '\t': second = 't'; break;
    case '\r': second = 'r'; break;
    case '\b': second = 'b'; break;
    case '\f': second = 'f'; break;
    default: break;
  }
  o[0] = '\\';
  if (second) {
    o[1] = second;
    return 2;
  }
  o[1] = 'u', o[2] = '0', o[3] = '0', o[4] = kHex[c >> 4], o[5] = kHex[c & 15];
  return 6;
}
inline bool json_special(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }
}  // namespace

size_t escape_json_into(std::string_view s, char* out) {
  const char* d = s.data();
  const size_t n = s.size();
  char* o = out;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), top = _mm_set1_epi8(0x1F);
  // Each step stores 16 bytes and keeps those before the first special byte: o stays within 6 * i + 16.
  while (i + 16 <= n) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i));
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(x, top), top);  // x <= 0x1F, unsigned
    const __m128i hit = _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
    const unsigned m = unsigned(_mm_movemask_epi8(hit));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), x);
    if (m == 0) {
      o += 16, i += 16;
      continue;
    }
    const unsigned k = unsigned(__builtin_ctz(m));
    o += k, i += k;
    o += escape_byte(static_cast<unsigned char>(d[i]), o);
    ++i;
  }
#endif
  for (; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(d[i]);
    if (json_special(c))
      o += escape_byte(c, o);
    else
      *o++ = char(c);
  }
  return size_t(o - out);
}

namespace ref {
size_t escape_json_into(std::string_view s, char* out) {
  char* o = out;
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (json_special(c))
      o += escape_byte(c, o);
    else
      *o++ = ch;
  }
  return size_t(o - out);
}
}  // namespace ref

}  // namespace tritter
