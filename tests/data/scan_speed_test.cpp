// The byte scans and hand-written matchers that replaced per-stage passes in curation (kernels/text_scan.h, the
// lexer's skip, the label needle pass, match_def, the RE2 window prechecks) must give the answers of the plain
// code they replaced: checked against scalar references on random text built from code-like bytes, and on the
// edge cases the fast paths special-case (block ends, needles at the end, multi-line signatures).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "data/labels.h"
#include "data/lexer.h"
#include "kernels/text_scan.h"
#include <nlohmann/json.hpp>

namespace tritter::data {
namespace {

std::string random_code(std::mt19937& g, size_t n) {
  static constexpr std::string_view kAlphabet = "abcdefxyzABC_019 \t\n\"'#\\()[]{}=:.,ntriopse\x80\xc3";
  std::string s(n, ' ');
  for (auto& c : s) c = kAlphabet[g() % kAlphabet.size()];
  return s;
}

TEST(TextScan, FindFirstOf3MatchesScalar) {
  std::mt19937 g(7);
  for (int t = 0; t < 300; ++t) {
    const std::string s = random_code(g, g() % 90);
    for (size_t from = 0; from <= s.size(); from += 1 + g() % 5) {
      size_t want = s.find_first_of(std::string("#\"'"), from);
      if (want == std::string::npos) want = s.size();
      EXPECT_EQ(find_first_of3(s, from, '#', '"', '\''), want) << s << " from " << from;
    }
  }
  EXPECT_EQ(find_first_of3("", 0, 'a', 'b', 'c'), 0u);
  EXPECT_EQ(find_first_of3(std::string(40, 'x') + "#", 0, '#', '"', '\''), 40u);  // past two SSE2 blocks
  EXPECT_EQ(find_first_of3("x#", 5, '#', '"', '\''), 2u);                         // from beyond the end
}

TEST(TextScan, FoldWhitespaceMatchesByteLoop) {
  std::mt19937 g(13);
  // Runs of every whitespace byte, at block edges, leading, trailing, whole blocks of them, and none at all.
  static constexpr std::string_view kSpaces = " \t\n\v\f\r", kOther = "ab_(\x08\x0e\x1f!\x80";
  for (int t = 0; t < 2000; ++t) {
    const size_t n = g() % 100, mode = g() % 4;  // mode: the share of whitespace, 1/8 .. 7/8
    std::string s(n, ' ');
    for (auto& c : s) c = g() % 8 < 1 + 2 * mode ? kSpaces[g() % kSpaces.size()] : kOther[g() % kOther.size()];
    std::string got(s.size(), '\0'), want(s.size(), '\0');
    got.resize(fold_whitespace_into(s, got.data()));
    want.resize(ref::fold_whitespace_into(s, want.data()));
    EXPECT_EQ(got, want) << "n=" << n << " t=" << t;
  }
  for (const std::string& s : {std::string(40, ' '), std::string(40, 'x'), std::string(16, ' ') + "x" + std::string(31, '\n'),
                               std::string(15, 'x') + "\t\t" + std::string(15, 'y'), std::string()}) {
    std::string got(s.size(), '\0'), want(s.size(), '\0');
    got.resize(fold_whitespace_into(s, got.data()));
    want.resize(ref::fold_whitespace_into(s, want.data()));
    EXPECT_EQ(got, want) << s.size();
  }
  std::string out(9, '\0');
  out.resize(fold_whitespace_into("\n a \t\r b ", out.data()));
  EXPECT_EQ(out, "a b");
}

TEST(TextScan, EscapeJsonMatchesByteLoopAndNlohmann) {
  std::mt19937 g(17);
  for (int t = 0; t < 2000; ++t) {
    const size_t n = g() % 80;
    std::string s(n, 'a');
    // Mostly plain bytes (a run of 16 without a special is stored whole), else any byte below 0x20, '"', '\\'.
    for (auto& c : s) {
      const unsigned r = g() % 16;
      c = r < 10 ? char('a' + g() % 26) : r < 12 ? char(g() % 0x20) : r == 12 ? '"' : r == 13 ? '\\' : char(0x80 + g() % 64);
    }
    std::string got(6 * n + 16, '\0'), want(6 * n + 16, '\0');
    got.resize(escape_json_into(s, got.data()));
    want.resize(ref::escape_json_into(s, want.data()));
    EXPECT_EQ(got, want) << "t=" << t;
  }
  std::string all;
  for (int c = 1; c < 0x20; ++c) all += char(c);
  all += "\"\\/plain text past sixteen bytes\n";
  std::string got(6 * all.size() + 16, '\0');
  got.resize(escape_json_into(all, got.data()));
  const std::string dumped = nlohmann::json(all).dump();
  EXPECT_EQ('"' + got + '"', dumped);
}

TEST(TextScan, FindBytesMatchesStringViewFind) {
  std::mt19937 g(11);
  const char* needles[] = {"t", "tr", "triton", "ee", "\n#", "abcdefabcdef", "'\"", "is "};
  for (int t = 0; t < 400; ++t) {
    std::string s = random_code(g, g() % 120);
    const std::string_view n = needles[g() % std::size(needles)];
    if (g() % 3 == 0 && s.size() >= n.size()) s.replace(g() % (s.size() - n.size() + 1), n.size(), n);
    EXPECT_EQ(find_bytes(s, n), std::string_view(s).find(n)) << s << " / " << n;
  }
  EXPECT_EQ(find_bytes("abc", ""), 0u);
  EXPECT_EQ(find_bytes("ab", "abc"), std::string_view::npos);
  EXPECT_EQ(find_bytes(std::string(37, 'x') + "triton", "triton"), 37u);  // the last position of the text
}

TEST(TextScan, FindJsonSpecialMatchesScalar) {
  std::mt19937 g(19);
  for (int t = 0; t < 400; ++t) {
    std::string s = random_code(g, g() % 100);
    if (!s.empty() && g() % 2) s[g() % s.size()] = char(g() % 0x20);
    for (size_t from = 0; from <= s.size(); from += 1 + g() % 7) {
      size_t want = from;
      while (want < s.size() && !(static_cast<unsigned char>(s[want]) < 0x20 || s[want] == '"' || s[want] == '\\'))
        ++want;
      EXPECT_EQ(find_json_special(s, from), want);
    }
  }
  EXPECT_EQ(find_json_special(std::string(33, 'x') + "\x1f", 0), 33u);
  EXPECT_EQ(find_json_special("\x7f\x80\xff \x20", 0), 5u);  // DEL and high bytes need no escape
}

TEST(TextScan, LineStatsMatchesScalar) {
  std::mt19937 g(13);
  for (int t = 0; t < 300; ++t) {
    const std::string s = random_code(g, g() % 5000);
    size_t lines = 0, max_line = 0, alnum = 0;
    for (size_t p = 0; p < s.size();) {
      size_t e = s.find('\n', p);
      if (e == std::string::npos) e = s.size();
      max_line = std::max(max_line, e - p);
      ++lines;
      p = e + 1;
    }
    for (unsigned char c : s) alnum += std::isalnum(c) && c < 0x80;
    const LineStats st = line_stats(s);
    EXPECT_EQ(st.lines, lines);
    EXPECT_EQ(st.max_line, max_line);
    EXPECT_EQ(st.alnum, alnum);
  }
  EXPECT_EQ(line_stats("").lines, 0u);
  EXPECT_EQ(line_stats("\n").lines, 1u);
  EXPECT_EQ(line_stats("a\n\n").lines, 2u);
  EXPECT_EQ(line_stats(std::string(5000, 'z')).alnum, 5000u);  // more than 255 blocks of 16 in one run
}

// The Python lexer as it was before the SSE2 skip and memset masking (byte at a time): the reference.
bool ref_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         (static_cast<unsigned char>(c) >= 0x80);
}
bool ref_prefix(std::string_view p) {
  if (p.size() > 2) return false;
  for (char c : p) {
    const char l = char(c | 0x20);
    if (l != 'r' && l != 'b' && l != 'u' && l != 'f') return false;
  }
  return true;
}
void ref_mask(std::string& code, size_t begin, size_t end) {
  for (size_t i = begin; i < end && i < code.size(); ++i)
    if (code[i] != '\n') code[i] = ' ';
}
LexedSource ref_lex_python(std::string_view src) {
  LexedSource out;
  out.code.assign(src);
  const size_t n = src.size();
  size_t i = 0;
  while (i < n) {
    const char c = src[i];
    if (c == '#') {
      size_t e = src.find('\n', i);
      if (e == std::string_view::npos) e = n;
      out.comments.push_back({i, e});
      ref_mask(out.code, i, e);
      i = e;
      continue;
    }
    if (c == '"' || c == '\'') {
      size_t p = i;
      while (p > 0 && ref_ident(src[p - 1]) && i - p < 3) --p;
      if (p < i && (!ref_prefix(src.substr(p, i - p)) || (p > 0 && ref_ident(src[p - 1])))) p = i;
      std::string prefix(src.substr(p, i - p));
      for (char& ch : prefix) ch = char(ch | 0x20);
      const bool triple = i + 2 < n && src[i + 1] == c && src[i + 2] == c;
      const size_t q = triple ? 3 : 1;
      size_t j = i + q;
      size_t body_end = n, end = n;
      while (j < n) {
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
      ref_mask(out.code, i + q, body_end);
      i = end;
      continue;
    }
    ++i;
  }
  return out;
}

void expect_same_lex(const std::string& src) {
  const LexedSource got = lex_python(src), want = ref_lex_python(src);
  EXPECT_EQ(got.code, want.code) << src;
  ASSERT_EQ(got.strings.size(), want.strings.size()) << src;
  for (size_t k = 0; k < got.strings.size(); ++k) {
    EXPECT_EQ(got.strings[k].whole.begin, want.strings[k].whole.begin);
    EXPECT_EQ(got.strings[k].whole.end, want.strings[k].whole.end);
    EXPECT_EQ(got.strings[k].body.begin, want.strings[k].body.begin);
    EXPECT_EQ(got.strings[k].body.end, want.strings[k].body.end);
    EXPECT_EQ(got.strings[k].prefix, want.strings[k].prefix);
  }
  ASSERT_EQ(got.comments.size(), want.comments.size()) << src;
  for (size_t k = 0; k < got.comments.size(); ++k) {
    EXPECT_EQ(got.comments[k].begin, want.comments[k].begin);
    EXPECT_EQ(got.comments[k].end, want.comments[k].end);
  }
}

// The SSE2 skip and the memset masking give the masked copy, string and comment spans of the byte loop.
TEST(TextScan, PythonLexerMatchesByteLoop) {
  std::mt19937 g(17);
  for (int t = 0; t < 2000; ++t) expect_same_lex(random_code(g, g() % 200));
  expect_same_lex("x = 'a#b' # c \"d\"\ns = r\"\"\"multi\nline ' \\\"\"\" \"\"\" + f'{y}'\n" + std::string(40, ' ') +
                  "'open\n");
  expect_same_lex("s = 'ends with a backslash\\");
  expect_same_lex("'''never closed\n\n");
  const LexedSource lx = lex_python("a = rb'x' # t\n");
  EXPECT_EQ(lx.code, "a = rb' '    \n");
}

int count(const std::vector<Label>& labels, const std::string& rule) {
  int n = 0;
  for (const auto& l : labels) n += l.rule == rule;
  return n;
}

// match_def stands in for \bdef\s+(\w+)\s*\( : the forms it must accept and reject.
TEST(TextScan, HandWrittenDefMatcher) {
  EXPECT_EQ(count(label_python("def f(x=[]):\n    pass\n"), "py.mutable-default"), 1);
  EXPECT_EQ(count(label_python("def   g  (x={}):\n    pass\n"), "py.mutable-default"), 1);
  EXPECT_EQ(count(label_python("def\th(\n        x=list()):\n    pass\n"), "py.mutable-default"), 1);
  EXPECT_EQ(count(label_python("async def k(a, b=set()):\n    pass\n"), "py.mutable-default"), 1);
  EXPECT_EQ(count(label_python("undef f(x=[]):\n    pass\n"), "py.mutable-default"), 0);   // no \b before def
  EXPECT_EQ(count(label_python("define(x=[])\n"), "py.mutable-default"), 0);               // no space after def
  EXPECT_EQ(count(label_python("def (x=[]):\n    pass\n"), "py.mutable-default"), 0);     // no name
  EXPECT_EQ(count(label_python("def f(x=None, y=()):\n    pass\n"), "py.mutable-default"), 0);
  EXPECT_EQ(count(label_python("def f(x = [],\n      y = dict()):\n    pass\n"), "py.mutable-default"), 1);
  const auto l = label_python("class A:\n    def m(self, cache={}):\n        pass\n");
  ASSERT_EQ(count(l, "py.mutable-default"), 1);
  EXPECT_EQ(l[0].line, 2);
}

// The except rules skip windows without ':' after except / without pass or continue: the matches that remain.
TEST(TextScan, ExceptRulePrechecks) {
  EXPECT_EQ(count(label_python("try:\n    f()\nexcept :\n    g()\n"), "py.bare-except"), 1);
  EXPECT_EQ(count(label_python("try:\n    f()\nexcept\t:\n    pass\n"), "py.bare-except"), 1);
  EXPECT_EQ(count(label_python("try:\n    f()\nexcept\t:\n    pass\n"), "py.except-pass"), 1);
  EXPECT_EQ(count(label_python("try:\n    f()\nexcept Exception:\n    continue\n"), "py.except-pass"), 1);
  EXPECT_EQ(count(label_python("try:\n    f()\nexcept ValueError:\n    passed = 1\n"), "py.except-pass-typed"), 0);
  EXPECT_EQ(count(label_python("try:\n    f()\nexcept ValueError: continue\n"), "py.except-pass-typed"), 1);
  EXPECT_EQ(count(label_python("try:\n    f()\nexcept ValueError:\n    g()\n"), "py.bare-except"), 0);
}

}  // namespace
}  // namespace tritter::data
