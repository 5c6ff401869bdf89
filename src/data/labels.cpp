// Label rules (see labels.h). Each rule: an RE2 pattern over the masked code, then a few lines of C++ that
// look at the call's arguments (literal or not, which keyword arguments) before emitting a label whose
// explanation names the matched call. Regexes are compiled once (immutable, shared by threads).
#include "data/labels.h"

#include <hs/hs.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>
#include <optional>

#include "core/error.h"
#include "data/lexer.h"
#include "data/util.h"
#include "kernels/text_scan.h"

namespace tritter::data {

const std::vector<LabelRuleInfo>& label_rules() {
  static const std::vector<LabelRuleInfo> rules = {
      // Python, security
      {"py.eval-exec",
       "python",
       "security",
       "high",
       {"bandit:B307", "bandit:B102", "semgrep:python.lang.security.audit.eval-detected", "CWE-95"}},
      {"py.shell-injection",
       "python",
       "security",
       "high",
       {"bandit:B602", "bandit:B604", "semgrep:python.lang.security.audit.subprocess-shell-true", "CWE-78"}},
      {"py.os-system",
       "python",
       "security",
       "high",
       {"bandit:B605", "semgrep:python.lang.security.audit.dangerous-system-call", "CWE-78"}},
      {"py.sql-string-built",
       "python",
       "security",
       "high",
       {"bandit:B608", "semgrep:python.lang.security.audit.formatted-sql-query", "CWE-89"}},
      {"py.unsafe-deserialization",
       "python",
       "security",
       "high",
       {"bandit:B301", "bandit:B302", "semgrep:python.lang.security.deserialization.pickle.avoid-pickle", "CWE-502"}},
      {"py.yaml-unsafe-load",
       "python",
       "security",
       "high",
       {"bandit:B506", "semgrep:python.lang.security.deserialization.avoid-pyyaml-load", "CWE-502"}},
      {"py.torch-load-unsafe", "python", "security", "high", {"bandit:B614", "CWE-502"}},
      {"py.tls-verify-disabled",
       "python",
       "security",
       "high",
       {"bandit:B501", "bandit:B323", "semgrep:python.requests.security.disabled-cert-validation", "CWE-295"}},
      {"py.weak-hash",
       "python",
       "security",
       "medium",
       {"bandit:B324", "semgrep:python.lang.security.insecure-hash-algorithms", "CWE-327"}},
      {"py.tarfile-extractall", "python", "security", "medium", {"bandit:B202", "CWE-22"}},
      {"py.jinja2-autoescape-off",
       "python",
       "security",
       "high",
       {"bandit:B701", "semgrep:python.flask.security.xss.audit.template-autoescape-off", "CWE-79"}},
      {"py.tempfile-mktemp",
       "python",
       "security",
       "medium",
       {"bandit:B306", "semgrep:python.lang.correctness.tempfile.mktemp", "CWE-377"}},
      // Python, quality
      {"py.bare-except", "python", "quality", "low", {"pycodestyle:E722", "CWE-396"}},
      {"py.except-pass", "python", "quality", "low", {"bandit:B110", "bandit:B112", "CWE-390"}},
      {"py.except-pass-typed", "python", "quality", "info",
       {"semgrep:python.lang.best-practice.pass-body", "CWE-390"}},
      {"py.mutable-default",
       "python",
       "quality",
       "medium",
       {"semgrep:python.lang.correctness.default-mutable-list", "flake8-bugbear:B006"}},
      {"py.is-literal",
       "python",
       "quality",
       "medium",
       {"semgrep:python.lang.correctness.common-mistakes.is-comparison-string", "pyflakes:F632"}},
      {"py.requests-no-timeout", "python", "quality", "medium", {"bandit:B113", "CWE-400"}},
      // Rust, security
      {"rs.unsafe-undocumented",
       "rust",
       "security",
       "medium",
       {"clippy:undocumented_unsafe_blocks", "semgrep:rust.lang.security.unsafe-usage"}},
      {"rs.transmute", "rust", "security", "high", {"clippy:transmute_ptr_to_ref", "CWE-843"}},
      {"rs.mem-forget", "rust", "security", "low", {"clippy:mem_forget", "CWE-401"}},
      {"rs.from-raw-parts", "rust", "security", "medium", {"clippy:not_unsafe_ptr_arg_deref", "CWE-119"}},
      {"rs.tls-verify-disabled",
       "rust",
       "security",
       "high",
       {"semgrep:rust.lang.security.reqwest-accept-invalid", "semgrep:rust.lang.security.ssl-verify-none",
        "semgrep:rust.lang.security.rustls-dangerous", "CWE-295"}},
      {"rs.shell-command", "rust", "security", "high", {"semgrep:rust.lang.security.args", "CWE-78"}},
      {"rs.weak-hash", "rust", "security", "medium", {"semgrep:rust.lang.security.insecure-hashes", "CWE-327"}},
      // Rust, quality
      {"rs.unwrap", "rust", "quality", "low", {"clippy:unwrap_used"}},
      {"rs.expect", "rust", "quality", "low", {"clippy:expect_used"}},
      {"rs.todo", "rust", "quality", "low", {"clippy:todo", "clippy:unimplemented"}},
      {"rs.dbg", "rust", "quality", "low", {"clippy:dbg_macro"}},
      // Triton
      {"triton.unmasked-access", "triton", "security", "low", {"CWE-125", "CWE-787"}},
  };
  return rules;
}

const LabelRuleInfo& label_rule(std::string_view id) {
  for (const auto& r : label_rules())
    if (id == r.id) return r;
  throw_error("label rules: unknown rule '", id, "'");
}

namespace {

using Piece = re2::StringPiece;

re2::RE2::Options regex_options() {
  re2::RE2::Options o;
  o.set_encoding(re2::RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  return o;
}

// Calls f(match_begin, groups) for every non-overlapping match of `re` in `code`. `needles`: literals of which
// one occurs inside every match. RE2 runs only on the lines around each needle occurrence (find_needle),
// not on the whole file: most rules' needles sit on a few lines, and the label stage was a full RE2 pass per rule.
// `lines_after`: how many lines after the needle's a match may reach (multi-line rules).
// Index of the needle's character that is rarest in source code (memchr then skips furthest between hits):
// characters later in kCommon are rarer, and those not in it (upper case, digits, most punctuation) rarest.
size_t rarest_char(std::string_view n) {
  static constexpr std::string_view kCommon = " \n\te_t.s(a)r,io=nlcd:pmu'\"fhgb[]yk#vw-xjqz";
  size_t best = 0, best_rank = 0;
  for (size_t i = 0; i < n.size(); ++i) {
    const size_t k = kCommon.find(n[i]);
    const size_t rank = k == std::string_view::npos ? kCommon.size() : k;
    if (rank > best_rank) best = i, best_rank = rank;
  }
  return best;
}

// Next occurrence of `n` in `code` at or after `at` (npos if none): memchr for its rarest character, then compare.
size_t find_needle(std::string_view code, std::string_view n, size_t at, size_t rare) {
  const char c = n[rare];
  for (size_t p = at + rare; p < code.size();) {
    const void* hit = std::memchr(code.data() + p, c, code.size() - p);
    if (!hit) return std::string_view::npos;
    const size_t q = size_t(static_cast<const char*>(hit) - code.data());
    if (q - rare + n.size() <= code.size() && std::memcmp(code.data() + q - rare, n.data(), n.size()) == 0)
      return q - rare;
    p = q + 1;
  }
  return std::string_view::npos;
}

// Every literal the rules below look for in the masked code. One Hyperscan pass per document finds all their
// occurrences (the rules used to run one memchr/memcmp pass over the whole text per needle, ~40 per Python
// file); a needle missing from this list still works, found by find_needle.
constexpr std::string_view kCodeNeedles[] = {
    // Python
    "eval", "exec", "shell", "subprocess_shell", "system", "popen", "spawn", "execute", "raw", "mogrify",
    "exec_driver_sql", "read_sql", "extra", "ickle", "marshal", "shelve", "dill", "yaml", "torch", "verif",
    "check_hostname", "CERT_NONE", "hashlib", "md5", "Md5", "sha1", "Sha1", "MD5", "MD4", "MD2", "SHA", "sha",
    "extractall", "tarfile", "autoescape", "mktemp", "except", "def", "is ", "is\t", "requests",
    // Rust
    "unsafe", "transmute", "forget", "from_raw_parts", "danger_accept", "SslVerifyMode", "dangerous",
    "certificate_verifier", "ServerCertVerifi", "Command", ".unwrap", ".expect", "todo!", "unimplemented!", "dbg!",
    "#[cfg(test)]",
    // Triton
    "tl."};
constexpr size_t kNumCodeNeedles = sizeof(kCodeNeedles) / sizeof(kCodeNeedles[0]);

// The literal database, compiled once (immutable, shared by threads).
const hs_database_t* code_needle_db() {
  static const hs_database_t* const db = [] {
    std::vector<const char*> exprs;
    std::vector<size_t> lens;
    std::vector<unsigned> flags(kNumCodeNeedles, 0u), ids;
    for (size_t i = 0; i < kNumCodeNeedles; ++i) {
      exprs.push_back(kCodeNeedles[i].data());
      lens.push_back(kCodeNeedles[i].size());
      ids.push_back(unsigned(i));
    }
    hs_database_t* out = nullptr;
    hs_compile_error_t* err = nullptr;
    if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(), unsigned(kNumCodeNeedles),
                             HS_MODE_BLOCK, nullptr, &out, &err) != HS_SUCCESS) {
      const std::string msg = err && err->message ? err->message : "unknown error";
      if (err) hs_free_compile_error(err);
      throw_error("label rules: compiling the needle set: ", msg);
    }
    return out;
  }();
  return db;
}

// The occurrences of every kCodeNeedles literal in one document's masked code (start offsets, ascending; all of
// them, overlapping ones too). Reused from document to document on a thread, so the hot path allocates nothing.
class NeedleHits {
 public:
  NeedleHits() = default;
  NeedleHits(const NeedleHits&) = delete;
  NeedleHits& operator=(const NeedleHits&) = delete;
  ~NeedleHits() {
    if (scratch_) hs_free_scratch(scratch_);
  }
  void scan(std::string_view code) {
    base_ = nullptr;
    if (code.size() > 0xFFFFFFFFu) return;  // positions are 32-bit: find() falls back to find_needle
    const hs_database_t* db = code_needle_db();
    if (!scratch_ && hs_alloc_scratch(db, &scratch_) != HS_SUCCESS) throw_error("label rules: hs_alloc_scratch failed");
    hits_.resize(kNumCodeNeedles);
    for (auto& h : hits_) h.clear();
    auto on_match = [](unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx) -> int {
      static_cast<NeedleHits*>(ctx)->hits_[id].push_back(uint32_t(to - kCodeNeedles[id].size()));
      return 0;
    };
    if (hs_scan(db, code.data(), unsigned(code.size()), 0, scratch_, on_match, this) != HS_SUCCESS)
      throw_error("label rules: hs_scan failed");
    base_ = code.data();
    size_ = code.size();
  }
  // The occurrences of `needle` in `code`, which must be the scanned code or a prefix of it; nullptr when the
  // needle is not in kCodeNeedles or `code` is something else (the caller then searches itself). Occurrences
  // that run past the end of a prefix are the caller's to drop.
  const std::vector<uint32_t>* find(std::string_view code, std::string_view needle) const {
    if (!base_ || code.data() != base_ || code.size() > size_) return nullptr;
    for (size_t i = 0; i < kNumCodeNeedles; ++i)
      if (kCodeNeedles[i] == needle) return &hits_[i];
    return nullptr;
  }
  // The first occurrence of `needle` that lies wholly inside `code`, or npos (std::string_view::find's answer).
  size_t first(std::string_view code, std::string_view needle) const {
    const std::vector<uint32_t>* h = find(code, needle);
    if (!h) return code.find(needle);
    for (const uint32_t p : *h)
      if (p + needle.size() <= code.size()) return p;
    return std::string_view::npos;
  }

 private:
  const char* base_ = nullptr;
  size_t size_ = 0;
  std::vector<std::vector<uint32_t>> hits_;  // per kCodeNeedles index
  hs_scratch_t* scratch_ = nullptr;
};

// One NeedleHits per thread (the Hyperscan scratch and the hit lists are reused by every document it labels).
NeedleHits& thread_needle_hits() {
  thread_local NeedleHits hits;
  return hits;
}

// for_each_match with the matcher given: match(all, pos, end, m) finds the leftmost match in [pos, end) of `all`
// (the whole code, the context) and fills `groups` pieces of m, as RE2::Match does.
template <typename Match, typename F>
void for_each_match_with(const NeedleHits& nh, Match&& match, int groups, std::string_view code,
                         std::initializer_list<std::string_view> needles, F&& f, int lines_after = 1) {
  std::vector<std::pair<size_t, size_t>> windows;
  auto add_window = [&](size_t pos) {
    size_t b = code.rfind('\n', pos);
    b = b == std::string_view::npos ? 0 : b + 1;
    if (b > 0) {  // one line before: a match may start on the previous line (`x = \` continuations)
      const size_t prev = b >= 2 ? code.rfind('\n', b - 2) : std::string_view::npos;
      b = prev == std::string_view::npos ? 0 : prev + 1;
    }
    size_t e = pos;
    for (int k = 0; k <= lines_after && e < code.size(); ++k) {
      e = code.find('\n', e + (k ? 1 : 0));
      if (e == std::string_view::npos) e = code.size();
    }
    windows.push_back({b, std::min(code.size(), e + 1)});
  };
  for (std::string_view n : needles) {
    if (const std::vector<uint32_t>* occ = nh.find(code, n)) {
      // Non-overlapping, leftmost first: the same occurrences the search below visits.
      size_t at = 0;
      for (const uint32_t pos : *occ) {
        if (pos + n.size() > code.size()) break;
        if (pos < at) continue;
        add_window(pos);
        at = pos + n.size();
      }
      continue;
    }
    const size_t rare = rarest_char(n);
    for (size_t at = 0; at + n.size() <= code.size();) {
      const size_t pos = find_needle(code, n, at, rare);
      if (pos == std::string_view::npos) break;
      add_window(pos);
      at = pos + n.size();
    }
  }
  if (windows.empty()) return;
  std::sort(windows.begin(), windows.end());
  std::vector<std::pair<size_t, size_t>> merged;
  for (const auto& w : windows)
    if (!merged.empty() && w.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, w.second);
    else
      merged.push_back(w);
  std::vector<Piece> m(static_cast<size_t>(groups));
  const Piece all(code.data(), code.size());
  for (const auto& [wb, we] : merged) {
    size_t pos = wb;
    // The whole code is the context, so ^, $ and \b see the real neighbours of the window.
    while (pos <= we && match(all, pos, we, m.data())) {
      const size_t begin = size_t(m[0].data() - code.data());
      pos = std::max(begin + m[0].size(), begin + 1);
      f(begin, m);
    }
  }
}

// Calls f(match_begin, groups) for every non-overlapping match of `re` in `code` (see for_each_match_with).
template <typename F>
void for_each_match(const NeedleHits& nh, const re2::RE2& re, std::string_view code,
                    std::initializer_list<std::string_view> needles, F&& f, int lines_after = 1) {
  const int n = re.NumberOfCapturingGroups() + 1;
  for_each_match_with(
      nh,
      [&re, n](const Piece& all, size_t pos, size_t end, Piece* m) {
        return re.Match(all, pos, end, re2::RE2::UNANCHORED, m, n);
      },
      n, code, needles, std::forward<F>(f), lines_after);
}

// An RE2 matcher for for_each_match_with that first asks `may_match(piece)` of [pos, end): a necessary condition
// (a literal every match contains) that spares RE2's per-call cost on the windows that cannot match.
template <typename Pred>
auto re2_where(const re2::RE2& re, Pred may_match) {
  return [&re, may_match](const Piece& all, size_t pos, size_t end, Piece* m) {
    if (pos > end || !may_match(std::string_view(all.data() + pos, end - pos))) return false;
    return re.Match(all, pos, end, re2::RE2::UNANCHORED, m, re.NumberOfCapturingGroups() + 1);
  };
}

bool has_pass_or_continue(std::string_view w) {
  return find_bytes(w, "pass") != std::string_view::npos || find_bytes(w, "continue") != std::string_view::npos;
}

// RE2's \s and \w (ASCII, as in its Latin-1 mode).
constexpr bool re_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }
constexpr bool re_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The leftmost match of \bdef\s+(\w+)\s*\( in [pos, end) of `all`, by hand: the rule fires on every function,
// and RE2's per-call cost was most of the label stage. The pattern has one way to match from a given start
// (\s and \w are disjoint, so no backtracking changes the outcome), which is what this checks.
bool match_def(const Piece& all, size_t pos, size_t end, Piece* m) {
  const std::string_view code(all.data(), all.size());
  const std::string_view upto(all.data(), std::min(end, all.size()));
  for (size_t s = upto.find("def", pos); s != std::string_view::npos; s = upto.find("def", s + 1)) {
    if (s > 0 && re_word(code[s - 1])) continue;  // \b before the word character 'd'
    size_t p = s + 3;
    if (p >= upto.size() || !re_space(upto[p])) continue;
    while (p < upto.size() && re_space(upto[p])) ++p;
    size_t q = p;
    while (q < upto.size() && re_word(upto[q])) ++q;
    if (q == p) continue;
    size_t r = q;
    while (r < upto.size() && re_space(upto[r])) ++r;
    if (r >= upto.size() || upto[r] != '(') continue;
    m[0] = Piece(code.data() + s, r + 1 - s);
    m[1] = Piece(code.data() + p, q - p);
    return true;
  }
  return false;
}

// A necessary condition for the mutable-default pattern below: some '=' followed (after \s*) by '[', '{' or
// the first letter of list/dict/set. Most signatures fail it, and skip RE2.
bool may_have_mutable_default(std::string_view args) {
  for (size_t i = args.find('='); i != std::string_view::npos; i = args.find('=', i + 1)) {
    size_t p = i + 1;
    while (p < args.size() && re_space(args[p])) ++p;
    if (p < args.size() && (args[p] == '[' || args[p] == '{' || args[p] == 'l' || args[p] == 'd' || args[p] == 's'))
      return true;
  }
  return false;
}

size_t offset(std::string_view code, const Piece& p) { return size_t(p.data() - code.data()); }

// Index of the ')' closing the '(' at `open` in masked code, or npos (bounded search).
size_t match_paren(std::string_view code, size_t open) {
  int depth = 0;
  const size_t limit = std::min(code.size(), open + 20000);
  for (size_t i = open; i < limit; ++i) {
    const char c = code[i];
    if (c == '(' || c == '[' || c == '{')
      ++depth;
    else if (c == ')' || c == ']' || c == '}') {
      if (--depth == 0) return i;
    }
  }
  return std::string_view::npos;
}

std::string_view call_args(std::string_view code, size_t open) {
  const size_t close = match_paren(code, open);
  if (close == std::string_view::npos) return code.substr(open + 1, std::min<size_t>(2000, code.size() - open - 1));
  return code.substr(open + 1, close - open - 1);
}

size_t skip_space(std::string_view code, size_t p) {
  while (p < code.size() &&
         (code[p] == ' ' || code[p] == '\t' || code[p] == '\n' || code[p] == '\r' || code[p] == '\\'))
    ++p;
  return p;
}

// The first argument after the '(' at `open` is a (possibly implicitly concatenated) string literal alone.
bool first_arg_is_literal(const LexedSource& lx, size_t open) {
  size_t p = skip_space(lx.code, open + 1);
  const StringLiteral* s = lx.string_starting_at(p);
  if (!s || s->prefix.find('f') != std::string::npos) return false;
  while (s) {
    p = skip_space(lx.code, s->whole.end);
    s = lx.string_starting_at(p);
    if (s && s->prefix.find('f') != std::string::npos) return false;
  }
  return p < lx.code.size() && (lx.code[p] == ')' || lx.code[p] == ',');
}

// The dotted name ending just before `end` ("subprocess.run" for "subprocess.run(").
std::string callee_before(std::string_view code, size_t end) {
  size_t b = end;
  while (b > 0 && code[b - 1] == ' ') --b;
  const size_t e = b;
  while (b > 0) {
    const char c = code[b - 1];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.')
      --b;
    else
      break;
  }
  return std::string(code.substr(b, e - b));
}

// The unmatched '(' before `pos` (the call or signature `pos` sits in), or npos within 4000 bytes.
size_t enclosing_paren(std::string_view code, size_t pos) {
  int depth = 0;
  for (size_t i = pos; i-- > 0 && pos - i < 4000;) {
    if (code[i] == ')')
      ++depth;
    else if (code[i] == '(' && depth-- == 0)
      return i;
  }
  return std::string_view::npos;
}

// The '(' at `open` starts a `def name(` signature (a default value, not a call argument).
bool is_def(std::string_view code, size_t open) {
  size_t b = open;
  while (b > 0 && code[b - 1] == ' ') --b;
  while (b > 0 && (std::isalnum(static_cast<unsigned char>(code[b - 1])) || code[b - 1] == '_')) --b;
  while (b > 0 && code[b - 1] == ' ') --b;
  return b >= 3 && code.substr(b - 3, 3) == "def";
}

// A short readable snippet of the argument expression (identifiers only, so nothing quoted is copied).
std::string arg_snippet(std::string_view code, size_t open) {
  std::string s;
  for (size_t i = skip_space(code, open + 1); i < code.size() && s.size() < 40; ++i) {
    const char c = code[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.')
      s += c;
    else
      break;
  }
  return s.empty() ? "an expression" : "`" + s + "`";
}

class Emitter {
 public:
  Emitter(std::string_view text, std::vector<Label>& out) : text_(text), out_(out) {}
  void emit(const char* rule, size_t pos, std::string explanation) {
    const LabelRuleInfo& info = label_rule(rule);
    if (!lines_) lines_.emplace(text_);
    const LineCol lc = lines_->at(pos);
    out_.push_back({info.id, info.anchors, info.severity, info.kind, lc.line, lc.col, std::move(explanation)});
  }

 private:
  std::string_view text_;
  std::vector<Label>& out_;
  std::optional<LineIndex> lines_;  // built on the first label
};

bool contains(std::string_view hay, const re2::RE2& re) {
  return re2::RE2::PartialMatch(Piece(hay.data(), hay.size()), re);
}

#define TRITTER_RE(name, pattern) static const re2::RE2 name(pattern, regex_options())

void python_security(const LexedSource& lx, const NeedleHits& nh, std::string_view text, Emitter& e) {
  const std::string_view code = lx.code;
  TRITTER_RE(eval_re, R"re(\b(eval|exec)\s*\()re");
  for_each_match(nh, eval_re, code, {"eval", "exec"}, [&](size_t b, const std::vector<Piece>& m) {
    if (b > 0 && code[b - 1] == '.') return;  // model.eval(), obj.exec()
    if (b >= 4 && code.substr(b - 4, 4) == "def ") return;
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (first_arg_is_literal(lx, open)) return;
    const std::string fn(m[1].data(), m[1].size());
    e.emit("py.eval-exec", b,
           fn + "() runs " + arg_snippet(code, open) +
               " as Python code; anyone who controls that value controls the process. Parse data with "
               "ast.literal_eval() or json.loads() instead.");
  });
  TRITTER_RE(shell_re, R"re(\bshell\s*=\s*True\b)re");
  for_each_match(nh, shell_re, code, {"shell"}, [&](size_t b, const std::vector<Piece>&) {
    const size_t open = enclosing_paren(code, b);
    if (open == std::string_view::npos || is_def(code, open) || first_arg_is_literal(lx, open)) return;
    const std::string callee = callee_before(code, open);
    e.emit("py.shell-injection", b,
           callee + "() is called with shell=True on " + arg_snippet(code, open) +
               ", so the shell parses the command string; pass an argument list with shell=False.");
  });
  TRITTER_RE(asyncio_shell_re, R"re(\b(asyncio\s*\.\s*create_subprocess_shell)\s*\()re");
  for_each_match(nh, asyncio_shell_re, code, {"subprocess_shell"}, [&](size_t b, const std::vector<Piece>& m) {
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (first_arg_is_literal(lx, open)) return;
    std::string callee(m[1].data(), m[1].size());
    callee.erase(std::remove_if(callee.begin(), callee.end(), [](char c) { return c == ' ' || c == '\t'; }),
                 callee.end());
    e.emit("py.shell-injection", b,
           callee + "() hands " + arg_snippet(code, open) +
               " to the shell to parse; use asyncio.create_subprocess_exec() with one argument per word.");
  });
  TRITTER_RE(system_re, R"re(\bos\s*\.\s*(system|popen[234]?|spawnlp?e?|spawnvp?e?)\s*\()re");
  for_each_match(nh, system_re, code, {"system", "popen", "spawn"}, [&](size_t b, const std::vector<Piece>& m) {
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (first_arg_is_literal(lx, open)) return;
    e.emit("py.os-system", b,
           "os." + std::string(m[1].data(), m[1].size()) + "() hands " + arg_snippet(code, open) +
               " to the shell; use subprocess.run([...]) with an argument list.");
  });
  TRITTER_RE(
      sql_re,
      R"re(\.(execute|executemany|executescript|raw|mogrify|exec_driver_sql|read_sql|read_sql_query|extra)\s*\()re");
  TRITTER_RE(sql_kw, R"re((?i)\b(select|insert|update|delete|create|drop|alter|replace)\b)re");
  TRITTER_RE(ident_arg, R"re(^\s*([A-Za-z_]\w*)\s*[,)])re");
  for_each_match(nh, sql_re, code, {"execute", "raw", "mogrify", "exec_driver_sql", "read_sql", "extra"},
                 [&](size_t b, const std::vector<Piece>& m) {
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    const StringLiteral* s = lx.string_starting_at(skip_space(code, open + 1));
    if (!s) {
      // `.execute(sql)` where `sql = <built SQL string>` was assigned on an earlier line (the nearest assignment).
      Piece var;
      if (!re2::RE2::PartialMatch(Piece(code.data() + open + 1, std::min<size_t>(80, code.size() - open - 1)),
                                  ident_arg, &var))
        return;
      const std::string name(var.data(), var.size());
      const size_t from = b > 8000 ? b - 8000 : 0;
      size_t at = std::string_view::npos;
      for (size_t k = code.rfind(name, b); k != std::string_view::npos && k >= from;
           k = k == 0 ? std::string_view::npos : code.rfind(name, k - 1)) {
        const bool word_start = k == 0 || (!std::isalnum(static_cast<unsigned char>(code[k - 1])) &&
                                           code[k - 1] != '_' && code[k - 1] != '.');
        const size_t end = k + name.size();
        const bool word_end = end < code.size() && !std::isalnum(static_cast<unsigned char>(code[end])) && code[end] != '_';
        const size_t eq = skip_space(code, end);
        if (word_start && word_end && eq < code.size() && code[eq] == '=' &&
            (eq + 1 >= code.size() || code[eq + 1] != '=')) {
          at = eq;
          break;
        }
      }
      if (at == std::string_view::npos) return;
      const StringLiteral* lit = lx.string_starting_at(skip_space(code, at + 1));
      if (!lit) return;
      const std::string_view body = text.substr(lit->body.begin, lit->body.end - lit->body.begin);
      if (!contains(body, sql_kw)) return;
      const size_t after = skip_space(code, lit->whole.end);
      const bool fstring = lit->prefix.find('f') != std::string::npos && body.find('{') != std::string_view::npos;
      const bool built =
          after < code.size() && (code[after] == '%' || code[after] == '+' || code.substr(after, 7) == ".format");
      if (!fstring && !built) return;
      e.emit("py.sql-string-built", b,
             "the SQL in `" + name + "` passed to ." + std::string(m[1].data(), m[1].size()) + "() was built with " +
                 (fstring ? "an f-string" : "string formatting") +
                 " on an earlier line; pass the values as query parameters.");
      return;
    }
    const std::string_view body = text.substr(s->body.begin, s->body.end - s->body.begin);
    if (!contains(body, sql_kw)) return;
    const size_t after = skip_space(code, s->whole.end);
    const bool fstring = s->prefix.find('f') != std::string::npos && body.find('{') != std::string_view::npos;
    const bool built =
        after < code.size() && (code[after] == '%' || code[after] == '+' || code.substr(after, 7) == ".format");
    if (!fstring && !built) return;
    e.emit("py.sql-string-built", b,
           "the SQL passed to ." + std::string(m[1].data(), m[1].size()) + "() is built with " +
               (fstring              ? "an f-string"
                : code[after] == '%' ? "% formatting"
                : code[after] == '+' ? "concatenation"
                                     : "str.format()") +
               "; pass the values as query parameters (cursor.execute(sql, params)).");
  });
  TRITTER_RE(
      deser_re,
      R"re(\b(pickle|cPickle|_pickle|dill|marshal|shelve|jsonpickle)\s*\.\s*(loads?|Unpickler|open|decode)\s*\()re");
  for_each_match(nh, deser_re, code, {"ickle", "marshal", "shelve", "dill"}, [&](size_t b, const std::vector<Piece>& m) {
    const std::string mod(m[1].data(), m[1].size()), fn(m[2].data(), m[2].size());
    if ((mod == "shelve") != (fn == "open") || (mod == "jsonpickle") != (fn == "decode")) return;
    e.emit("py.unsafe-deserialization", b,
           mod + "." + fn +
               "() can execute arbitrary code while deserializing untrusted bytes; use json or a "
               "schema-checked format for data that crosses a trust boundary.");
  });
  TRITTER_RE(yaml_re, R"re(\byaml\s*\.\s*(load|load_all|unsafe_load|unsafe_load_all)\s*\()re");
  TRITTER_RE(safe_loader, R"re(\b(SafeLoader|CSafeLoader|BaseLoader|CBaseLoader)\b)re");
  for_each_match(nh, yaml_re, code, {"yaml"}, [&](size_t b, const std::vector<Piece>& m) {
    const std::string fn(m[1].data(), m[1].size());
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (!fn.starts_with("unsafe") && contains(call_args(code, open), safe_loader)) return;
    e.emit("py.yaml-unsafe-load", b,
           "yaml." + fn +
               "() without SafeLoader can construct arbitrary Python objects from the document; use "
               "yaml.safe_load().");
  });
  TRITTER_RE(torch_re, R"re(\btorch\s*\.\s*load\s*\()re");
  TRITTER_RE(weights_only, R"re(\bweights_only\s*=\s*True\b)re");
  for_each_match(nh, torch_re, code, {"torch"}, [&](size_t b, const std::vector<Piece>& m) {
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (contains(call_args(code, open), weights_only)) return;
    e.emit("py.torch-load-unsafe", b,
           "torch.load() unpickles " + arg_snippet(code, open) +
               " without weights_only=True, which runs any code embedded in the checkpoint; pass weights_only=True "
               "or load safetensors.");
  });
  TRITTER_RE(
      tls_re,
      R"re(\b(verify\s*=\s*False|ssl\s*\.\s*_create_unverified_context|check_hostname\s*=\s*False|(?:verify_mode|cert_reqs)\s*=\s*(?:ssl\s*\.\s*)?CERT_NONE)\b)re");
  for_each_match(nh, tls_re, code, {"verif", "check_hostname", "CERT_NONE"}, [&](size_t b, const std::vector<Piece>& m) {
    if (const size_t open = enclosing_paren(code, b); open != std::string_view::npos && is_def(code, open)) return;
    std::string what(m[1].data(), m[1].size());
    what.erase(std::remove_if(what.begin(), what.end(), [](char c) { return c == ' ' || c == '\t'; }), what.end());
    e.emit("py.tls-verify-disabled", b,
           what +
               " turns off TLS certificate verification, so any man in the middle is accepted; keep "
               "verification on and pass a CA bundle if needed.");
  });
  TRITTER_RE(hash_re, R"re(\bhashlib\s*\.\s*(md5|sha1|md4|new)\s*\()re");
  TRITTER_RE(weak_name, R"re(^(?i)(md5|sha1|md4|sha)$)re");
  TRITTER_RE(not_security, R"re(\busedforsecurity\s*=\s*False\b)re");
  TRITTER_RE(name_kw, R"re(^\s*name\s*=\s*)re");
  for_each_match(nh, hash_re, code, {"hashlib", "md5", "Md5", "sha1", "Sha1"}, [&](size_t b, const std::vector<Piece>& m) {
    std::string fn(m[1].data(), m[1].size());
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (fn == "new") {
      size_t p = skip_space(code, open + 1);
      Piece kw;
      if (re2::RE2::PartialMatch(Piece(code.data() + p, std::min<size_t>(40, code.size() - p)), name_kw, &kw) ||
          code.substr(p, 4) == "name") {
        const size_t eq = code.find('=', p);
        if (eq != std::string_view::npos && eq < p + 12) p = skip_space(code, eq + 1);
      }
      const StringLiteral* s = lx.string_starting_at(p);
      if (!s) return;
      fn = text.substr(s->body.begin, s->body.end - s->body.begin);
      if (!contains(fn, weak_name)) return;
    }
    if (contains(call_args(code, open), not_security)) return;
    e.emit("py.weak-hash", b,
           "hashlib " + fn +
               " is broken for security use (collisions are practical); use sha256 or blake2, or "
               "pass usedforsecurity=False for checksums.");
  });
  // Other libraries' MD5/SHA-1: PyCryptodome (`MD5.new()`, `Crypto.Hash.SHA1.new()`), cryptography
  // (`hashes.MD5()`, `hashes.SHA1()`), and the Python 2 `md5`/`sha` modules.
  TRITTER_RE(lib_hash_re, R"re(\b(?:(MD5|MD4|MD2|SHA1|SHA)\s*\.\s*new|hashes\s*\.\s*(MD5|SHA1)|\b(md5|sha)\s*\.\s*new)\s*\()re");
  for_each_match(nh, lib_hash_re, code, {"MD5", "MD4", "MD2", "SHA", "md5", "sha"}, [&](size_t b, const std::vector<Piece>& m) {
    if (b > 0 && code[b - 1] == '.' && (b < 5 || code.substr(b - 5, 5) != "Hash.")) return;  // obj.SHA.new()
    std::string what = m[1].data() ? std::string(m[1].data(), m[1].size()) + ".new()"
                       : m[2].data() ? "hashes." + std::string(m[2].data(), m[2].size()) + "()"
                                     : std::string(m[3].data(), m[3].size()) + ".new()";
    e.emit("py.weak-hash", b,
           what + " is MD5/SHA-1, broken for security use (collisions are practical); use SHA-256 or BLAKE2.");
  });
  TRITTER_RE(tar_re, R"re(\.extractall\s*\()re");
  TRITTER_RE(filter_kw, R"re(\bfilter\s*=)re");
  if (nh.first(code, "tarfile") != std::string_view::npos)
    for_each_match(nh, tar_re, code, {"extractall"}, [&](size_t b, const std::vector<Piece>& m) {
      const size_t open = offset(code, m[0]) + m[0].size() - 1;
      if (contains(call_args(code, open), filter_kw)) return;
      e.emit("py.tarfile-extractall", b,
             "tarfile extractall() without filter= trusts member names, so '../' paths and links can write outside "
             "the target directory; pass filter='data'.");
    });
  TRITTER_RE(jinja_re, R"re(\bautoescape\s*=\s*False\b)re");
  for_each_match(nh, jinja_re, code, {"autoescape"}, [&](size_t b, const std::vector<Piece>&) {
    e.emit("py.jinja2-autoescape-off", b,
           "templates are rendered with autoescape=False, so user values are inserted as raw HTML (XSS); use "
           "autoescape=True or select_autoescape().");
  });
  // Django-style settings: TEMPLATES = [{..., "OPTIONS": {"autoescape": False}}]. The key is a string (masked in
  // `code`), so the match runs on the text and is kept only where `False` is code (not inside a comment).
  TRITTER_RE(dict_autoescape_re, R"re(["']autoescape["']\s*:\s*(False)\b)re");
  if (find_bytes(text, "autoescape") != std::string_view::npos)  // memchr would stop at every 'a'
    for_each_match(nh, dict_autoescape_re, text, {"autoescape"}, [&](size_t b, const std::vector<Piece>& m) {
      const size_t f = offset(text, m[1]);
      if (code.substr(f, 5) != "False") return;
      e.emit("py.jinja2-autoescape-off", b,
             "the template settings set \"autoescape\": False, so user values are inserted as raw HTML (XSS); "
             "leave autoescaping on and mark trusted values safe one by one.");
    });
  TRITTER_RE(mktemp_re, R"re(\btempfile\s*\.\s*mktemp\s*\()re");
  for_each_match(nh, mktemp_re, code, {"mktemp"}, [&](size_t b, const std::vector<Piece>&) {
    e.emit("py.tempfile-mktemp", b,
           "tempfile.mktemp() returns a name another process can create first (race); use "
           "tempfile.mkstemp() or NamedTemporaryFile().");
  });
}

void python_quality(const LexedSource& lx, const NeedleHits& nh, Emitter& e) {
  const std::string_view code = lx.code;
  TRITTER_RE(bare_re, R"re((?m)^[ \t]*(except)[ \t]*:)re");
  // Every match holds "except", then spaces or tabs, then ':' (most handlers name a class and cannot match).
  auto bare_colon = [](std::string_view w) {
    for (size_t k = w.find("except"); k != std::string_view::npos; k = w.find("except", k + 1)) {
      size_t p = k + 6;
      while (p < w.size() && (w[p] == ' ' || w[p] == '\t')) ++p;
      if (p < w.size() && w[p] == ':') return true;
    }
    return false;
  };
  for_each_match_with(nh, re2_where(bare_re, bare_colon), bare_re.NumberOfCapturingGroups() + 1, code, {"except"},
                      [&](size_t, const std::vector<Piece>& m) {
    e.emit("py.bare-except", offset(code, m[1]),
           "a bare except: also catches KeyboardInterrupt and SystemExit; catch the specific exception types.");
  });
  TRITTER_RE(
      pass_re,
      R"re((?m)^[ \t]*(except)(?:[ \t]+\(?[ \t]*(?:Exception|BaseException)\b[^:\n]*)?[ \t]*:[ \t]*\n?[ \t]*(pass|continue)\b)re");
  for_each_match_with(nh, re2_where(pass_re, has_pass_or_continue), pass_re.NumberOfCapturingGroups() + 1, code,
                      {"except"},
                      [&](size_t, const std::vector<Piece>& m) {
    e.emit("py.except-pass", offset(code, m[1]),
           "an exception handler that only does `" + std::string(m[2].data(), m[2].size()) +
               "` hides every error; handle, log or re-raise it.");
  });
  // A named exception class whose handler only passes: narrower than the above, still silent.
  TRITTER_RE(
      typed_pass_re,
      R"re((?m)^[ \t]*(except)[ \t]+\(?[ \t]*([A-Za-z_][\w.]*)[^:\n]*:[ \t]*(?:\n[ \t]*)?(pass|continue)[ \t]*$)re");
  for_each_match_with(nh, re2_where(typed_pass_re, has_pass_or_continue),
                      typed_pass_re.NumberOfCapturingGroups() + 1, code, {"except"},
                      [&](size_t, const std::vector<Piece>& m) {
    const std::string cls(m[2].data(), m[2].size());
    if (cls == "Exception" || cls == "BaseException") return;  // py.except-pass
    e.emit("py.except-pass-typed", offset(code, m[1]),
           "`except " + cls + ":` followed only by `" + std::string(m[3].data(), m[3].size()) +
               "` silently drops the error; say why in a comment, log it, or use contextlib.suppress(" + cls + ").");
  });
  // \bdef\s+(\w+)\s*\( (match_def), then the parameters' defaults.
  TRITTER_RE(mut_re, R"re((\w+)\s*(?::[^=,]*)?=\s*(\[|\{|(?:list|dict|set)\s*\(\s*\)))re");
  for_each_match_with(nh, match_def, 2, code, {"def"}, [&](size_t, const std::vector<Piece>& m) {
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    const std::string_view args = call_args(code, open);
    if (!may_have_mutable_default(args)) return;
    Piece g[3];
    if (!re2::RE2::PartialMatch(Piece(args.data(), args.size()), mut_re, &g[1], &g[2])) return;
    e.emit("py.mutable-default", offset(code, g[1]),
           "parameter `" + std::string(g[1].data(), g[1].size()) + "` of " + std::string(m[1].data(), m[1].size()) +
               "() defaults to a mutable " +
               (g[2][0] == '[' || g[2][0] == 'l' ? "list"
                : g[2][0] == 's'                 ? "set"
                                                 : "dict") +
               " that is shared by every call; default to None and create it inside.");
  });
  TRITTER_RE(is_re, R"re(\bis\s+(?:not\s+)?(?:[-+]?\d|[bBrRuU]{0,2}["'])|["']\s+is\s+(?:not\s+)?\w)re");
  for_each_match(nh, is_re, code, {"is ", "is\t"}, [&](size_t b, const std::vector<Piece>&) {
    e.emit("py.is-literal", b,
           "`is` compares identity, not value, against a literal; the result depends on interning. Use == or !=.");
  });
  TRITTER_RE(req_re, R"re(\brequests\s*\.\s*(get|post|put|delete|patch|head|options|request)\s*\()re");
  TRITTER_RE(timeout_kw, R"re(\btimeout\s*=)re");
  for_each_match(nh, req_re, code, {"requests"}, [&](size_t b, const std::vector<Piece>& m) {
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (contains(call_args(code, open), timeout_kw)) return;
    e.emit("py.requests-no-timeout", b,
           "requests." + std::string(m[1].data(), m[1].size()) +
               "() has no timeout=, so a stalled server blocks the caller forever; pass timeout=(connect, read).");
  });
}

bool rust_test_path(std::string_view path) {
  return path.find("/tests/") != std::string_view::npos || path.find("/benches/") != std::string_view::npos ||
         path.find("/examples/") != std::string_view::npos || path.ends_with("tests.rs") ||
         path.ends_with("_test.rs") || path.starts_with("tests/") || path.starts_with("examples/") ||
         path.starts_with("benches/");
}

void rust_rules(const LexedSource& lx, const NeedleHits& nh, std::string_view text, std::string_view path, Emitter& e) {
  const std::string_view code = lx.code;
  TRITTER_RE(unsafe_re, R"re(\bunsafe\s*\{)re");
  for_each_match(nh, unsafe_re, code, {"unsafe"}, [&](size_t b, const std::vector<Piece>&) {
    // A "SAFETY:" comment on this line or within the three lines above (clippy's rule is similar).
    size_t start = b;
    for (int lines = 0; start > 0 && lines < 4; --start)
      if (text[start - 1] == '\n') ++lines;
    std::string window = to_lower_ascii(text.substr(start, b - start));
    if (window.find("safety:") != std::string::npos) return;
    e.emit("rs.unsafe-undocumented", b,
           "an unsafe block has no `// SAFETY:` comment stating why its invariants hold; document them or use a "
           "safe API.");
  });
  TRITTER_RE(transmute_re,
             R"re(\b(?:mem\s*::\s*)?(transmute(?:_copy)?)\s*(?:::\s*<(?:[^;{}\[\]]|\[[^\[\]{}]*\])*?>\s*)?\()re");
  for_each_match(nh, transmute_re, code, {"transmute"}, [&](size_t b, const std::vector<Piece>& m) {
    if (b >= 3 && code.substr(b - 3, 3) == "fn ") return;
    e.emit("rs.transmute", b,
           "mem::" + std::string(m[1].data(), m[1].size()) +
               " reinterprets bits with no checks on size, alignment or validity; prefer from_ne_bytes, "
               "bytemuck or an explicit conversion.");
  });
  TRITTER_RE(forget_re, R"re(\bmem\s*::\s*forget\s*\()re");
  for_each_match(nh, forget_re, code, {"forget"}, [&](size_t b, const std::vector<Piece>&) {
    e.emit("rs.mem-forget", b,
           "mem::forget leaks the value and skips its destructor (locks, files); use ManuallyDrop if that is "
           "really intended.");
  });
  TRITTER_RE(raw_parts_re, R"re(\b(from_raw_parts(?:_mut)?)\s*\()re");
  for_each_match(nh, raw_parts_re, code, {"from_raw_parts"}, [&](size_t b, const std::vector<Piece>& m) {
    if (b >= 3 && code.substr(b - 3, 3) == "fn ") return;
    e.emit("rs.from-raw-parts", b,
           std::string(m[1].data(), m[1].size()) +
               " trusts the pointer, length and lifetime it is given; a wrong one is undefined behaviour.");
  });
  TRITTER_RE(
      tls_re,
      R"re((danger_accept_invalid_(?:certs|hostnames)\s*\(\s*true\s*\)|set_verify\s*\(\s*(?:\w+::)*SslVerifyMode::NONE|\.dangerous\s*\(\s*\)|with_custom_certificate_verifier\s*\(|set_certificate_verifier\s*\(|ServerCertVerified\s*::\s*assertion\s*\(|impl\s+(?:[\w:]+::)?ServerCertVerifier\s+for\s+\w+))re");
  for_each_match(nh, 
      tls_re, code, {"danger_accept", "SslVerifyMode", "dangerous", "certificate_verifier", "ServerCertVerifi"},
      [&](size_t b, const std::vector<Piece>& m) {
        std::string what(m[1].data(), std::min<size_t>(m[1].size(), 40));
        what.resize(std::min(what.size(), what.find('(')));
        what.insert(what.begin(), '`');
        e.emit("rs.tls-verify-disabled", b,
               what + "` disables TLS certificate or hostname verification; any man in the middle is accepted.");
      });
  TRITTER_RE(cmd_re, R"re(\bCommand\s*::\s*new\s*\(\s*)re");
  TRITTER_RE(shell_name, R"re(^(?:sh|bash|zsh|dash|cmd|cmd\.exe|powershell|pwsh|/bin/sh|/bin/bash|/usr/bin/env)$)re");
  TRITTER_RE(dynamic_arg, R"re((format!|\.args?\s*\(\s*[A-Za-z_&]))re");
  for_each_match(nh, cmd_re, code, {"Command"}, [&](size_t b, const std::vector<Piece>& m) {
    const StringLiteral* s = lx.string_starting_at(offset(code, m[0]) + m[0].size());
    if (!s) return;
    const std::string_view prog = text.substr(s->body.begin, s->body.end - s->body.begin);
    if (!contains(prog, shell_name)) return;
    size_t end = code.find(';', s->whole.end);
    if (end == std::string_view::npos) end = code.size();
    bool dash_c = false;
    for (const auto& lit : lx.strings) {
      if (lit.whole.begin < s->whole.end || lit.whole.begin >= end) continue;
      const std::string_view body = text.substr(lit.body.begin, lit.body.end - lit.body.begin);
      dash_c |= body == "-c" || body == "/C" || body == "/c" || body == "-Command";
    }
    if (!dash_c || !contains(code.substr(s->whole.end, end - s->whole.end), dynamic_arg)) return;
    e.emit("rs.shell-command", b,
           "Command::new(\"" + std::string(prog) +
               "\") runs a command line built at run time through a shell; call the program directly with "
               ".arg() per argument.");
  });
  TRITTER_RE(hash_re, R"re(\b(md5::compute|Md5::new|Md5::default|Sha1::new|Sha1::default|sha1::Sha1|md5::Md5)\b)re");
  for_each_match(nh, hash_re, code, {"hashlib", "md5", "Md5", "sha1", "Sha1"}, [&](size_t b, const std::vector<Piece>& m) {
    e.emit("rs.weak-hash", b,
           std::string(m[1].data(), m[1].size()) +
               " is a broken hash for security use; use SHA-256/BLAKE3, or document that it is only a checksum.");
  });
  // Quality: panics and leftovers, outside test code (#[cfg(test)] modules usually close the file).
  size_t test_from = code.size();
  if (rust_test_path(path))
    test_from = 0;
  else if (size_t t = nh.first(code, "#[cfg(test)]"); t != std::string_view::npos)
    test_from = t;
  TRITTER_RE(unwrap_re, R"re(\.(unwrap|expect)\s*\()re");
  for_each_match(nh, unwrap_re, code.substr(0, test_from), {".unwrap", ".expect"},
                 [&](size_t b, const std::vector<Piece>& m) {
                   const std::string fn(m[1].data(), m[1].size());
                   e.emit(fn == "unwrap" ? "rs.unwrap" : "rs.expect", b + 1,
                          "." + fn + "() panics on None/Err outside tests; propagate the error with `?` or handle it.");
                 });
  TRITTER_RE(todo_re, R"re(\b(todo|unimplemented|dbg)!\s*[\(\[\{])re");
  for_each_match(nh, todo_re, code.substr(0, test_from), {"todo!", "unimplemented!", "dbg!"},
                 [&](size_t b, const std::vector<Piece>& m) {
                   const std::string mac(m[1].data(), m[1].size());
                   e.emit(mac == "dbg" ? "rs.dbg" : "rs.todo", b,
                          mac + "!() is left in non-test code" +
                              (mac == "dbg" ? std::string("; it prints to stderr in release builds.")
                                            : std::string(" and panics when reached.")));
                 });
}

void triton_rules(const LexedSource& lx, const NeedleHits& nh, Emitter& e) {
  const std::string_view code = lx.code;
  TRITTER_RE(access_re, R"re(\btl\s*\.\s*(load|store)\s*\()re");
  TRITTER_RE(masked, R"re(\b(mask|boundary_check)\s*=)re");
  for_each_match(nh, access_re, code, {"tl."}, [&](size_t b, const std::vector<Piece>& m) {
    const size_t open = offset(code, m[0]) + m[0].size() - 1;
    if (contains(call_args(code, open), masked)) return;
    e.emit("triton.unmasked-access", b,
           "tl." + std::string(m[1].data(), m[1].size()) +
               "() has no mask= (or boundary_check=), so the last block reads or writes past the tensor unless its "
               "size is a multiple of the block size.");
  });
}

}  // namespace

std::vector<Label> label_python(std::string_view text) {
  std::vector<Label> out;
  const LexedSource lx = lex_python(text);
  NeedleHits& nh = thread_needle_hits();
  nh.scan(lx.code);
  Emitter e(text, out);
  python_security(lx, nh, text, e);
  python_quality(lx, nh, e);
  return out;
}

std::vector<Label> label_rust(std::string_view text, std::string_view path) {
  std::vector<Label> out;
  const LexedSource lx = lex_rust(text);
  NeedleHits& nh = thread_needle_hits();
  nh.scan(lx.code);
  Emitter e(text, out);
  rust_rules(lx, nh, text, path, e);
  return out;
}

std::vector<Label> label_triton(std::string_view text) {
  std::vector<Label> out;
  const LexedSource lx = lex_python(text);
  NeedleHits& nh = thread_needle_hits();
  nh.scan(lx.code);
  Emitter e(text, out);
  triton_rules(lx, nh, e);
  return out;
}

std::vector<TritonKernel> find_triton_kernels(std::string_view text) {
  std::vector<TritonKernel> out;
  const std::string code = lex_python(text).code;
  const NeedleHits nh;  // not scanned: "@triton" is found by find_needle
  TRITTER_RE(kernel_re,
             R"re((?m)^[ \t]*@triton\s*\.\s*jit\b[^\n]*\n(?:[ \t]*(?:@|#)[^\n]*\n|[ \t]*\n)*[ \t]*def\s+(\w+))re");
  for_each_match(nh, 
      kernel_re, code, {"@triton"},
      [&](size_t, const std::vector<Piece>& m) {
        out.push_back({std::string(m[1].data(), m[1].size()), line_col(text, offset(code, m[1])).line});
      },
      /*lines_after=*/16);
  return out;
}

namespace {
bool contains_bytes(std::string_view hay, std::string_view needle) {
  return find_bytes(hay, needle) != std::string_view::npos;
}
}  // namespace

bool has_generated_header(std::string_view text) {
  const std::string head = to_lower_ascii(text.substr(0, 1024));
  for (std::string_view marker : {"@generated", "do not edit", "auto-generated", "autogenerated", "generated by",
                                  "automatically generated", "code generated"})
    if (contains_bytes(head, marker)) return true;
  return false;
}

LabelResult label_document(std::string_view text, std::string_view language, std::string_view path,
                           const QualityConfig& config) {
  LabelResult r;
  std::vector<Label> all;
  if (language == "python") {
    all = label_python(text);
    if (contains_bytes(text, "triton")) {
      auto t = label_triton(text);
      all.insert(all.end(), t.begin(), t.end());
    }
  } else if (language == "rust") {
    all = label_rust(text, path);
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Label& a, const Label& b) { return a.line != b.line ? a.line < b.line : a.col < b.col; });
  std::map<std::string, size_t> first;  // rule -> index in r.labels
  for (const auto& l : all) {
    auto [it, fresh] = first.emplace(l.rule, r.labels.size());
    if (fresh) {
      r.labels.push_back(l);
      r.counts.push_back(1);
    } else {
      ++r.counts[it->second];
    }
  }
  r.occurrences = std::move(all);
  // File-level signals.
  const LineStats st = line_stats(text);
  const size_t lines = st.lines, max_line = st.max_line, alnum = st.alnum;
  if (has_generated_header(text)) r.flags.push_back("generated");
  if (max_line > config.max_line_length) r.flags.push_back("long-lines");
  if (lines > 0 && double(text.size()) / double(lines) > config.minified_mean_line) r.flags.push_back("minified");
  if (!text.empty() && double(alnum) / double(text.size()) < config.min_alnum_fraction) r.flags.push_back("low-alnum");
  if (text.size() > config.huge_file_bytes) r.flags.push_back("huge-file");
  // Score: multiplicative per distinct rule by severity and kind, and per file flag (docs/curation.md).
  double s = 1.0;
  for (const auto& l : r.labels) {
    const bool sec = l.kind == "security";
    if (l.severity == "high")
      s *= sec ? 0.5 : 0.7;
    else if (l.severity == "medium")
      s *= sec ? 0.7 : 0.85;
    else if (l.severity == "low")
      s *= sec ? 0.9 : 0.95;
  }
  for (size_t i = 0; i < r.flags.size(); ++i) s *= 0.8;
  r.score = std::clamp(s, 0.0, 1.0);
  for (size_t i = 0; i < r.labels.size(); ++i)
    if (r.counts[i] > 1) r.labels[i].explanation += " (" + std::to_string(r.counts[i]) + " occurrences)";
  return r;
}

}  // namespace tritter::data
