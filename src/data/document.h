// The unit the curation pipeline moves: one source file or one JSONL record, with what the stages learn about it
// (issue 8, spec/original.md §9). Plain data; no behaviour beyond small helpers.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tritter::data {

// One finding of a label rule (security or quality): kept in the output record, never a secret.
struct Label {
  std::string rule;                  // "py.shell-injection"
  std::vector<std::string> anchors;  // {"bandit:B602", "semgrep:...", "CWE-78"}
  std::string severity;              // "high" | "medium" | "low" | "info"
  std::string kind;                  // "security" | "quality"
  int line = 0;                      // 1-based
  int col = 0;                       // 1-based, in bytes
  std::string explanation;           // generated from the rule and the matched identifiers
};

struct Document {
  uint64_t index = 0;    // position in the input stream (stable priority for dedup, output order)
  std::string path;      // file path, or "<file.jsonl>:<line>" for a record without a path
  std::string source;    // the INPUT argument it came from
  std::string language;  // "python", "rust", ... ("" = unknown)
  std::string license;   // SPDX-ish id when known, else ""
  std::string text;      // UTF-8 content (any bytes without NUL when scan_only is set)
  // Non-empty: the file is not training material (the skip reason: "hidden", "unknown-language", "lockfile",
  // "generated", "credentials-file", ...). It still passes the secret gate, so a key in a .env or .npmrc is
  // reported, and is then dropped whatever the scan finds.
  std::string scan_only;
};

// 1-based line and column (bytes) of byte offset `pos` in `text`.
struct LineCol {
  int line = 1;
  int col = 1;
};
LineCol line_col(std::string_view text, size_t pos);  // O(pos): for one lookup

// Many lookups in one text: the newline offsets once (O(n)), then O(log lines) per position.
class LineIndex {
 public:
  explicit LineIndex(std::string_view text);
  LineCol at(size_t pos) const;

 private:
  std::vector<size_t> line_starts_;
};

}  // namespace tritter::data
