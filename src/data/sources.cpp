// DocumentSource (see sources.h): a depth-first walk with sorted entries so runs are reproducible, and JSONL
// records parsed one line at a time. Every skip is counted by reason and passed to the skip sink.
#include "data/sources.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/error.h"
#include "data/labels.h"
#include "data/util.h"
#include "data/zstd_io.h"
#include "text/unicode.h"

namespace fs = std::filesystem;

namespace tritter::data {

struct DocumentSource::Walk {
  std::string input;
  fs::path root;
  std::vector<fs::path> stack;  // LIFO: pushed in reverse sorted order
  std::unique_ptr<LineReader> jsonl;
  std::string jsonl_path;
  std::unique_ptr<ByteStream> tar;
  std::string tar_path;
};

namespace {

bool is_jsonl_name(const std::string& name) {
  return ends_with(name, ".jsonl") || ends_with(name, ".jsonl.zst") || ends_with(name, ".jsonl.zstd") ||
         ends_with(name, ".ndjson");
}

bool is_tar_name(const std::string& name) {
  return ends_with(name, ".tar") || ends_with(name, ".tar.zst") || ends_with(name, ".tar.zstd") ||
         ends_with(name, ".tzst");
}

// Tar numeric field: octal digits (space/NUL padded), or base-256 when the high bit of the first byte is set.
uint64_t tar_number(const char* p, size_t n) {
  uint64_t v = 0;
  if (static_cast<unsigned char>(p[0]) & 0x80) {
    for (size_t i = 1; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  }
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = (v << 3) | uint64_t(p[i] - '0');
  return v;
}

std::string tar_field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

bool is_vendored_dir(const std::string& name) {
  static constexpr std::array<std::string_view, 21> kDirs = {
      "node_modules", "vendor", "vendored", "_vendor",     "_vendored",     "third_party", "3rdparty",
      "__pycache__",  "target", "dist",     "build",       "venv",          ".venv",       ".tox",
      ".git",         ".hg",    ".svn",     ".mypy_cache", ".pytest_cache", ".ruff_cache", "bower_components"};
  return std::find(kDirs.begin(), kDirs.end(), name) != kDirs.end();
}

// Caches of the sources beside them (bytecode): never walked, counted as vendored.
bool is_cache_dir(const std::string& name) { return name == "__pycache__"; }

// Version-control and tool caches: never walked (hidden directories such as .github or .circleci are walked so
// their files pass the secret gate, then dropped as "hidden").
bool is_never_walked(const std::string& name) {
  static constexpr std::array<std::string_view, 9> kDirs = {".git",        ".hg",           ".svn",
                                                            ".bzr",        ".mypy_cache",   ".pytest_cache",
                                                            ".ruff_cache", ".ipynb_checkpoints", ".cache"};
  return std::find(kDirs.begin(), kDirs.end(), name) != kDirs.end();
}

// Files that exist to hold credentials or configuration for one machine: never training material, always scanned
// (.env, .npmrc, .pypirc, .netrc, PEM/key files, SSH private keys, cloud CLI credentials).
bool is_credentials_file(const std::string& name) {
  const std::string n = to_lower_ascii(name);
  static constexpr std::array<std::string_view, 18> kNames = {
      ".env",       ".npmrc",        ".pypirc",   ".netrc",   "_netrc",      ".pgpass",
      ".htpasswd",  ".git-credentials", ".dockercfg", ".s3cfg", "credentials", ".boto",
      "id_rsa",     "id_dsa",        "id_ecdsa",  "id_ed25519", ".yarnrc",   ".gem-credentials"};
  if (std::find(kNames.begin(), kNames.end(), n) != kNames.end()) return true;
  if (n.starts_with(".env.") || ends_with(n, ".env")) return true;
  static constexpr std::array<std::string_view, 9> kExts = {".pem", ".key", ".p8", ".ppk", ".asc",
                                                           ".ovpn", ".kdbx", ".jks", ".keystore"};
  for (auto e : kExts)
    if (ends_with(n, e)) return true;
  return false;
}

bool is_lockfile(const std::string& name) {
  return ends_with(name, ".lock") || name == "package-lock.json" || name == ".cargo-checksum.json" ||
         name == "go.sum" || name == "pnpm-lock.yaml";
}

std::string read_prefix(const fs::path& p, size_t n) {
  std::ifstream in(p, std::ios::binary);
  std::string s(n, '\0');
  in.read(s.data(), std::streamsize(n));
  s.resize(size_t(in.gcount()));
  return s;
}

std::string license_from_text(std::string_view t) {
  const std::string s = to_lower_ascii(t);
  if (s.find("mit license") != std::string::npos ||
      s.find("permission is hereby granted, free of charge") != std::string::npos)
    return "MIT";
  if (s.find("apache license") != std::string::npos) return "Apache-2.0";
  if (s.find("gnu lesser general public license") != std::string::npos) return "LGPL";
  if (s.find("gnu general public license") != std::string::npos) return "GPL";
  if (s.find("mozilla public license") != std::string::npos) return "MPL-2.0";
  if (s.find("python software foundation license") != std::string::npos) return "PSF-2.0";
  if (s.find("redistribution and use in source and binary forms") != std::string::npos) return "BSD";
  if (s.find("unlicense") != std::string::npos) return "Unlicense";
  return "";
}

std::string json_string(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it == j.end()) continue;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array() && !it->empty() && it->front().is_string()) {
      std::string out;
      for (const auto& v : *it)
        if (v.is_string()) out += (out.empty() ? "" : " OR ") + v.get<std::string>();
      return out;
    }
  }
  return "";
}

}  // namespace

std::string detect_language(const fs::path& path, std::string_view first_line) {
  const std::string name = path.filename().string();
  std::string ext = to_lower_ascii(path.extension().string());
  static const std::vector<std::pair<std::vector<std::string_view>, const char*>> kByExt = {
      {{".py", ".pyi", ".pyw"}, "python"},
      {{".rs"}, "rust"},
      {{".c", ".h"}, "c"},
      {{".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".ipp"}, "cpp"},
      {{".cu", ".cuh"}, "cuda"},
      {{".md", ".markdown"}, "markdown"},
      {{".rst"}, "rst"},
      {{".txt"}, "text"},
      {{".toml"}, "toml"},
      {{".yaml", ".yml"}, "yaml"},
      {{".json"}, "json"},
      {{".sh", ".bash", ".zsh"}, "shell"},
      {{".js", ".mjs", ".cjs"}, "javascript"},
      {{".ts", ".tsx"}, "typescript"},
      {{".go"}, "go"},
      {{".java"}, "java"},
      {{".cmake"}, "cmake"},
      {{".php", ".phtml"}, "php"},
      {{".rb"}, "ruby"},
      {{".ini", ".cfg", ".conf", ".cnf"}, "ini"},
      {{".properties"}, "properties"},
      {{".xml", ".plist"}, "xml"},
      {{".tf", ".tfvars", ".hcl"}, "hcl"},
      {{".ps1", ".psm1"}, "powershell"},
      {{".bat", ".cmd"}, "batch"},
      {{".gradle", ".kts"}, "gradle"},
      {{".cs"}, "csharp"},
      {{".kt"}, "kotlin"},
      {{".swift"}, "swift"},
      {{".scala"}, "scala"},
      {{".sql"}, "sql"},
  };
  if (name == "CMakeLists.txt") return "cmake";
  if (name == "Dockerfile" || name == "Containerfile" || name.starts_with("Dockerfile.") ||
      ends_with(name, ".dockerfile"))
    return "dockerfile";
  if (name == "Makefile" || name == "GNUmakefile" || ext == ".mk") return "make";
  static constexpr std::array<std::string_view, 8> kShellProfiles = {
      ".bashrc", ".bash_profile", ".profile", ".zshrc", ".zprofile", ".zshenv", ".bash_login", ".envrc"};
  if (std::find(kShellProfiles.begin(), kShellProfiles.end(), name) != kShellProfiles.end()) return "shell";
  for (const auto& [exts, lang] : kByExt)
    if (std::find(exts.begin(), exts.end(), ext) != exts.end()) return lang;
  if (first_line.starts_with("#!")) {
    const std::string_view l = first_line.substr(0, first_line.find('\n'));
    if (l.find("python") != std::string_view::npos) return "python";
    if (l.find("bash") != std::string_view::npos || l.find("/sh") != std::string_view::npos ||
        l.find("zsh") != std::string_view::npos)
      return "shell";
    if (l.find("node") != std::string_view::npos) return "javascript";
  }
  return "";
}

DocumentSource::DocumentSource(std::vector<std::string> inputs, SourceConfig config, SkipSink on_skip)
    : inputs_(std::move(inputs)), config_(std::move(config)), on_skip_(std::move(on_skip)) {
  for (const auto& in : inputs_) {
    std::error_code ec;
    if (!fs::exists(in, ec)) throw_error("curate: input '", in, "': not found, expected a file or directory");
  }
}

DocumentSource::~DocumentSource() = default;

void DocumentSource::skip(const std::string& path, const std::string& reason) {
  ++skipped_[reason];
  if (on_skip_) on_skip_(path, reason);
}

std::string DocumentSource::license_for(const fs::path& dir, const fs::path& root) {
  for (fs::path d = dir;; d = d.parent_path()) {
    const std::string key = d.string();
    auto it = license_cache_.find(key);
    std::string lic;
    if (it != license_cache_.end()) {
      lic = it->second;
    } else {
      std::error_code ec;
      if (fs::is_regular_file(d / "Cargo.toml", ec)) {
        const std::string toml = read_prefix(d / "Cargo.toml", 16384);
        const size_t k = toml.find("\nlicense");
        if (k != std::string::npos) {
          const size_t q1 = toml.find('"', k), nl = toml.find('\n', k + 1);
          const size_t q2 = q1 == std::string::npos ? q1 : toml.find('"', q1 + 1);
          if (q2 != std::string::npos && q2 < nl) lic = toml.substr(q1 + 1, q2 - q1 - 1);
        }
      }
      if (lic.empty()) {
        std::string mit, apache;
        for (const char* f :
             {"LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING", "LICENSE-MIT", "LICENSE-APACHE", "LICENCE"}) {
          if (!fs::is_regular_file(d / f, ec)) continue;
          const std::string l = license_from_text(read_prefix(d / f, 4096));
          if (l == "MIT")
            mit = l;
          else if (l == "Apache-2.0")
            apache = l;
          else if (!l.empty() && lic.empty())
            lic = l;
        }
        if (!mit.empty() && !apache.empty())
          lic = "MIT OR Apache-2.0";
        else if (lic.empty())
          lic = !mit.empty() ? mit : apache;
      }
      license_cache_[key] = lic;
    }
    if (!lic.empty()) return lic;
    if (d == root || !d.has_parent_path() || d.parent_path() == d || d.string().size() <= root.string().size())
      return "";
  }
}

// Empty and binary files are skipped here; every other file is a document. One that is not training material
// (invalid UTF-8, generated, filtered out, or already marked by the caller) comes back with `scan_only` set: the
// pipeline scans it for secrets and then drops it, counting the reason.
bool DocumentSource::accept_text(Document& doc, const std::string& path) {
  if (doc.text.empty()) return skip(path, doc.scan_only.empty() ? "empty" : doc.scan_only), false;
  if (std::memchr(doc.text.data(), '\0', doc.text.size()))
    return skip(path, doc.scan_only.empty() || doc.scan_only == "credentials-file" ? "binary" : doc.scan_only), false;
  if (!doc.scan_only.empty()) return true;
  if (!unicode::is_valid_utf8(doc.text))
    doc.scan_only = "invalid-utf8";
  else if (config_.skip_generated && has_generated_header(doc.text))
    doc.scan_only = "generated";
  else if (!config_.languages.empty() &&
           std::find(config_.languages.begin(), config_.languages.end(), doc.language) == config_.languages.end())
    doc.scan_only = "language-filtered";
  return true;
}

// Why a file that is read is still not training material ("" when it is): the reasons the pipeline counts.
std::string DocumentSource::scan_only_reason(const fs::path& path, bool in_hidden_dir, bool in_vendored_dir,
                                             std::string& lang) {
  const std::string name = path.filename().string();
  if (is_credentials_file(name)) return "credentials-file";
  if (in_vendored_dir) return "vendored-dir";
  if (in_hidden_dir || name.starts_with(".")) return "hidden";
  if (is_lockfile(name)) return "lockfile";
  if (lang.empty()) return "unknown-language";
  return "";
}

bool DocumentSource::next_from_file(const fs::path& path, const std::string& input, Document& doc) {
  ++files_seen_;
  const std::string p = path.string();
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return skip(p, "unreadable"), false;
  if (size > config_.max_file_bytes) return skip(p, "too-large"), false;
  std::string lang = detect_language(path, "");
  if (lang.empty()) {
    const std::string head = read_prefix(path, 256);
    lang = detect_language(path, head);
    if (head.empty() && size > 0) return skip(p, "unreadable"), false;
  }
  bool in_hidden_dir = false, in_vendored_dir = false;
  if (path != fs::path(input))
    for (const auto& part : fs::path(p.substr(std::min(p.size(), input.size()))).parent_path()) {
      in_hidden_dir |= part.string().starts_with(".") && part != "." && part != "..";
      in_vendored_dir |= config_.skip_vendored && is_vendored_dir(part.string());
    }
  const std::string reason =
      path == fs::path(input) && !lang.empty() ? "" : scan_only_reason(path, in_hidden_dir, in_vendored_dir, lang);
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return skip(p, "unreadable"), false;
  doc = Document{};
  doc.text.resize(size_t(size));
  // The first 8 KiB first: a NUL there marks a binary file (what accept_text decides from the whole file), so
  // compiled addons, images and archives under node_modules or vendor are not read whole only to be skipped.
  const size_t head = std::min<size_t>(doc.text.size(), 8192);
  size_t got = std::fread(doc.text.data(), 1, head, f);
  if (got == head && head == 8192 && doc.text.size() > head && std::memchr(doc.text.data(), '\0', head)) {
    std::fclose(f);
    const bool keep_reason = !reason.empty() && reason != "credentials-file";
    return skip(p, keep_reason ? reason : "binary"), false;
  }
  if (got == head) got += std::fread(doc.text.data() + head, 1, doc.text.size() - head, f);
  const bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) return skip(p, "unreadable"), false;
  doc.text.resize(got);
  doc.path = p;
  doc.source = input;
  doc.language = lang;
  doc.scan_only = reason;
  if (!accept_text(doc, p)) return false;
  // Only training material carries a license; a scan-only file (vendored trees hold thousands) skips the lookups.
  if (doc.scan_only.empty()) doc.license = license_for(path.parent_path(), walk_->root);
  doc.index = next_index_++;
  return true;
}

bool DocumentSource::next_from_jsonl(Document& doc) {
  std::string line;
  for (;;) {
    LineReader::Status st;
    try {
      st = walk_->jsonl->next(line);
    } catch (const Error&) {
      skip(walk_->jsonl_path, "corrupt-compressed-stream");
      return false;
    }
    if (st == LineReader::Status::End) return false;
    const std::string where = walk_->jsonl_path + ":" + std::to_string(walk_->jsonl->line_number());
    ++records_seen_;
    if (st == LineReader::Status::Oversized) {
      skip(where, "too-large");
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      --records_seen_;
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      skip(where, "malformed-jsonl");
      continue;
    }
    auto t = j.find(config_.text_key);
    if (t == j.end() || !t->is_string()) {
      skip(where, "missing-text-key");
      continue;
    }
    doc = Document{};
    doc.text = t->get<std::string>();
    const nlohmann::json meta =
        j.contains("metadata") && j["metadata"].is_object() ? j["metadata"] : nlohmann::json::object();
    doc.path = json_string(j, {"path", "max_stars_repo_path"});
    if (doc.path.empty()) doc.path = json_string(meta, {"path"});
    if (doc.path.empty()) doc.path = where;
    doc.language = to_lower_ascii(json_string(j, {"language", "lang"}));
    if (doc.language.empty()) doc.language = to_lower_ascii(json_string(meta, {"language", "lang"}));
    if (doc.language.empty()) doc.language = detect_language(fs::path(doc.path), doc.text.substr(0, 256));
    doc.license = json_string(j, {"license", "licenses", "max_stars_repo_licenses", "detected_licenses"});
    if (doc.license.empty()) doc.license = json_string(meta, {"license"});
    doc.source = walk_->input;
    if (!accept_text(doc, doc.path)) continue;
    doc.index = next_index_++;
    return true;
  }
}

bool DocumentSource::next_from_tar(Document& doc) {
  ByteStream& in = *walk_->tar;
  const std::string& archive = walk_->tar_path;
  std::string long_name;
  for (;;) {
    char h[512];
    size_t got;
    try {
      got = in.read(h, sizeof h);
    } catch (const Error&) {
      return skip(archive, "corrupt-archive"), false;
    }
    if (got == 0) return false;
    if (got < sizeof h) return skip(archive, "corrupt-archive"), false;
    if (std::all_of(h, h + sizeof h, [](char c) { return c == 0; })) return false;  // end-of-archive block
    uint64_t sum = 0;
    for (int i = 0; i < 512; ++i)
      sum += (i >= 148 && i < 156) ? uint64_t(' ') : uint64_t(static_cast<unsigned char>(h[i]));
    if (sum != tar_number(h + 148, 8)) return skip(archive, "corrupt-archive"), false;
    const uint64_t size = tar_number(h + 124, 12);
    const uint64_t padded = (size + 511) / 512 * 512;
    const char type = h[156];
    std::string name = tar_field(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0 && h[345]) name = tar_field(h + 345, 155) + "/" + name;
    if (!long_name.empty()) name = std::exchange(long_name, "");
    try {
      if (type == 'L' || type == 'x') {  // GNU long name / pax header: the next entry's path
        std::string data(size_t(std::min<uint64_t>(size, 1 << 16)), '\0');
        if (in.read(data.data(), data.size()) < data.size()) return skip(archive, "corrupt-archive"), false;
        in.skip(padded - data.size());
        if (type == 'L') {
          long_name = data.substr(0, strnlen(data.data(), data.size()));
        } else if (size_t k = data.find(" path="); k != std::string::npos) {
          const size_t e = data.find('\n', k);
          long_name = data.substr(k + 6, (e == std::string::npos ? data.size() : e) - k - 6);
        }
        continue;
      }
      if (type != '0' && type != '\0' && type != '7') {  // directories, links, devices: nothing to read
        in.skip(padded);
        continue;
      }
      ++files_seen_;
      const std::string where = archive + ":" + name;
      const fs::path member(name);
      bool excluded = false, vendored_dir = false, hidden_dir = false;
      for (const auto& part : member.parent_path()) {
        vendored_dir |= config_.skip_vendored && is_vendored_dir(part.string());
        excluded |= is_never_walked(part.string()) || (config_.skip_vendored && is_cache_dir(part.string()));
        hidden_dir |= part.string().starts_with(".") && part != "." && part != "..";
      }
      const char* reason = excluded                        ? "vendored-dir"
                           : size > config_.max_file_bytes ? "too-large"
                                                           : nullptr;
      if (reason) {
        in.skip(padded);
        skip(where, reason);
        continue;
      }
      doc = Document{};
      doc.text.resize(size_t(size));
      if (in.read(doc.text.data(), doc.text.size()) < doc.text.size()) return skip(archive, "corrupt-archive"), false;
      in.skip(padded - size);
      doc.language = detect_language(member, std::string_view(doc.text).substr(0, 256));
      doc.scan_only = scan_only_reason(member, hidden_dir, vendored_dir, doc.language);
      doc.path = where;
      doc.source = walk_->input;
      if (!accept_text(doc, where)) continue;
      doc.index = next_index_++;
      return true;
    } catch (const Error&) {
      return skip(archive, "corrupt-archive"), false;
    }
  }
}

bool DocumentSource::next(Document& doc) {
  for (;;) {
    if (walk_ && walk_->jsonl) {
      if (next_from_jsonl(doc)) return true;
      walk_->jsonl.reset();
      continue;
    }
    if (walk_ && walk_->tar) {
      if (next_from_tar(doc)) return true;
      walk_->tar.reset();
      continue;
    }
    if (walk_ && !walk_->stack.empty()) {
      const fs::path p = walk_->stack.back();
      walk_->stack.pop_back();
      const bool top = p == walk_->root;
      std::error_code ec;
      const fs::file_status st = top ? fs::status(p, ec) : fs::symlink_status(p, ec);
      if (ec) {
        skip(p.string(), "unreadable");
        continue;
      }
      if (fs::is_symlink(st)) {
        skip(p.string(), "symlink");
        continue;
      }
      if (fs::is_directory(st)) {
        const std::string name = p.filename().string();
        // Vendored trees (node_modules, vendor, third_party, build outputs, virtualenvs) are walked: their files pass
        // the secret gate and are then dropped as "vendored-dir" (next_from_file). Bytecode caches are not.
        if (!top && config_.skip_vendored && (is_cache_dir(name) || (is_vendored_dir(name) && is_never_walked(name)))) {
          skip(p.string(), "vendored-dir");
          continue;
        }
        if (!top && is_never_walked(name)) {
          skip(p.string(), "hidden");
          continue;
        }
        std::vector<fs::path> entries;
        fs::directory_iterator it(p, fs::directory_options::skip_permission_denied, ec);
        if (ec) {
          skip(p.string(), "unreadable");
          continue;
        }
        for (; it != fs::directory_iterator(); it.increment(ec)) {
          if (ec) break;
          entries.push_back(it->path());
        }
        std::sort(entries.rbegin(), entries.rend());
        walk_->stack.insert(walk_->stack.end(), entries.begin(), entries.end());
        continue;
      }
      if (!fs::is_regular_file(st)) {
        skip(p.string(), "not-a-regular-file");
        continue;
      }
      if (is_tar_name(p.filename().string())) {
        if (!top) {
          skip(p.string(), "archive");
          continue;
        }
        try {
          walk_->tar = std::make_unique<ByteStream>(p);
          walk_->tar_path = p.string();
        } catch (const Error&) {
          skip(p.string(), "unreadable");
        }
        continue;
      }
      if (is_jsonl_name(p.filename().string())) {
        if (!top) {
          skip(p.string(), "data-file");
          continue;
        }
        try {
          walk_->jsonl = std::make_unique<LineReader>(p, config_.max_file_bytes);
          walk_->jsonl_path = p.string();
        } catch (const Error&) {
          skip(p.string(), "unreadable");
        }
        continue;
      }
      if (next_from_file(p, walk_->input, doc)) return true;
      continue;
    }
    if (input_index_ >= inputs_.size()) return false;
    walk_ = std::make_unique<Walk>();
    walk_->input = inputs_[input_index_++];
    walk_->root = fs::path(walk_->input);
    walk_->stack.push_back(walk_->root);
  }
}

}  // namespace tritter::data
