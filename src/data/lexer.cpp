// Python and Rust lexers for masking (see lexer.h). Unterminated literals end at end of line (single-quoted
// Python) or end of file, so a malformed file still lexes in linear time.
#include "data/lexer.h"

#include <algorithm>
#include <cstring>

#include "kernels/text_scan.h"

namespace tritter::data {
namespace {

bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         (static_cast<unsigned char>(c) >= 0x80);
}

// Spaces over [begin, end) of `code` except its newlines (memset between the newlines memchr finds).
void mask(std::string& code, size_t begin, size_t end) {
  end = std::min(end, code.size());
  char* d = code.data();
  while (begin < end) {
    const void* nl = std::memchr(d + begin, '\n', end - begin);
    const size_t stop = nl ? size_t(static_cast<const char*>(nl) - d) : end;
    std::memset(d + begin, ' ', stop - begin);
    begin = stop + 1;
  }
}

// Python string prefixes: any combination of r, b, u, f (case-insensitive), at most two letters.
bool python_prefix(std::string_view p) {
  if (p.size() > 2) return false;
  for (char c : p) {
    const char l = char(c | 0x20);
    if (l != 'r' && l != 'b' && l != 'u' && l != 'f') return false;
  }
  return true;
}

}  // namespace

const StringLiteral* LexedSource::string_starting_at(size_t pos) const {
  auto it = std::lower_bound(strings.begin(), strings.end(), pos,
                             [](const StringLiteral& s, size_t p) { return s.whole.begin < p; });
  return it != strings.end() && it->whole.begin == pos ? &*it : nullptr;
}

bool LexedSource::in_comment_or_string(size_t pos) const {
  auto inside = [pos](const auto& v, auto span_of) {
    auto it = std::upper_bound(v.begin(), v.end(), pos, [&](size_t p, const auto& s) { return p < span_of(s).begin; });
    if (it == v.begin()) return false;
    --it;
    return pos < span_of(*it).end;
  };
  return inside(strings, [](const StringLiteral& s) { return s.whole; }) ||
         inside(comments, [](const Span& s) { return s; });
}

LexedSource lex_python(std::string_view src) {
  LexedSource out;
  out.code.assign(src);
  const size_t n = src.size();
  size_t i = 0;
  while ((i = find_first_of3(src, i, '#', '"', '\'')) < n) {
    const char c = src[i];
    if (c == '#') {
      size_t e = src.find('\n', i);
      if (e == std::string_view::npos) e = n;
      out.comments.push_back({i, e});
      mask(out.code, i, e);
      i = e;
      continue;
    }
    if (c == '"' || c == '\'') {
      // Prefix letters directly before the quote, not part of a longer identifier.
      size_t p = i;
      while (p > 0 && is_ident(src[p - 1]) && i - p < 3) --p;
      if (p < i && (!python_prefix(src.substr(p, i - p)) || (p > 0 && is_ident(src[p - 1])))) p = i;
      std::string prefix(src.substr(p, i - p));
      for (char& ch : prefix) ch = char(ch | 0x20);
      const bool triple = i + 2 < n && src[i + 1] == c && src[i + 2] == c;
      const size_t q = triple ? 3 : 1;
      size_t j = i + q;
      size_t body_end = n, end = n;
      while ((j = find_first_of3(src, j, '\\', c, '\n')) < n) {
        if (src[j] == '\\') {
          j += 2;
          continue;
        }
        if (!triple && src[j] == '\n') {
          body_end = end = j;
          break;
        }
        if (src[j] == c && (!triple || (j + 2 < n && src[j + 1] == c && src[j + 2] == c))) {
          body_end = j;
          end = j + q;
          break;
        }
        ++j;
      }
      if (j >= n) body_end = end = n;
      out.strings.push_back({{p, end}, {i + q, body_end}, prefix});
      mask(out.code, i + q, body_end);
      i = end;
      continue;
    }
    ++i;
  }
  return out;
}

LexedSource lex_rust(std::string_view src) {
  LexedSource out;
  out.code.assign(src);
  const size_t n = src.size();
  size_t i = 0;
  while (i < n) {
    const char c = src[i];
    if (c == '/' && i + 1 < n && src[i + 1] == '/') {
      size_t e = src.find('\n', i);
      if (e == std::string_view::npos) e = n;
      out.comments.push_back({i, e});
      mask(out.code, i, e);
      i = e;
      continue;
    }
    if (c == '/' && i + 1 < n && src[i + 1] == '*') {  // nested block comments
      int depth = 0;
      size_t j = i;
      while (j < n) {
        if (src[j] == '/' && j + 1 < n && src[j + 1] == '*') {
          ++depth;
          j += 2;
          continue;
        }
        if (src[j] == '*' && j + 1 < n && src[j + 1] == '/') {
          j += 2;
          if (--depth == 0) break;
          continue;
        }
        ++j;
      }
      j = std::min(j, n);
      out.comments.push_back({i, j});
      mask(out.code, i, j);
      i = j;
      continue;
    }
    // Raw strings: r"..", r#".."#, br#".."#.
    if ((c == 'r' || (c == 'b' && i + 1 < n && src[i + 1] == 'r')) && (i == 0 || !is_ident(src[i - 1]))) {
      size_t j = i + (c == 'b' ? 2 : 1);
      size_t hashes = 0;
      while (j < n && src[j] == '#') {
        ++hashes;
        ++j;
      }
      if (j < n && src[j] == '"') {
        std::string closing(hashes + 1, '#');
        closing[0] = '"';
        size_t e = src.find(closing, j + 1);
        const size_t body_end = e == std::string_view::npos ? n : e;
        const size_t end = e == std::string_view::npos ? n : e + closing.size();
        out.strings.push_back({{i, end}, {j + 1, body_end}, std::string(src.substr(i, j - i))});
        mask(out.code, j + 1, body_end);
        i = end;
        continue;
      }
    }
    if (c == '"') {
      size_t p = (i > 0 && src[i - 1] == 'b' && (i < 2 || !is_ident(src[i - 2]))) ? i - 1 : i;
      size_t j = i + 1;
      while (j < n && src[j] != '"') j += src[j] == '\\' ? 2 : 1;
      const size_t body_end = std::min(j, n), end = std::min(j + 1, n);
      out.strings.push_back({{p, end}, {i + 1, body_end}, std::string(src.substr(p, i - p))});
      mask(out.code, i + 1, body_end);
      i = end;
      continue;
    }
    if (c == '\'') {  // char literal or lifetime
      size_t e = std::string_view::npos;
      if (i + 1 < n && src[i + 1] == '\\') {
        e = src.find('\'', i + 2);
        if (e != std::string_view::npos && e - i > 12) e = std::string_view::npos;
      } else if (i + 1 < n) {
        const unsigned char b = static_cast<unsigned char>(src[i + 1]);
        const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        if (i + 1 + len < n && src[i + 1 + len] == '\'') e = i + 1 + len;
      }
      if (e != std::string_view::npos) {
        out.strings.push_back({{i, e + 1}, {i + 1, e}, "'"});
        mask(out.code, i + 1, e);
        i = e + 1;
        continue;
      }
    }
    ++i;
  }
  return out;
}

}  // namespace tritter::data
