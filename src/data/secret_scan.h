// `tritter curate --report-only`: the secret gate alone over a tree (every text file the curation sources read,
// training material or not), reporting each finding by path, line, rule and fingerprint without writing shards;
// and the findings as SARIF 2.1.0 for code-scanning tools. Never reports the secret itself.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/context.h"
#include "data/secrets.h"
#include "data/sources.h"

namespace tritter::data {

struct PathFinding {
  std::string path;   // with any secret in the name itself replaced by [REDACTED]
  SecretFinding finding;
  std::string field;  // "" for the file's text; "path", "source", "license", "language" for a secret in that name
};

struct SecretScanReport {
  std::vector<PathFinding> findings;  // in input order, then by position
  uint64_t files_scanned = 0, bytes_scanned = 0;
  std::map<std::string, uint64_t> skipped;  // files never scanned (binary, too-large, vendored-dir, ...)
  double wall_seconds = 0.0;
};

// Scans `inputs` with `ctx.threads` threads; the order of findings does not depend on the thread count.
// `rule_cache_dir`: as SecretScanner's cache (empty: compile the rules).
SecretScanReport scan_secrets_only(const std::vector<std::string>& inputs, const SourceConfig& config, Context& ctx,
                                   const std::filesystem::path& rule_cache_dir = {});

// One "path:line:col: rule fingerprint" line per finding ("path:0:col: rule fingerprint (in the path)" for a
// secret in a name).
std::string findings_text(const SecretScanReport& report);

// SARIF 2.1.0 (one run, tool "tritter-secrets", a rule per secret rule id, a result per finding with the
// fingerprint as partialFingerprints["secretSha256/v1"]).
std::string findings_sarif(const SecretScanReport& report);

}  // namespace tritter::data
