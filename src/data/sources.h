// Document sources (issue 8 stage 1): directories walked recursively (language by extension or shebang;
// vendored, hidden, generated and non-UTF-8 files come back marked scan-only, binary and oversized files are
// skipped, each with the reason counted), single
// files, JSONL / JSONL.zst files with a configurable text key ("text" as datatrove, "content" as The Stack),
// and tarballs (.tar, .tar.zst; ustar, GNU long names, pax paths). Sequential and streaming: one document in
// memory at a time.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/document.h"

namespace tritter::data {

struct SourceConfig {
  std::string text_key = "text";       // JSONL field holding the document
  size_t max_file_bytes = 8u << 20;    // larger files / records are skipped ("too-large")
  bool skip_generated = true;          // "@generated", "DO NOT EDIT" ... in the first 1 KiB
  bool skip_vendored = true;           // node_modules, vendor, third_party, target ...: scanned, then dropped
  std::vector<std::string> languages;  // keep only these (empty: every known language)
};

// Language id by file name ("python", "rust", "markdown", ...), "" when unknown. Looks at the shebang line
// (`first_line`) for files without a known extension.
std::string detect_language(const std::filesystem::path& path, std::string_view first_line);

// Called for every skipped file or record: path and reason ("binary", "invalid-utf8", "vendored-dir", ...).
using SkipSink = std::function<void(const std::string& path, const std::string& reason)>;

class DocumentSource {
 public:
  // Throws Error naming an input that does not exist.
  DocumentSource(std::vector<std::string> inputs, SourceConfig config, SkipSink on_skip);
  ~DocumentSource();
  // The next document in a stable order (inputs in order, directory entries sorted by name); false at end.
  bool next(Document& doc);
  const std::map<std::string, uint64_t>& skipped() const { return skipped_; }
  uint64_t files_seen() const { return files_seen_; }
  uint64_t records_seen() const { return records_seen_; }

 private:
  struct Walk;
  bool next_from_file(const std::filesystem::path& path, const std::string& input, Document& doc);
  bool next_from_jsonl(Document& doc);
  bool next_from_tar(Document& doc);
  bool accept_text(Document& doc, const std::string& path);
  std::string scan_only_reason(const std::filesystem::path& path, bool in_hidden_dir, bool in_vendored_dir,
                               std::string& lang);
  std::string license_for(const std::filesystem::path& dir, const std::filesystem::path& root);
  void skip(const std::string& path, const std::string& reason);

  std::vector<std::string> inputs_;
  SourceConfig config_;
  SkipSink on_skip_;
  size_t input_index_ = 0;
  std::unique_ptr<Walk> walk_;
  std::map<std::string, uint64_t> skipped_;
  std::map<std::string, std::string> license_cache_;
  uint64_t files_seen_ = 0, records_seen_ = 0, next_index_ = 0;
};

}  // namespace tritter::data
