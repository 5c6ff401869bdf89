// The secret rule table and the two-engine scan: Hyperscan finds which rules fire in one pass (most documents:
// none), RE2 re-runs only those rules to capture the secret for the entropy and placeholder checks.
// Rule sources: gitleaks config/gitleaks.toml, secretlint preset-recommend, detect-secrets plugins.
#include "data/secrets.h"

#include <hs/hs.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "data/document.h"
#include "data/util.h"
#include "io/atomic_file.h"

namespace tritter::data {

const std::vector<SecretRule>& generic_secret_rules();

// Assignment of generic rules: an optional type annotation (`: &str`, `: str`), then `=`, `:`, `:=`, `=>` or `==`,
// then an optional string prefix and the opening quote.
#define TRITTER_ASSIGN R"re(["']?[ \t]*(?::[ \t]*&?'?[\w<>]{1,30}[ \t]*)?(?::=|=>|==|=|:)[ \t]*[bruBRU]?["'])re"
// Unquoted assignment: `KEY=value` (.env, shell), `key: value` (YAML), `key = value` (ini, TOML, .npmrc); the value
// runs to the end of the line (or `;`, `,`, `#` after a space) and holds no quote, bracket or call syntax.
#define TRITTER_ASSIGN_BARE R"re(["']?[ \t]*(?::=|=|:)[ \t]*)re"
#define TRITTER_BARE_VALUE R"re(([^\s"'`<>()\[\]{},;=]{6,400}))re"
#define TRITTER_BARE_END R"re((?:[ \t]*(?:[\r\n;,]|[ \t]#|$)))re"
// The names of the generic rules: password-like, and secret-like (names ending in _key, -key, Key, _pw included).
#define TRITTER_PASSWORD_NAME R"re((?i)\b([\w.-]{0,40}(?:password|passwd|passphrase|pwd|[_.-]pw|[_.-]pass)[\w-]{0,20}))re"
#define TRITTER_SECRET_NAME \
  R"re((?i)\b([\w.-]{0,40}(?:api_?key|apikey|access_?key|auth_?key|secret_?key|client_?secret|private_?key|secret|token|credentials?|[_.-]key|(?-i:[a-z0-9]Key))[\w-]{0,20}))re"

const std::vector<SecretRule>& secret_rules() {
  const auto& generic = generic_secret_rules();
  static const std::vector<SecretRule> specific = {
      {"private-key",
       R"re(-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[^A-Za-z0-9+/=]{0,20}(?:[A-Za-z-]{3,20}: [^\r\n]{0,100}[^A-Za-z0-9+/=]{1,20}){0,4}([A-Za-z0-9+/=]{40,}))re",
       1, 0, 3.5, "PEM/OpenSSH/PGP private key block"},
      {"aws-access-key-id", R"re(\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b)re", 1, 0, 3.0,
       "AWS access key id"},
      {"aws-secret-access-key",
       R"re((?i)aws_?(?:secret)_?(?:access_?)?_?key["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?([A-Za-z0-9/+=]{40})\b)re", 1, 0,
       3.5, "AWS secret access key"},
      {"gcp-api-key", R"re(\b(AIza[0-9A-Za-z_-]{35})\b)re", 1, 0, 3.0, "Google Cloud / Firebase API key"},
      {"gcp-service-account-key", R"re("private_key_id"[ \t]*:[ \t]*"([a-f0-9]{40})")re", 1, 0, 3.0,
       "GCP service-account key file"},
      {"gcp-oauth-client-secret", R"re(\b(GOCSPX-[A-Za-z0-9_-]{28})\b)re", 1, 0, 3.0, "Google OAuth client secret"},
      {"azure-storage-account-key", R"re((?i)AccountKey=([A-Za-z0-9+/]{86}==))re", 1, 0, 4.0,
       "Azure storage account key"},
      {"azure-ad-client-secret",
       R"re((?:^|[\\'"\x60\s>=:(,)])([a-zA-Z0-9_~.]{3}[0-9]Q~[a-zA-Z0-9_~.-]{31,34})(?:$|[\\'"\x60\s<),]))re", 1, 0,
       3.0, "Azure AD client secret"},
      {"github-pat", R"re(\b(gh[pousr]_[A-Za-z0-9]{36})\b)re", 1, 0, 3.0,
       "GitHub token (personal, OAuth, user-to-server, server-to-server, refresh)"},
      {"github-fine-grained-pat", R"re(\b(github_pat_[A-Za-z0-9_]{82})\b)re", 1, 0, 3.0, "GitHub fine-grained token"},
      {"gitlab-token",
       R"re(\b(gl(?:pat|dt|rt|soat|ffct|ft)-[A-Za-z0-9_-]{20}|glptt-[0-9a-f]{40}|glimt-[A-Za-z0-9_-]{25}|glagent-[A-Za-z0-9_-]{50}|gloas-[A-Za-z0-9_-]{64}|glcbt-[0-9a-zA-Z]{1,5}_[0-9a-zA-Z_-]{20}|gl(?:pat|rt)-[0-9a-zA-Z_-]{27,300}\.[0-9a-z]{2}[0-9a-z]{7})(?:[^A-Za-z0-9_-]|$))re",
       1, 0, 3.0, "GitLab access, trigger, deploy, runner, agent, OAuth-app or CI job token"},
      {"gitlab-runner-registration-token", R"re(\b(GR1348941[A-Za-z0-9_-]{20})\b)re", 1, 0, 3.0,
       "GitLab runner registration token"},
      {"bitbucket-app-password", R"re(\b(ATBB[A-Za-z0-9_=.-]{32,})\b)re", 1, 0, 3.0, "Bitbucket app password"},
      {"bitbucket-client-secret",
       R"re((?i)bitbucket[\w.-]{0,20}(?:secret|token|key)[\w.-]{0,10})re" TRITTER_ASSIGN
       R"re(([A-Za-z0-9_=-]{32,64})["'])re",
       1, 0, 3.5, "Bitbucket client secret"},
      {"slack-token", R"re(\b(xox[baprsoe]-(?:[0-9]{10,13}-)+[A-Za-z0-9-]{8,})\b)re", 1, 0, 3.0, "Slack token"},
      {"slack-webhook-url",
       R"re((hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9]{8,}/[A-Za-z0-9]{8,}/[A-Za-z0-9]{16,}))re", 1,
       0, 3.0, "Slack incoming webhook"},
      {"discord-webhook-url", R"re((discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,68}))re", 1, 0, 3.0,
       "Discord webhook"},
      {"discord-bot-token", R"re(\b([MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38})\b)re", 1, 0, 3.5,
       "Discord bot token"},
      {"telegram-bot-token", R"re(\b([0-9]{8,10}:AA[0-9A-Za-z_-]{33})\b)re", 1, 0, 3.0, "Telegram bot token"},
      {"stripe-key", R"re(\b((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,99})\b)re", 1, 0, 3.0,
       "Stripe secret/restricted key"},
      {"twilio-api-key", R"re(\b(SK[0-9a-fA-F]{32})\b)re", 1, 0, 3.0, "Twilio API key"},
      {"sendgrid-api-key", R"re(\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})\b)re", 1, 0, 3.0, "SendGrid API key"},
      {"mailgun-api-key", R"re(\b(key-[0-9a-f]{32})\b)re", 1, 0, 3.0, "Mailgun API key"},
      {"mailchimp-api-key", R"re(\b([0-9a-f]{32}-us[0-9]{1,2})\b)re", 1, 0, 3.0, "Mailchimp API key"},
      {"openai-api-key",
       R"re(\b(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48}))(?:[^A-Za-z0-9_-]|$))re",
       1, 0, 3.0, "OpenAI API key"},
      {"anthropic-api-key", R"re(\b(sk-ant-(?:api|admin|sid)[0-9]{2}-[A-Za-z0-9_-]{32,}))re", 1, 0, 3.0,
       "Anthropic API key"},
      {"huggingface-token", R"re(\b((?:hf_|api_org_)[A-Za-z]{34})\b)re", 1, 0, 3.0, "Hugging Face access token"},
      {"npm-access-token", R"re(\b(npm_[A-Za-z0-9]{36})\b)re", 1, 0, 3.0, "npm access token"},
      {"pypi-upload-token", R"re((pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}))re", 1, 0, 3.0, "PyPI upload token"},
      {"shopify-token", R"re(\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b)re", 1, 0, 3.0, "Shopify token"},
      {"digitalocean-token", R"re(\b(do[opr]_v1_[a-f0-9]{64})\b)re", 1, 0, 3.0, "DigitalOcean token"},
      {"age-secret-key", R"re((AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}))re", 1, 0, 3.0,
       "age secret key"},
      {"jwt", R"re(\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]{10,}|\.)?)(?:[^A-Za-z0-9_-]|$))re", 1, 0,
       3.0, "JSON Web Token"},
  };
  static const std::vector<SecretRule> rules = [&] {
    std::vector<SecretRule> all = specific;
    const auto& vendor = vendor_secret_rules();
    all.insert(all.end(), vendor.begin(), vendor.end());
    all.insert(all.end(), generic.begin(), generic.end());
    return all;
  }();
  return rules;
}

// URL credentials and the generic assignment rules: last, so a specific rule names a secret first.
const std::vector<SecretRule>& generic_secret_rules() {
  static const std::vector<SecretRule> rules = {
      {"database-connection-string",
       R"re(\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|cockroachdb)(?:\+[a-z0-9]+)?://[^\s:/@'"]{1,64}:([^\s:/@'"]{3,128})@[A-Za-z0-9._-]+)re",
       1, 0, 1.5, "database URL with an embedded password", true},
      {"basic-auth-url",
       R"re(\b(?:https?|ftp|ftps|sftp|ssh|git)://[^\s:/@'"]{1,64}:([^\s:/@'"]{3,128})@[A-Za-z0-9._-]+)re", 1, 0, 1.5,
       "URL with embedded credentials", true},
      {"generic-password", TRITTER_PASSWORD_NAME TRITTER_ASSIGN R"re(([^"'\s]{6,200})["'])re", 2, 1, 2.5,
       "hard-coded password assignment"},
      {"generic-api-key", TRITTER_SECRET_NAME TRITTER_ASSIGN R"re(([A-Za-z0-9+/=_.~!@#$%^&*-]{10,1000})["'])re", 2, 1,
       3.5, "hard-coded high-entropy secret assignment"},
      {"generic-password", TRITTER_PASSWORD_NAME TRITTER_ASSIGN_BARE TRITTER_BARE_VALUE TRITTER_BARE_END, 2, 1, 2.5,
       "hard-coded password, unquoted (.env, YAML, ini, shell)"},
      {"generic-api-key", TRITTER_SECRET_NAME TRITTER_ASSIGN_BARE TRITTER_BARE_VALUE TRITTER_BARE_END, 2, 1, 3.5,
       "hard-coded secret, unquoted (.env, YAML, ini, .npmrc, shell)"},
      {"generic-api-key",
       R"re((?i)(?:^|\s)--?([\w-]{0,30}(?:api-?key|token|secret|password|passwd|auth-key|access-key)[\w-]{0,10})(?:[ \t]+|=))re" TRITTER_BARE_VALUE R"re((?:[ \t\r\n;]|$))re",
       2, 1, 3.5, "secret passed as a command-line option (--api-key VALUE)"},
  };
  return rules;
}

#undef TRITTER_ASSIGN
#undef TRITTER_ASSIGN_BARE
#undef TRITTER_BARE_VALUE
#undef TRITTER_BARE_END
#undef TRITTER_PASSWORD_NAME
#undef TRITTER_SECRET_NAME

namespace {

bool contains_ci(std::string_view haystack_lower, std::string_view needle) {
  return haystack_lower.find(needle) != std::string_view::npos;
}

// detect-secrets' sequential-string filter: the whole value is one run of a keyboard sequence ("abcdefgh",
// "12345678", "0123456789abcdef", "ABCDEF0123"). A value that merely contains runs (a hex key) is not one.
bool is_sequential(std::string_view v) {
  if (v.size() < 6) return false;
  auto step_ok = [](char a, char b) {
    return b == a + 1 || (a == '9' && (b == 'a' || b == 'A')) || ((a == 'z' || a == 'Z' || a == 'f' || a == 'F') && b == '0');
  };
  for (size_t i = 1; i < v.size(); ++i)
    if (!step_ok(v[i - 1], v[i])) return false;
  return true;
}

// `{NAME}`, `{name.field}`: a single-brace template slot (str.format, Rust format!, many config templaters).
bool has_brace_template(std::string_view v) {
  for (size_t open = v.find('{'); open != std::string_view::npos; open = v.find('{', open + 1)) {
    size_t i = open + 1;
    while (i < v.size() && (std::isalnum(static_cast<unsigned char>(v[i])) || v[i] == '_' || v[i] == '.' || v[i] == '-'))
      ++i;
    if (i > open + 1 && i < v.size() && v[i] == '}') return true;
  }
  return false;
}

// An unquoted value that is a code identifier rather than key material: snake/kebab-case words with at most a
// trailing number (`user_password2`, `db-pass`), or dotted attribute access (`self.password`, `cfg.api_key`).
bool looks_like_identifier(std::string_view v) {
  // Dotted attribute access or a module path: every segment an identifier (`win32api.RegOpenKeyEx`).
  if (v.find('.') != std::string_view::npos) {
    bool all_idents = true;
    for (size_t b = 0; b <= v.size() && all_idents;) {
      const size_t e = std::min(v.find('.', b), v.size());
      const std::string_view seg = v.substr(b, e - b);
      all_idents = !seg.empty() && !std::isdigit(static_cast<unsigned char>(seg[0])) &&
                   std::all_of(seg.begin(), seg.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
      b = e + 1;
    }
    if (all_idents) return true;
  }
  size_t digits = 0;
  bool sep = false;
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (c == '_' || c == '-' || c == '.') {
      sep = true;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      ++digits;
      // A digit followed by a letter inside a word: mixed key material ("Xq7vR2").
      if (i + 1 < v.size() && std::isalpha(static_cast<unsigned char>(v[i + 1]))) return false;
      continue;
    }
    if (!std::isalpha(static_cast<unsigned char>(c))) return false;
  }
  return sep && digits <= 3;
}

// Names that hold something *about* a secret, not the secret (detect-secrets' id-like filter).
bool is_benign_name(std::string_view name_lower) {
  static constexpr std::array<std::string_view, 24> kSuffixes = {
      "_id",      "_name",  "_type",  "_file",   "_path", "_url",   "_uri",      "_len",
      "_length",  "_size",  "_field", "_header", "_env",  "_var",   "_format",   "_prefix",
      "_pattern", "_regex", "_class", "_count",  "_kind", "_label", "_key_name", "_endpoint"};
  // Keys that name a place in a data structure, or the public half of a pair.
  static constexpr std::array<std::string_view, 16> kKeyKinds = {
      "public_key", "primary_key", "foreign_key", "sort_key",  "cache_key", "partition_key", "hash_key", "row_key",
      "range_key",  "lookup_key",  "dict_key",    "group_key", "map_key",   "publickey",     "_version", "_expiry"};
  for (auto s : kKeyKinds)
    if (ends_with(name_lower, s)) return true;
  for (auto s : kSuffixes)
    if (ends_with(name_lower, s)) return true;
  return name_lower.find("token_type") != std::string_view::npos || name_lower.starts_with("tokenizer") ||
         name_lower.find("tokens") != std::string_view::npos;
}

// Generic assignments must look like key material: letters and digits, not a module path or a sentence. An
// all-digit value counts when it is long enough to be a client secret or PIN (entropy is checked separately).
bool looks_like_key_material(std::string_view v) {
  bool digit = false, alpha = false;
  for (char c : v) {
    digit |= std::isdigit(static_cast<unsigned char>(c)) != 0;
    alpha |= std::isalpha(static_cast<unsigned char>(c)) != 0;
  }
  if (digit && !alpha) return v.size() >= 6 && std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (!digit || !alpha) return false;
  if (v.find("://") != std::string_view::npos || v.front() == '/' || v.front() == '.') return false;
  // Dotted identifiers ("django.db.backends.postgresql", "pkg.module.Class").
  int dots = int(std::count(v.begin(), v.end(), '.'));
  if (dots >= 1 && dots * 12 >= int(v.size())) return false;
  return true;
}

// `scheme://user:password@host`: a password equal to the user or the scheme name on a local host is a
// development default (postgres://postgres:postgres@localhost), not a credential.
bool url_password_is_default(std::string_view url, std::string_view password) {
  const size_t colon_slash = url.find("://");
  if (colon_slash == std::string_view::npos) return false;
  std::string scheme = to_lower_ascii(url.substr(0, colon_slash));
  if (const size_t plus = scheme.find('+'); plus != std::string::npos) scheme.resize(plus);
  const size_t user_begin = colon_slash + 3;
  const size_t user_end = url.find(':', user_begin);
  const size_t at = url.find('@', user_begin);
  if (user_end == std::string_view::npos || at == std::string_view::npos) return false;
  const std::string user = to_lower_ascii(url.substr(user_begin, user_end - user_begin));
  const std::string host = to_lower_ascii(url.substr(at + 1));
  const bool local = host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("0.0.0.0") ||
                     host.starts_with("host.docker.internal");
  const std::string pw = to_lower_ascii(password);
  return local && (pw == user || pw == scheme || scheme.starts_with(pw));
}

// The JWT header must decode (base64url) to JSON naming an algorithm or type.
bool jwt_header_ok(std::string_view token) {
  const size_t dot = token.find('.');
  std::string_view h = token.substr(0, dot);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : h) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else
      return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  return out.find("\"alg\"") != std::string::npos || out.find("\"typ\"") != std::string::npos;
}

}  // namespace

bool is_placeholder_secret(std::string_view value) {
  if (value.empty()) return true;
  // Published example values (RFC 6749 §4.1.4/§5.1 tokens, the jwt.io sample signature, AWS documentation keys):
  // they appear in docstrings of real libraries and are not anyone's credentials.
  static constexpr std::array<std::string_view, 6> kPublicExamples = {"2YotnFZFEjr1zCsicMWpAA",
                                                                      "tGzv3JOkF0XG5Qx2TlKWIA",
                                                                      "8xLOxBtZp8",
                                                                      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
                                                                      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                                                      "AKIAIOSFODNN7EXAMPLE"};
  for (auto e : kPublicExamples)
    if (value.find(e) != std::string_view::npos) return true;
  const std::string v = to_lower_ascii(value);
  static constexpr std::array<std::string_view, 26> kMarkers = {
      "${",       "{{",      "}}",     "<",           ">",      "%(",      "$(",          "example",   "xxxx",
      "****",     "...",     "your",   "placeholder", "dummy",  "fake",    "sample",      "changeme",  "change_me",
      "redacted", "replace", "insert", "todo",        "getenv", "environ", "secret_here", "0000000000"};
  for (auto m : kMarkers)
    if (contains_ci(v, m)) return true;
  if (v.front() == '$' || v.front() == '%') return true;  // $VAR, %VAR%
  if (has_brace_template(value)) return true;
  if (std::all_of(v.begin(), v.end(), [&](char c) { return c == v.front(); })) return true;
  static constexpr std::array<std::string_view, 9> kWords = {"password", "passwd", "secret", "hunter2", "test",
                                                             "admin",    "root",   "pass",   "null"};
  for (auto w : kWords)
    if (v == w || v == std::string(w) + "123") return true;
  if (v.starts_with("password") || v.starts_with("secret")) return true;
  return is_sequential(value);
}

struct SecretScanner::Impl {
  hs_database_t* db = nullptr;
  // RE2 confirmers, compiled on a rule's first Hyperscan hit: compiling all ~170 up front was ~0.04 s of every
  // run (more than scanning 10 MB), and most rules never fire on a given corpus.
  std::unique_ptr<std::unique_ptr<re2::RE2>[]> regexes;
  std::unique_ptr<std::once_flag[]> compiled;
  re2::RE2::Options options;
  bool from_cache = false;
  ~Impl() {
    if (db) hs_free_database(db);
  }
  const re2::RE2& regex(size_t r);
};

namespace {

// The Hyperscan form of a rule: every bounded repeat `{m,n}` / `{m}` becomes `{min(m,4),}`. That is a superset
// of the rule (RE2 confirms every hit and captures the secret), and it keeps Hyperscan from unrolling hundreds of
// bounded repeats: the ~170 rules compile in about a second instead of several.
std::string hyperscan_prefilter(std::string_view p) {
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      out += p[i];
      if (i + 1 < p.size()) out += p[++i];
      continue;
    }
    if (p[i] == '{') {
      size_t j = i + 1;
      while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j]))) ++j;
      const size_t close = p.find('}', j);
      if (j > i + 1 && j < p.size() && (p[j] == '}' || p[j] == ',') && close != std::string_view::npos) {
        const int m = std::stoi(std::string(p.substr(i + 1, j - i - 1)));
        out += "{" + std::to_string(std::min(m, 4)) + ",}";
        i = close;
        continue;
      }
    }
    out += p[i];
  }
  return out;
}

}  // namespace

// The RE2 form of a rule: upper bounds of 100 or more are dropped (`{10,1000}` -> `{10,}`). RE2 expands a bounded
// repeat into one instruction per count, which made the DFA of the generic rules slow to build and to run; the
// captured secret is capped at kMaxSecret bytes after the match instead.
constexpr size_t kMaxSecret = 1000;
std::string re2_form(std::string_view p) {
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      out += p[i];
      if (i + 1 < p.size()) out += p[++i];
      continue;
    }
    if (p[i] == '{') {
      const size_t comma = p.find(',', i), close = p.find('}', i);
      if (comma != std::string_view::npos && close != std::string_view::npos && comma < close && close - comma > 1 &&
          std::all_of(p.begin() + long(i) + 1, p.begin() + long(comma), [](char c) { return c >= '0' && c <= '9'; }) &&
          std::all_of(p.begin() + long(comma) + 1, p.begin() + long(close), [](char c) { return c >= '0' && c <= '9'; }) &&
          std::stoi(std::string(p.substr(comma + 1, close - comma - 1))) >= 100) {
        out += p.substr(i, comma - i + 1);
        out += '}';
        i = close;
        continue;
      }
    }
    out += p[i];
  }
  return out;
}

namespace {

// The cache key: SHA-256 over Hyperscan's version, the platform it compiles for (CPU features decide the
// generated code) and every pattern with its flags, in order.
std::array<uint8_t, 32> hs_cache_key(const std::vector<std::string>& patterns, const std::vector<unsigned>& flags) {
  std::string material = "tritter-secrets-hsdb/2\n";
  material += hs_version();
  material += '\n';
  hs_platform_info_t platform{};
  if (hs_populate_platform(&platform) == HS_SUCCESS)
    material.append(reinterpret_cast<const char*>(&platform), sizeof(platform));
  for (size_t i = 0; i < patterns.size(); ++i) {
    material += std::to_string(flags[i]) + ":" + std::to_string(patterns[i].size()) + ":";
    material += patterns[i];
  }
  return sha256(material);
}

// Cache file: magic (8 bytes), key (32), blob size (8, little-endian), XXH3-128 of the blob (16), the blob
// (hs_serialize_database's bytes). The checksum guards against a torn or corrupted file, not an attacker (whoever
// can write the cache can write the program); SHA-256 over the ~1 MB blob was ~5 ms of every run.
constexpr std::string_view kCacheMagic = "TRHSDB2\n";
constexpr size_t kCacheHeader = 8 + 32 + 8 + 16;

std::array<uint8_t, 16> blob_checksum(std::string_view blob) {
  const XXH128_hash_t h = XXH3_128bits(blob.data(), blob.size());
  std::array<uint8_t, 16> out{};
  for (int i = 0; i < 8; ++i) {
    out[size_t(i)] = uint8_t(h.low64 >> (8 * i));
    out[size_t(8 + i)] = uint8_t(h.high64 >> (8 * i));
  }
  return out;
}

hs_database_t* load_cached_db(const std::filesystem::path& file, const std::array<uint8_t, 32>& key) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return nullptr;
  std::string bytes;
  try {
    bytes = read_file_bytes(file);
  } catch (const Error&) {
    return nullptr;
  }
  if (bytes.size() < kCacheHeader || std::string_view(bytes).substr(0, 8) != kCacheMagic ||
      std::memcmp(bytes.data() + 8, key.data(), 32) != 0)
    return nullptr;
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size |= uint64_t(uint8_t(bytes[size_t(40 + i)])) << (8 * i);
  if (size != bytes.size() - kCacheHeader) return nullptr;
  const std::string_view blob = std::string_view(bytes).substr(kCacheHeader);
  if (std::memcmp(blob_checksum(blob).data(), bytes.data() + 48, 16) != 0) return nullptr;
  hs_database_t* db = nullptr;
  if (hs_deserialize_database(blob.data(), blob.size(), &db) != HS_SUCCESS) return nullptr;
  return db;
}

void store_cached_db(const std::filesystem::path& dir, const std::filesystem::path& file,
                     const std::array<uint8_t, 32>& key, const hs_database_t* db) {
  char* blob = nullptr;
  size_t size = 0;
  if (hs_serialize_database(db, &blob, &size) != HS_SUCCESS) return;
  std::string bytes(kCacheMagic);
  bytes.append(reinterpret_cast<const char*>(key.data()), 32);
  for (int i = 0; i < 8; ++i) bytes.push_back(char((uint64_t(size) >> (8 * i)) & 0xFF));
  const auto digest = blob_checksum(std::string_view(blob, size));
  bytes.append(reinterpret_cast<const char*>(digest.data()), 16);
  bytes.append(blob, size);
  std::free(blob);  // hs_serialize_database allocates with the default (malloc) allocator
  try {
    std::filesystem::create_directories(dir);
    write_file_atomic(file, bytes);
  } catch (const std::exception&) {
    // A read-only or full cache directory costs the next run a compile, nothing else.
  }
}

std::string hex_prefix(const std::array<uint8_t, 32>& key, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kHex[key[i] >> 4];
    out += kHex[key[i] & 15];
  }
  return out;
}

}  // namespace

SecretScanner::SecretScanner(const std::filesystem::path& cache_dir) : impl_(std::make_unique<Impl>()) {
  const auto& rules = secret_rules();
  std::vector<std::string> hs_patterns;
  for (const auto& r : rules) hs_patterns.push_back(hyperscan_prefilter(r.pattern));
  std::vector<const char*> patterns;
  std::vector<unsigned> flags, ids;
  impl_->options.set_encoding(re2::RE2::Options::EncodingLatin1);
  impl_->options.set_log_errors(false);
  impl_->regexes = std::make_unique<std::unique_ptr<re2::RE2>[]>(rules.size());
  impl_->compiled = std::make_unique<std::once_flag[]>(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    patterns.push_back(hs_patterns[i].c_str());
    // Prefilter mode: Hyperscan may match a superset, which RE2 then confirms.
    flags.push_back(HS_FLAG_PREFILTER);  // every end offset: RE2 windows are placed around them
    ids.push_back(unsigned(i));
  }
  std::array<uint8_t, 32> key{};
  std::filesystem::path cache_file;
  if (!cache_dir.empty()) {
    key = hs_cache_key(hs_patterns, flags);
    cache_file = cache_dir / ("secrets-" + hex_prefix(key, 16) + ".hsdb");
    impl_->db = load_cached_db(cache_file, key);
    impl_->from_cache = impl_->db != nullptr;
    // A cached database was stored only after every rule compiled with RE2 too (below), for these same patterns.
    if (impl_->db) return;
  }
  // Without a cache hit every rule is checked here, so a rule RE2 rejects fails at construction, not mid-run.
  for (size_t i = 0; i < rules.size(); ++i) impl_->regex(i);
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(patterns.data(), flags.data(), ids.data(), unsigned(patterns.size()), HS_MODE_BLOCK, nullptr,
                       &impl_->db, &err) != HS_SUCCESS) {
    const std::string what = err ? err->message : "unknown error";
    const int at = err ? err->expression : -1;
    if (err) hs_free_compile_error(err);
    throw_error("secret rules: Hyperscan cannot compile rule '", at >= 0 ? rules[size_t(at)].id : "?", "': ", what);
  }
  if (!cache_dir.empty()) store_cached_db(cache_dir, cache_file, key, impl_->db);
}

const re2::RE2& SecretScanner::Impl::regex(size_t r) {
  std::call_once(compiled[r], [&] {
    const SecretRule& rule = secret_rules()[r];
    auto re = std::make_unique<re2::RE2>(re2_form(rule.pattern), options);
    if (!re->ok()) throw_error("secret rule '", rule.id, "': RE2 rejects the pattern: ", re->error());
    regexes[r] = std::move(re);
  });
  return *regexes[r];
}

bool SecretScanner::loaded_from_cache() const { return impl_->from_cache; }

SecretScanner::~SecretScanner() = default;

namespace {

// Hyperscan reports where a rule's (relaxed) pattern ends; RE2 then runs only on a window around each report,
// not the whole document, so a common keyword ("token", "key =") costs a few KB of RE2 per hit instead of a
// full-text pass. Every real match [s, t) is also a match of the relaxed pattern, so Hyperscan reports t; no rule
// matches more than kReach bytes before its first report (a longer private-key body is reported at every byte, so
// its windows chain), hence [t - kReach, t) holds it. Windows of one rule that touch are merged.
constexpr size_t kReach = 1200;

}  // namespace

struct SecretScanner::Scratch::Hits {
  std::string_view text;
  size_t base = 0;                                           // offset of the Hyperscan block in `text`
  std::vector<std::vector<std::pair<size_t, size_t>>> rules;  // per rule: [begin, end) windows, ascending
  std::vector<unsigned> fired;                                // rules with a window, in report order
};

SecretScanner::Scratch::Scratch(const SecretScanner& scanner) : hits_(std::make_unique<Hits>()) {
  if (hs_alloc_scratch(scanner.impl_->db, &scratch_) != HS_SUCCESS)
    throw_error("secret scanner: cannot allocate Hyperscan scratch space");
  hits_->rules.resize(secret_rules().size());
}

SecretScanner::Scratch::~Scratch() {
  if (scratch_) hs_free_scratch(scratch_);
}

namespace {

int on_match(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx) {
  auto& h = *static_cast<SecretScanner::Scratch::Hits*>(ctx);
  const size_t end = h.base + size_t(to);
  auto& w = h.rules[id];
  if (!w.empty() && end <= w.back().second) return 0;
  const size_t b = end > kReach ? end - kReach : 0;
  const size_t e = std::min(h.text.size(), end);
  if (w.empty()) h.fired.push_back(id);
  if (!w.empty() && b <= w.back().second)
    w.back().second = e;
  else
    w.push_back({b, e});
  return 0;
}

}  // namespace

std::vector<SecretFinding> SecretScanner::scan(std::string_view text, Scratch& scratch) const {
  const auto& rules = secret_rules();
  std::vector<SecretFinding> out;
  Scratch::Hits& hits = *scratch.hits_;
  hits.text = text;
  hits.fired.clear();
  std::optional<LineIndex> lines;  // built on the first finding
  // Hyperscan takes an unsigned length: scan very large inputs in overlapping 1 GiB windows.
  constexpr size_t kWindow = size_t(1) << 30, kOverlap = size_t(1) << 16;
  for (size_t off = 0; off < text.size() || off == 0; off += kWindow - kOverlap) {
    const size_t len = std::min(kWindow, text.size() - off);
    hits.base = off;
    hs_scan(impl_->db, text.data() + off, unsigned(len), 0, scratch.scratch_, on_match, &hits);
    if (off + len >= text.size()) break;
  }
  // Rules in table order (specific before generic: the dedup below keeps the first of equal positions).
  std::sort(hits.fired.begin(), hits.fired.end());
  struct ClearOnExit {  // the windows are reused by the next scan, also after an exception
    Scratch::Hits& h;
    ~ClearOnExit() {
      for (unsigned r : h.fired) h.rules[r].clear();
      h.fired.clear();
    }
  } clear_on_exit{hits};
  for (const unsigned r : hits.fired) {
    const SecretRule& rule = rules[r];
    const re2::RE2& re = impl_->regex(r);
    const int groups = re.NumberOfCapturingGroups() + 1;
    std::vector<re2::StringPiece> m(static_cast<size_t>(groups));
    for (const auto& [win_begin, win_end] : hits.rules[r]) {
    size_t pos = win_begin;
    // RE2 matches inside [pos, win_end) with the whole text as context (^, $ and \b see the real neighbours).
    while (pos <= win_end && re.Match(re2::StringPiece(text.data(), text.size()), pos, win_end,
                                      re2::RE2::UNANCHORED, m.data(), groups)) {
      const size_t match_end = size_t(m[0].data() - text.data()) + m[0].size();
      pos = std::max(match_end, size_t(m[0].data() - text.data()) + 1);
      const re2::StringPiece s = m[size_t(rule.secret_group)];
      if (s.data() == nullptr || s.empty()) continue;
      const std::string_view secret(s.data(), s.size());
      if (secret.size() > kMaxSecret) continue;
      const bool all_digits = std::all_of(secret.begin(), secret.end(), [](char c) { return c >= '0' && c <= '9'; });
      // Digits carry at most log2(10) = 3.32 bits a character: all-digit secrets get a threshold they can meet.
      const double threshold =
          all_digits && rule.name_group > 0 ? std::min(rule.min_entropy - 0.5, 2.5) : rule.min_entropy;
      if (shannon_entropy(secret) <= threshold) continue;
      if (is_placeholder_secret(secret)) continue;
      if (rule.name_group > 0) {
        const re2::StringPiece n = m[size_t(rule.name_group)];
        if (is_benign_name(to_lower_ascii(std::string_view(n.data(), n.size())))) continue;
        if (!looks_like_key_material(secret)) continue;
        const char after = s.data() + s.size() < text.data() + text.size() ? s.data()[s.size()] : '\n';
        if (after != '"' && after != '\'' && looks_like_identifier(secret)) continue;  // unquoted: a variable
      }
      if (rule.url_rule && url_password_is_default(std::string_view(m[0].data(), m[0].size()), secret)) continue;
      if (std::string_view(rule.id) == "jwt" && !jwt_header_ok(secret)) continue;
      if (!lines) lines.emplace(text);
      const LineCol lc = lines->at(size_t(s.data() - text.data()));
      const size_t at = size_t(s.data() - text.data());
      out.push_back({rule.id, lc.line, lc.col, "sha256:" + sha256_hex(secret), at, at + secret.size()});
    }
    }
  }
  // The same secret found by a specific rule and a generic one is reported once, under the specific rule
  // (rules are ordered specific first, and stable_sort keeps that order for equal positions).
  std::stable_sort(out.begin(), out.end(), [](const SecretFinding& a, const SecretFinding& b) {
    return a.line != b.line ? a.line < b.line : a.col < b.col;
  });
  std::vector<SecretFinding> unique;
  for (auto& f : out)
    if (std::none_of(unique.begin(), unique.end(),
                     [&](const SecretFinding& u) { return u.fingerprint == f.fingerprint && u.line == f.line; }))
      unique.push_back(std::move(f));
  return unique;
}

std::string redact_secrets(std::string_view text, const std::vector<SecretFinding>& findings) {
  std::vector<std::pair<size_t, size_t>> spans;
  for (const auto& f : findings)
    if (f.begin < f.end && f.end <= text.size()) spans.push_back({f.begin, f.end});
  std::sort(spans.begin(), spans.end());
  std::string out;
  size_t at = 0;
  for (const auto& [b, e] : spans) {
    if (e <= at) continue;  // inside a range already replaced
    if (b > at) out.append(text.substr(at, b - at));
    if (b >= at || out.empty() || !out.ends_with("[REDACTED]")) out += "[REDACTED]";
    at = e;
  }
  out.append(text.substr(std::min(at, text.size())));
  return out;
}

}  // namespace tritter::data
