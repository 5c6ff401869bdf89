// Chat templates, parsing: preprocess (lstrip_blocks, trim_blocks and the trailing newline, as Hugging Face's
// renderers do) → tokens → statement and expression trees (text/chat_template_ast.h).
#include <stdexcept>
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "text/chat_template_ast.h"

namespace tritter::chat {

namespace {

// ---------------------------------------------------------------- tokens
enum class Tok { text, open_expr, close_expr, open_stmt, close_stmt, name, str, integer, real, op, end };
struct Token {
  Tok kind;
  std::string s;
  int line;
};

std::string preprocess(std::string t) {
  if (!t.empty() && t.back() == '\n') t.pop_back();
  std::string out;  // lstrip_blocks: spaces/tabs at a line start before {% {# {-
  for (size_t i = 0; i < t.size();) {
    if (i == 0 || t[i - 1] == '\n') {
      size_t j = i;
      while (j < t.size() && (t[j] == ' ' || t[j] == '\t')) ++j;
      if (j + 1 < t.size() && t[j] == '{' && (t[j + 1] == '%' || t[j + 1] == '#' || t[j + 1] == '-')) i = j;
    }
    out += t[i++];
  }
  std::string out2;  // trim_blocks: the newline after %} #} -}
  for (size_t i = 0; i < out.size(); ++i) {
    out2 += out[i];
    if (out[i] == '}' && i > 0 && (out[i - 1] == '%' || out[i - 1] == '#' || out[i - 1] == '-') && i + 1 < out.size() &&
        out[i + 1] == '\n') {
      ++i;
    }
  }
  return out2;
}

[[noreturn]] void syntax(int line, const std::string& what) { throw_error("chat template: line ", line, ": ", what); }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

void lex_code(const std::string& t, size_t& i, int& line, std::vector<Token>& out, const char* close) {
  while (true) {
    while (i < t.size() && is_space(t[i])) line += t[i++] == '\n';
    if (i >= t.size()) syntax(line, std::string("missing '") + close + "'");
    if (t.compare(i, 2, close) == 0 || (t[i] == '-' && t.compare(i + 1, 2, close) == 0)) return;
    const char c = t[i];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < t.size() && (std::isalnum(static_cast<unsigned char>(t[j])) || t[j] == '_')) ++j;
      out.push_back({Tok::name, t.substr(i, j - i), line});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]))) ++j;
      bool real = false;
      if (j + 1 < t.size() && t[j] == '.' && std::isdigit(static_cast<unsigned char>(t[j + 1]))) {
        real = true;
        for (++j; j < t.size() && std::isdigit(static_cast<unsigned char>(t[j]));) ++j;
      }
      out.push_back({real ? Tok::real : Tok::integer, t.substr(i, j - i), line});
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string s;
      size_t j = i + 1;
      for (; j < t.size() && t[j] != c; ++j) {
        if (t[j] == '\\' && j + 1 < t.size()) {
          const char e = t[++j];
          s += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else {
          line += t[j] == '\n';
          s += t[j];
        }
      }
      if (j >= t.size()) syntax(line, "unterminated string");
      out.push_back({Tok::str, s, line});
      i = j + 1;
    } else {
      static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                                  "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"};
      bool found = false;
      for (const char* op : ops) {
        if (t.compare(i, std::strlen(op), op) == 0) {
          out.push_back({Tok::op, op, line});
          i += std::strlen(op);
          found = true;
          break;
        }
      }
      if (!found) syntax(line, std::string("unexpected character '") + c + "'");
    }
  }
}

std::vector<Token> lex(const std::string& source) {
  const std::string t = preprocess(source);
  std::vector<Token> out;
  int line = 1;
  bool trim_next = false;
  for (size_t i = 0; i < t.size();) {
    size_t open = i;
    while (true) {
      open = t.find('{', open);
      if (open == std::string::npos || (open + 1 < t.size() && (t[open + 1] == '{' || t[open + 1] == '%' || t[open + 1] == '#'))) break;
      ++open;
    }
    std::string text = t.substr(i, open == std::string::npos ? std::string::npos : open - i);
    const bool trim_before = open != std::string::npos && open + 2 < t.size() && t[open + 2] == '-';
    if (trim_next) text.erase(0, text.find_first_not_of(" \t\n\r\f\v") == std::string::npos ? text.size() : text.find_first_not_of(" \t\n\r\f\v"));
    if (trim_before) {
      const size_t last = text.find_last_not_of(" \t\n\r\f\v");
      text.erase(last == std::string::npos ? 0 : last + 1);
    }
    for (char c : t.substr(i, open == std::string::npos ? std::string::npos : open - i)) line += c == '\n';
    if (!text.empty()) out.push_back({Tok::text, text, line});
    if (open == std::string::npos) break;
    const char kind = t[open + 1];
    i = open + 2 + (trim_before ? 1 : 0);
    if (kind == '#') {
      const size_t close = t.find("#}", i);
      if (close == std::string::npos) syntax(line, "unterminated comment");
      for (size_t k = i; k < close; ++k) line += t[k] == '\n';
      trim_next = close > 0 && t[close - 1] == '-';
      i = close + 2;
      continue;
    }
    const char* close = kind == '{' ? "}}" : "%}";
    out.push_back({kind == '{' ? Tok::open_expr : Tok::open_stmt, "", line});
    lex_code(t, i, line, out, close);
    trim_next = t[i] == '-';
    i += trim_next ? 3 : 2;
    out.push_back({kind == '{' ? Tok::close_expr : Tok::close_stmt, "", line});
  }
  out.push_back({Tok::end, "", line});
  return out;
}


using Node = ChatTemplate::Node;
using NodeP = std::unique_ptr<Node>;

class Parser {
 public:
  explicit Parser(std::vector<Token> t) : t_(std::move(t)) {}

  NodeP parse_all() {
    auto root = parse_seq({});
    if (peek().kind != Tok::end) syntax(peek().line, "unexpected '" + stmt_name() + "'");
    return root;
  }

 private:
  const Token& peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(p_++, t_.size() - 1)]; }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).kind == Tok::op && peek(k).s == op; }
  bool is_name(const char* n, size_t k = 0) const { return peek(k).kind == Tok::name && peek(k).s == n; }
  void expect_op(const char* op) {
    if (!is_op(op)) syntax(peek().line, std::string("expected '") + op + "', found '" + peek().s + "'");
    ++p_;
  }
  void expect(Tok kind, const char* what) {
    if (peek().kind != kind) syntax(peek().line, std::string("expected ") + what + ", found '" + peek().s + "'");
    ++p_;
  }
  std::string name() {
    if (peek().kind != Tok::name) syntax(peek().line, "expected a name, found '" + peek().s + "'");
    return next().s;
  }
  std::string stmt_name() const { return peek().kind == Tok::open_stmt ? peek(1).s : peek().s; }

  // Statements until one of `stops` ({% elif %}, {% endfor %}, ...), which is left unread.
  NodeP parse_seq(std::initializer_list<const char*> stops) {
    auto seq = std::make_unique<Node>();
    while (peek().kind != Tok::end) {
      const Token& tok = peek();
      if (tok.kind == Tok::text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::text_, n->text = next().s;
        seq->body.push_back(std::move(n));
      } else if (tok.kind == Tok::open_expr) {
        ++p_;
        auto n = std::make_unique<Node>();
        n->kind = Node::output, n->line = tok.line;
        n->exprs.push_back(expr());
        expect(Tok::close_expr, "'}}'");
        seq->body.push_back(std::move(n));
      } else {
        const std::string word = peek(1).s;
        for (const char* s : stops) if (word == s) return seq;
        seq->body.push_back(statement());
      }
    }
    return seq;
  }

  NodeP statement() {
    const int line = next().line;  // {%
    const std::string word = name();
    auto n = std::make_unique<Node>();
    n->line = line;
    if (word == "if") {
      n->kind = Node::if_;
      n->exprs.push_back(expr());
      expect(Tok::close_stmt, "'%}'");
      n->body.push_back(parse_seq({"elif", "else", "endif"}));
      while (true) {
        if (peek().kind == Tok::end) syntax(line, "{% if %} without {% endif %}");
        ++p_;
        const std::string w = name();
        if (w == "elif") {
          n->exprs.push_back(expr());
          expect(Tok::close_stmt, "'%}'");
          n->body.push_back(parse_seq({"elif", "else", "endif"}));
        } else if (w == "else") {
          expect(Tok::close_stmt, "'%}'");
          n->body.push_back(parse_seq({"endif"}));
        } else {
          expect(Tok::close_stmt, "'%}'");
          break;
        }
      }
    } else if (word == "for") {
      n->kind = Node::for_;
      n->targets.push_back(name());
      while (is_op(",")) ++p_, n->targets.push_back(name());
      if (!is_name("in")) syntax(line, "expected 'in' in {% for %}");
      ++p_;
      n->exprs.push_back(ternary(false));
      if (is_name("if")) ++p_, n->exprs.push_back(expr());
      expect(Tok::close_stmt, "'%}'");
      n->body.push_back(parse_seq({"else", "endfor"}));
      if (peek().kind == Tok::end) syntax(line, "{% for %} without {% endfor %}");
      ++p_;
      if (name() == "else") {
        expect(Tok::close_stmt, "'%}'");
        n->body.push_back(parse_seq({"endfor"}));
        if (peek().kind == Tok::end) syntax(line, "{% for %} without {% endfor %}");
        ++p_, name();
      }
      expect(Tok::close_stmt, "'%}'");
    } else if (word == "set") {
      n->kind = Node::set;
      n->targets.push_back(name());
      if (is_op(".")) ++p_, n->targets.push_back(name());
      if (!is_op("=")) syntax(line, "{% set %} blocks are not supported; expected '='");
      ++p_;
      n->exprs.push_back(expr());
      expect(Tok::close_stmt, "'%}'");
    } else {
      syntax(line, "unsupported statement '" + word + "'");
    }
    return n;
  }

  ExprP make(Expr::Kind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k, e->line = line;
    return e;
  }

  ExprP expr() { return ternary(true); }
  ExprP ternary(bool allow_cond) {
    auto e = or_();
    if (allow_cond && is_name("if")) {
      const int line = next().line;
      auto c = make(Expr::cond, line);
      auto condition = or_();
      ExprP otherwise;
      if (is_name("else")) ++p_, otherwise = ternary(true);
      c->a.push_back(std::move(e));
      c->a.push_back(std::move(condition));
      c->a.push_back(std::move(otherwise));
      return c;
    }
    return e;
  }
  ExprP binary(ExprP l, const std::string& op, ExprP r, int line) {
    auto b = make(Expr::binary, line);
    b->name = op;
    b->a.push_back(std::move(l));
    b->a.push_back(std::move(r));
    return b;
  }
  ExprP or_() {
    auto e = and_();
    while (is_name("or")) e = binary(std::move(e), "or", (next(), and_()), peek().line);
    return e;
  }
  ExprP and_() {
    auto e = not_();
    while (is_name("and")) e = binary(std::move(e), "and", (next(), not_()), peek().line);
    return e;
  }
  ExprP not_() {
    if (is_name("not")) {
      auto u = make(Expr::unary, next().line);
      u->name = "not";
      u->a.push_back(not_());
      return u;
    }
    return compare();
  }
  ExprP compare() {
    auto e = add();
    while (true) {
      const int line = peek().line;
      if (peek().kind == Tok::op && (peek().s == "==" || peek().s == "!=" || peek().s == "<" || peek().s == ">" ||
                                     peek().s == "<=" || peek().s == ">=")) {
        const std::string op = next().s;
        e = binary(std::move(e), op, add(), line);
      } else if (is_name("in")) {
        ++p_;
        e = binary(std::move(e), "in", add(), line);
      } else if (is_name("not") && is_name("in", 1)) {
        p_ += 2;
        e = binary(std::move(e), "not in", add(), line);
      } else {
        return e;
      }
    }
  }
  ExprP add() {
    auto e = concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = next().s;
      e = binary(std::move(e), op, concat(), peek().line);
    }
    return e;
  }
  ExprP concat() {
    auto e = mul();
    while (is_op("~")) e = binary(std::move(e), "~", (next(), mul()), peek().line);
    return e;
  }
  ExprP mul() {
    auto e = unary();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().s;
      e = binary(std::move(e), op, unary(), peek().line);
    }
    return e;
  }
  ExprP unary() {
    if (is_op("-") || is_op("+")) {
      auto u = make(Expr::unary, peek().line);
      u->name = next().s;
      u->a.push_back(unary());
      return u;
    }
    return postfix(primary());
  }
  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == Tok::name && is_op("=", 1)) {
        e.kw.push_back(next().s);
        ++p_;
      } else if (!e.kw.empty()) {
        syntax(peek().line, "a positional argument after a keyword argument");
      }
      e.a.push_back(expr());
      if (!is_op(",")) break;
      ++p_;
    }
    expect_op(")");
  }
  ExprP postfix(ExprP e) {
    while (true) {
      const int line = peek().line;
      if (is_op(".")) {
        ++p_;
        auto a = make(Expr::attr, line);
        a->name = name();
        a->a.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        ++p_;
        ExprP lo, hi, step;
        bool is_slice = false;
        if (!is_op(":")) lo = expr();
        if (is_op(":")) {
          is_slice = true, ++p_;
          if (!is_op("]") && !is_op(":")) hi = expr();
          if (is_op(":")) {
            ++p_;
            if (!is_op("]")) step = expr();
          }
        }
        expect_op("]");
        auto x = make(is_slice ? Expr::slice : Expr::index, line);
        x->a.push_back(std::move(e));
        x->a.push_back(std::move(lo));
        if (is_slice) x->a.push_back(std::move(hi)), x->a.push_back(std::move(step));
        e = std::move(x);
      } else if (is_op("(")) {
        auto c = make(Expr::call, line);
        c->a.push_back(std::move(e));
        call_args(*c);
        e = std::move(c);
      } else if (is_op("|")) {
        ++p_;
        auto f = make(Expr::filter, line);
        f->name = name();
        f->a.push_back(std::move(e));
        if (is_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        ++p_;
        auto t = make(Expr::test, line);
        if (is_name("not")) ++p_, t->negated = true;
        t->name = name();
        t->a.push_back(std::move(e));
        if (is_op("(")) {
          call_args(*t);
        } else if (peek().kind == Tok::str || peek().kind == Tok::integer || peek().kind == Tok::name) {
          if (!(peek().kind == Tok::name && (peek().s == "and" || peek().s == "or" || peek().s == "else" || peek().s == "if"))) {
            t->a.push_back(primary());  // `is equalto 3`, `is sameas none`
          }
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
  ExprP primary() {
    const Token& tok = next();
    if (tok.kind == Tok::str) {
      auto e = make(Expr::literal, tok.line);
      e->value = tok.s;
      while (peek().kind == Tok::str) e->value = e->value.get<std::string>() + next().s;  // "a" "b"
      return e;
    }
    if (tok.kind == Tok::integer || tok.kind == Tok::real) {
      auto e = make(Expr::literal, tok.line);
      try {
        if (tok.kind == Tok::integer) e->value = std::stoll(tok.s);
        else e->value = std::stod(tok.s);
      } catch (const std::out_of_range&) {
        syntax(tok.line, "number " + tok.s.substr(0, 40) + " does not fit in 64 bits");
      }
      return e;
    }
    if (tok.kind == Tok::name) {
      auto e = make(Expr::literal, tok.line);
      if (tok.s == "true" || tok.s == "True") e->value = true;
      else if (tok.s == "false" || tok.s == "False") e->value = false;
      else if (tok.s == "none" || tok.s == "None") e->value = nullptr;
      else e->kind = Expr::var, e->name = tok.s;
      return e;
    }
    if (tok.kind == Tok::op && tok.s == "(") {
      auto e = expr();
      if (is_op(",")) {  // a tuple: a list here
        auto l = make(Expr::list, tok.line);
        l->a.push_back(std::move(e));
        while (is_op(",")) {
          ++p_;
          if (is_op(")")) break;
          l->a.push_back(expr());
        }
        e = std::move(l);
      }
      expect_op(")");
      return e;
    }
    if (tok.kind == Tok::op && tok.s == "[") {
      auto l = make(Expr::list, tok.line);
      while (!is_op("]")) {
        l->a.push_back(expr());
        if (!is_op(",")) break;
        ++p_;
      }
      expect_op("]");
      return l;
    }
    if (tok.kind == Tok::op && tok.s == "{") {
      auto d = make(Expr::dict, tok.line);
      while (!is_op("}")) {
        d->a.push_back(expr());
        expect_op(":");
        d->a.push_back(expr());
        if (!is_op(",")) break;
        ++p_;
      }
      expect_op("}");
      return d;
    }
    syntax(tok.line, "unexpected '" + (tok.s.empty() ? std::string("end of tag") : tok.s) + "' in an expression");
  }

  std::vector<Token> t_;
  size_t p_ = 0;
};

}  // namespace

std::unique_ptr<ChatTemplate::Node> parse_template(std::string_view source) {
  return Parser(lex(std::string(source))).parse_all();
}

}  // namespace tritter::chat
