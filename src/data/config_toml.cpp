// A small TOML-subset reader for the curate config (see config_toml.h): one pass over lines, one value parser.
#include "data/config_toml.h"

#include <cctype>
#include <cstdlib>

#include "core/error.h"
#include "data/util.h"
#include "text/unicode.h"

namespace tritter::data {
namespace {

struct Cursor {
  std::string_view s;
  size_t i = 0;
  const std::string& where;
  int line;
  void skip_space() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  }
  bool at_end_or_comment() {
    skip_space();
    return i >= s.size() || s[i] == '#';
  }
  [[noreturn]] void fail(const std::string& what, const std::string& expected) const {
    if (i >= s.size()) throw_error(where, " line ", line, ": ", what, ": found end of line, expected ", expected);
    throw_error(where, " line ", line, ": ", what, ": found '", s.substr(i, 20), "', expected ", expected);
  }
};

bool bare_key_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

std::string parse_string(Cursor& c) {
  const char q = c.s[c.i++];
  std::string out;
  while (c.i < c.s.size() && c.s[c.i] != q) {
    char ch = c.s[c.i++];
    if (q == '"' && ch == '\\') {
      if (c.i >= c.s.size()) break;
      const char e = c.s[c.i++];
      switch (e) {
        case '"':
          ch = '"';
          break;
        case '\\':
          ch = '\\';
          break;
        case 'n':
          ch = '\n';
          break;
        case 't':
          ch = '\t';
          break;
        default:
          --c.i;
          c.fail("unsupported escape", "one of \\\" \\\\ \\n \\t");
      }
    }
    out.push_back(ch);
  }
  if (c.i >= c.s.size()) c.fail("unterminated string", q == '"' ? "a closing \"" : "a closing '");
  ++c.i;
  return out;
}

nlohmann::json parse_value(Cursor& c, bool in_array) {
  c.skip_space();
  if (c.i >= c.s.size()) c.fail("missing value", "a string, number, boolean or array");
  const char ch = c.s[c.i];
  if (ch == '"' || ch == '\'') return parse_string(c);
  if (ch == '[') {
    if (in_array) c.fail("nested array", "strings, numbers or booleans");
    ++c.i;
    nlohmann::json arr = nlohmann::json::array();
    for (;;) {
      c.skip_space();
      if (c.i < c.s.size() && c.s[c.i] == ']') {
        ++c.i;
        return arr;
      }
      arr.push_back(parse_value(c, true));
      c.skip_space();
      if (c.i < c.s.size() && c.s[c.i] == ',') {
        ++c.i;
        continue;
      }
      if (c.i < c.s.size() && c.s[c.i] == ']') {
        ++c.i;
        return arr;
      }
      c.fail("bad array", "',' or ']' (arrays must fit on one line)");
    }
  }
  size_t e = c.i;
  while (e < c.s.size() && c.s[e] != ',' && c.s[e] != ']' && c.s[e] != '#' && c.s[e] != ' ' && c.s[e] != '\t') ++e;
  std::string tok(c.s.substr(c.i, e - c.i));
  if (tok == "true" || tok == "false") {
    c.i = e;
    return tok == "true";
  }
  std::string digits;
  for (char d : tok)
    if (d != '_') digits.push_back(d);
  char* end = nullptr;
  const bool is_float = digits.find_first_of(".eE") != std::string::npos;
  if (!digits.empty()) {
    if (is_float) {
      const double v = std::strtod(digits.c_str(), &end);
      if (end == digits.c_str() + digits.size()) {
        c.i = e;
        return v;
      }
    } else {
      const long long v = std::strtoll(digits.c_str(), &end, 10);
      if (end == digits.c_str() + digits.size()) {
        c.i = e;
        return v;
      }
    }
  }
  c.fail("bad value", "a quoted string, a number, true, false or [ ... ]");
}

}  // namespace

nlohmann::json parse_toml_subset(std::string_view text, const std::string& where) {
  // TOML is UTF-8 text; a stray byte would otherwise reach a string value and every message that quotes it.
  if (!unicode::is_valid_utf8(text)) throw_error(where, ": not valid UTF-8 (a TOML file is UTF-8 text)");
  nlohmann::json root = nlohmann::json::object();
  nlohmann::json* table = &root;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    ++line_no;
    Cursor c{line, 0, where, line_no};
    if (c.at_end_or_comment()) continue;
    if (line[c.i] == '[') {
      ++c.i;
      c.skip_space();
      const size_t b = c.i;
      while (c.i < line.size() && bare_key_char(line[c.i])) ++c.i;
      const std::string name(line.substr(b, c.i - b));
      c.skip_space();
      if (name.empty() || c.i >= line.size() || line[c.i] != ']') c.fail("bad table header", "[name] (one level)");
      ++c.i;
      if (!c.at_end_or_comment()) c.fail("text after table header", "end of line");
      if (root.contains(name)) c.fail("duplicate table '" + name + "'", "each table once");
      root[name] = nlohmann::json::object();
      table = &root[name];
      continue;
    }
    std::string key;
    if (line[c.i] == '"' || line[c.i] == '\'') {
      key = parse_string(c);
    } else {
      const size_t b = c.i;
      while (c.i < line.size() && bare_key_char(line[c.i])) ++c.i;
      key = std::string(line.substr(b, c.i - b));
    }
    c.skip_space();
    if (key.empty() || c.i >= line.size() || line[c.i] != '=') c.fail("bad key", "key = value (no dotted keys)");
    ++c.i;
    if (table->contains(key)) c.fail("duplicate key '" + key + "'", "each key once");
    (*table)[key] = parse_value(c, false);
    if (!c.at_end_or_comment()) c.fail("text after value", "end of line or a # comment");
  }
  return root;
}

}  // namespace tritter::data
