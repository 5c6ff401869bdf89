// Secret gate (issue 8 stage 2): one Hyperscan database holds every rule for a single pass over the document;
// a rule that fires is re-run with RE2 to capture the secret, which must then clear the rule's Shannon-entropy
// threshold and the placeholder/template filters (gitleaks, detect-secrets: spec/ecosystem.md §4). A finding
// carries a SHA-256 fingerprint of the secret, never the secret. Not done: git history, base64-decoded payloads.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct hs_database;
struct hs_scratch;

namespace tritter::data {

struct SecretRule {
  const char* id;       // gitleaks-style id: "github-pat"
  const char* pattern;  // PCRE subset both Hyperscan and RE2 accept (no look-around, no backreferences)
  int secret_group;     // capture group holding the secret (0 = whole match)
  int name_group;       // capture group holding the assigned name for generic rules (0 = none)
  double min_entropy;   // a candidate with entropy <= this is dropped (gitleaks semantics)
  const char* description;
  bool url_rule = false;  // scheme://user:password@host: a password equal to the user/scheme on localhost is a default
};

// The built-in rule table (stable order; ids are part of the report format): the core vendor rules, the long
// tail of vendor formats (secret_rules.cpp), then URL credentials and the generic assignment rules.
const std::vector<SecretRule>& secret_rules();
const std::vector<SecretRule>& vendor_secret_rules();  // the long tail alone (secret_rules.cpp)

struct SecretFinding {
  std::string rule;
  int line = 0;             // 1-based
  int col = 0;              // 1-based, bytes
  std::string fingerprint;  // "sha256:<hex>" of the secret
  size_t begin = 0, end = 0;  // byte range of the secret in the scanned text (what redact_secrets replaces)
};

// `text` with every finding's byte range replaced by "[REDACTED]": for names (file paths, tar members, JSONL
// fields) that are written to reports, where the secret must not appear either.
std::string redact_secrets(std::string_view text, const std::vector<SecretFinding>& findings);

// True if `value` looks like a placeholder or template rather than a secret ("${TOKEN}", "{{ key }}",
// "<your-key>", "...EXAMPLE", "xxxx", "changeme", a run of one character).
bool is_placeholder_secret(std::string_view value);

class SecretScanner {
 public:
  // Compiles the rules; throws Error naming a rule that does not compile. With a `cache_dir`, the compiled
  // Hyperscan database is loaded from `cache_dir/secrets-<key>.hsdb` when that file is valid (the key hashes the
  // rule set, Hyperscan's version and the CPU platform; the file carries a checksum), else compiled and written
  // there atomically. A cache that cannot be read or written is ignored: the result is the same database.
  explicit SecretScanner(const std::filesystem::path& cache_dir = {});
  ~SecretScanner();
  SecretScanner(const SecretScanner&) = delete;
  SecretScanner& operator=(const SecretScanner&) = delete;

  // Per-thread Hyperscan scratch space; one per worker thread.
  class Scratch {
   public:
    explicit Scratch(const SecretScanner& scanner);
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    struct Hits;  // per-rule hit windows, kept between scans (no allocation per document); opaque

   private:
    friend class SecretScanner;
    hs_scratch* scratch_ = nullptr;
    std::unique_ptr<Hits> hits_;
  };

  // Every validated finding in `text` (ordered by position). Thread-safe with one Scratch per thread.
  std::vector<SecretFinding> scan(std::string_view text, Scratch& scratch) const;

  // True when the Hyperscan database came from the cache rather than a compile.
  bool loaded_from_cache() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tritter::data
