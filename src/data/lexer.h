// Small lexers for Python and Rust, enough that label rules do not fire inside comments or string literals
// (issue 8 stage 3). They produce a masked copy of the source: same length, comment and string-body bytes
// replaced by spaces (newlines kept, so offsets, lines and columns are unchanged); quotes and prefixes stay so
// a rule can still see "a string literal is here". Not a parser: no tokens, no AST, no error reporting.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tritter::data {

struct Span {
  size_t begin = 0;  // inclusive byte offset
  size_t end = 0;    // exclusive
};

struct StringLiteral {
  Span whole;          // prefix, quotes and body
  Span body;           // between the quotes
  std::string prefix;  // lower-case prefix letters ("f", "rb", "r#" ...)
};

struct LexedSource {
  std::string code;                    // masked source, same length as the input
  std::vector<StringLiteral> strings;  // in source order
  std::vector<Span> comments;          // in source order (the text of a comment includes its marker)
  // The literal whose `whole` begins exactly at `pos`, or nullptr.
  const StringLiteral* string_starting_at(size_t pos) const;
  // True if `pos` lies inside a comment or a string literal of the original text.
  bool in_comment_or_string(size_t pos) const;
};

LexedSource lex_python(std::string_view src);
LexedSource lex_rust(std::string_view src);

}  // namespace tritter::data
