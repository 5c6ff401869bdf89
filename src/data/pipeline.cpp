// The curate pipeline (see pipeline.h). Pass 1 streams batches: documents are read sequentially, processed in
// parallel (secret scan, labels, exact key, MinHash bands, record JSON), then merged in input order (reject,
// exact dedup, stage). Pass 2, after LSH clustering, compresses the kept staged records into the final shards.
#include "data/pipeline.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <unordered_set>

#include "core/error.h"
#include "core/memory.h"
#include "data/config_toml.h"
#include "data/secrets.h"
#include "data/util.h"
#include "data/zstd_io.h"
#include "io/atomic_file.h"
#include "io/temp_dir.h"
#include "kernels/text_scan.h"
#include "kernels/parallel.h"
#include "text/unicode.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace tritter::data {
namespace {

using Clock = std::chrono::steady_clock;
double wall_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Stage timings use the calling thread's CPU time, so per-core rates stay meaningful on a loaded machine.
double thread_cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
double process_cpu_now() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}
double since(double t) { return thread_cpu_now() - t; }

struct Processed {
  std::vector<SecretFinding> secrets;
  std::vector<std::pair<const char*, SecretFinding>> name_secrets;  // field ("path", "license", ...) and finding
  LabelResult labels;
  Hash128 key;
  std::vector<uint64_t> bands;
  std::vector<TritonKernel> kernels;
  std::string record;  // the JSONL line, '\n' included (staged as it is; pass 2 compresses the survivors)
  std::string error;   // set when processing threw (the document is skipped as "processing-error")
  double t_secrets = 0, t_labels = 0, t_exact = 0, t_minhash = 0, t_record = 0;
};

// Appends `s` (valid UTF-8: sources reject anything else) as a JSON string: quote, backslash and control
// characters escaped, everything else copied. The text is most of every record; nlohmann's escaper was the
// largest single cost of this stage. Escaped 4 KiB at a time into a stack buffer (kernels/text_scan.h), so the
// string grows once per block instead of twice per escape.
void append_json_string(std::string& out, std::string_view s) {
  constexpr size_t kBlock = 4096;
  char buf[6 * kBlock + 16];
  out.push_back('"');
  for (size_t at = 0; at < s.size(); at += kBlock)
    out.append(buf, escape_json_into(s.substr(at, kBlock), buf));
  out.push_back('"');
}

// Per worker thread, reused by every document it processes: the record is as large as the text, and a fresh one
// per document was ~10 MB of newly touched pages (page faults) on a 10 MB run.
struct WorkerBuffers {
  std::string record;  // one JSONL line, '\n' included; p.record gets a copy of it
};

// A JSON string as nlohmann's dump(-1, ' ', false, replace) writes it: the fast escaper for valid UTF-8 (the same
// escapes), nlohmann itself for anything else (it replaces invalid sequences with U+FFFD).
void append_json_value(std::string& out, std::string_view s) {
  if (unicode::is_valid_utf8(s))
    append_json_string(out, s);
  else
    out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, size_t(r.ptr - buf));
}
void append_int(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, size_t(r.ptr - buf));
}

// The record's metadata object, written directly in the bytes nlohmann's dump(-1) gave for the json object it
// used to build (keys in std::map order, no spaces): building that object and its ~10 small allocations per
// label was most of the record stage. curate_golden checks the bytes.
void append_metadata(std::string& out, const Document& d, const Processed& p) {
  bool security = false;
  for (const auto& l : p.labels.labels) security |= l.kind == "security";
  out += "{\"bytes\":";
  append_uint(out, d.text.size());
  // Every occurrence, not only the first per rule: line-level labels for training and evaluation.
  out += ",\"label_occurrences\":[";
  for (size_t i = 0; i < p.labels.occurrences.size(); ++i) {
    const Label& l = p.labels.occurrences[i];
    out += i ? ",{\"col\":" : "{\"col\":";
    append_int(out, l.col);
    out += ",\"explanation\":";
    append_json_value(out, l.explanation);
    out += ",\"line\":";
    append_int(out, l.line);
    out += ",\"rule\":";
    append_json_value(out, l.rule);
    out += '}';
  }
  out += "],\"labels\":[";
  for (size_t i = 0; i < p.labels.labels.size(); ++i) {
    const Label& l = p.labels.labels[i];
    out += i ? ",{\"anchors\":[" : "{\"anchors\":[";
    for (size_t k = 0; k < l.anchors.size(); ++k) {
      if (k) out += ',';
      append_json_value(out, l.anchors[k]);
    }
    out += "],\"col\":";
    append_int(out, l.col);
    out += ",\"count\":";
    append_int(out, p.labels.counts[i]);
    out += ",\"explanation\":";
    append_json_value(out, l.explanation);
    out += ",\"kind\":";
    append_json_value(out, l.kind);
    out += ",\"line\":";
    append_int(out, l.line);
    out += ",\"rule\":";
    append_json_value(out, l.rule);
    out += ",\"severity\":";
    append_json_value(out, l.severity);
    out += '}';
  }
  out += "],\"language\":";
  append_json_value(out, d.language);
  if (!d.license.empty()) {
    out += ",\"license\":";
    append_json_value(out, d.license);
  }
  out += ",\"path\":";
  append_json_value(out, d.path);
  out += ",\"quality\":{\"flags\":[";
  for (size_t k = 0; k < p.labels.flags.size(); ++k) {
    if (k) out += ',';
    append_json_value(out, p.labels.flags[k]);
  }
  out += "],\"label\":";
  out += security ? "\"negative\"" : "\"positive\"";
  out += ",\"score\":";
  out += json(std::round(p.labels.score * 1000.0) / 1000.0).dump();  // nlohmann's shortest round-trip double
  out += "},\"secrets\":{\"scanner\":\"tritter-secrets/1\",\"status\":\"clean\"},\"source\":";
  append_json_value(out, d.source);
  if (!p.kernels.empty()) {
    out += ",\"triton_kernels\":[";
    for (size_t k = 0; k < p.kernels.size(); ++k) {
      out += k ? ",{\"line\":" : "{\"line\":";
      append_int(out, p.kernels[k].line);
      out += ",\"name\":";
      append_json_value(out, p.kernels[k].name);
      out += '}';
    }
    out += ']';
  }
  out += '}';
}

void make_record(const Document& d, const Processed& p, std::string& out) {
  out.clear();
  out.reserve(d.text.size() + d.text.size() / 8 + 1024);
  out += "{\"text\":";
  append_json_string(out, d.text);
  out += ",\"id\":\"xxh3:";
  out += hash_hex(p.key);
  out += "\",\"metadata\":";
  append_metadata(out, d, p);
  out += "}\n";
}

// The strings besides the text that reach the record's metadata and the reports: a secret in a file or tar
// member name, or in a JSONL record's path/license/language field, rejects the document like one in its text.
void scan_names(const Document& d, const SecretScanner& scanner, SecretScanner::Scratch& scratch,
                std::vector<std::pair<const char*, SecretFinding>>& out) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"path", &d.path}, {"source", &d.source}, {"license", &d.license}, {"language", &d.language}};
  for (const auto& [field, value] : fields)
    if (!value->empty())
      for (auto& f : scanner.scan(*value, scratch)) out.push_back({field, std::move(f)});
}

void process(const Document& d, const CurateConfig& cfg, const SecretScanner& scanner, SecretScanner::Scratch& scratch,
             const MinHasher& hasher, WorkerBuffers& buf, Processed& p) {
  // One clock read between stages (each is a system call for CLOCK_THREAD_CPUTIME_ID).
  double t0 = thread_cpu_now();
  auto lap = [&t0] {
    const double t1 = thread_cpu_now(), dt = t1 - t0;
    t0 = t1;
    return dt;
  };
  scan_names(d, scanner, scratch, p.name_secrets);
  p.secrets = scanner.scan(d.text, scratch);
  p.t_secrets = lap();
  if (!p.secrets.empty() || !p.name_secrets.empty() || !d.scan_only.empty()) return;
  p.labels = label_document(d.text, d.language, d.path, cfg.quality);
  if (d.language == "python" && d.text.find("@triton") != std::string::npos) p.kernels = find_triton_kernels(d.text);
  p.t_labels = lap();
  p.key = exact_key(d.text);
  p.t_exact = lap();
  if (cfg.near_dedup) {
    p.bands = hasher.band_hashes(hasher.signature(d.text));
    p.t_minhash = lap();
  }
  make_record(d, p, buf.record);
  p.record.assign(buf.record);
  p.t_record = lap();
}

// Rotating shard files: <dir>/shard-00000.jsonl.zst, each the concatenation of zstd frames of whole records,
// committed (renamed) by close(); pass 2 decides where a shard ends (after shard_max_docs records or
// shard_max_bytes uncompressed bytes) and never lets a frame cross that point.
class ShardSet {
 public:
  explicit ShardSet(fs::path dir) : dir_(std::move(dir)) {}
  void add(std::string_view frame, uint64_t record_bytes) {
    if (!file_) {
      fs::create_directories(dir_);
      char name[32];
      std::snprintf(name, sizeof name, "shard-%05zu.jsonl.zst", names_.size());
      names_.push_back(name);
      file_ = std::make_unique<AtomicFile>(dir_ / name);
    }
    file_->write(frame);
    bytes_ += record_bytes;
  }
  void close() {
    if (file_) file_->commit();
    file_.reset();
  }
  size_t count() const { return names_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  fs::path dir_;
  std::unique_ptr<AtomicFile> file_;
  std::vector<std::string> names_;
  uint64_t bytes_ = 0;
};

// Removes the staging directory unless the run committed it.
// What a run writes into its output directory; anything else there is the user's and is carried into the new one.
bool is_curate_output(const std::string& name) {
  return (name.starts_with("shard-") && name.ends_with(".jsonl.zst")) || name == "triton" || name == "report.json" ||
         name == "summary.log" || name == "rejects.ndjson" || name == "duplicates.ndjson" ||
         name == "skipped.ndjson" || name == "stage.frames";
}

// Hard links (a copy where links fail) of the user's own entries in the old output directory into the staging
// one, so the swap keeps them; the old directory is not changed until the swap.
void carry_foreign_entries(const fs::path& outdir, const fs::path& tmp) {
  std::error_code ec;
  if (!fs::is_directory(outdir, ec)) return;
  for (const auto& e : fs::directory_iterator(outdir)) {
    const std::string name = e.path().filename().string();
    if (is_curate_output(name) || fs::exists(fs::symlink_status(tmp / name, ec))) continue;
    std::error_code link_ec;
    fs::copy(e.path(), tmp / name, fs::copy_options::recursive | fs::copy_options::create_hard_links |
                                      fs::copy_options::copy_symlinks, link_ec);
    if (link_ec) {
      fs::remove_all(tmp / name, ec);
      fs::copy(e.path(), tmp / name, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
  }
}

std::string rate(uint64_t bytes, double seconds) {
  if (seconds <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB/s", double(bytes) / 1e6 / seconds);
  return buf;
}

}  // namespace

double CurateReport::duplicate_ratio() const {
  const uint64_t reached = docs_out + exact_duplicates + near_duplicates + triton_docs;
  return reached ? double(exact_duplicates + near_duplicates) / double(reached) : 0.0;
}

json CurateReport::to_json() const {
  json stages_j = json::object();
  for (const auto& [name, s] : stages)
    stages_j[name] = {{"seconds", s.seconds},
                      {"bytes", s.bytes},
                      {"mb_per_s_per_core", s.seconds > 0 ? double(s.bytes) / 1e6 / s.seconds : 0.0}};
  return {{"format", "tritter-curate-report/1"},
          {"docs_in", docs_in},
          {"bytes_in", bytes_in},
          {"docs_out", docs_out},
          {"scanned_not_kept", scanned_not_kept},
          {"scanned_not_kept_bytes", scanned_not_kept_bytes},
          {"bytes_out", bytes_out},
          {"triton_docs", triton_docs},
          {"triton_kernels", triton_kernels},
          {"rejected_secret", rejected_secret},
          {"dropped_low_quality", dropped_low_quality},
          {"exact_duplicates", exact_duplicates},
          {"near_duplicates", near_duplicates},
          {"near_clusters", near_clusters},
          {"duplicate_ratio", duplicate_ratio()},
          {"shards", shards},
          {"skipped", skipped},
          {"rejects_by_rule", rejects_by_rule},
          {"label_docs_by_rule", label_docs_by_rule},
          {"label_hits_by_rule", label_hits_by_rule},
          {"quality_flags", flags},
          {"docs_by_language", docs_by_language},
          {"stages", stages_j},
          {"wall_seconds", wall_seconds},
          {"threads", threads},
          {"throughput_mb_per_s", wall_seconds > 0 ? double(bytes_in) / 1e6 / wall_seconds : 0.0},
          {"cpu_seconds", cpu_seconds},
          {"mb_per_cpu_second", cpu_seconds > 0 ? double(bytes_in) / 1e6 / cpu_seconds : 0.0},
          {"peak_rss_bytes", peak_rss_bytes},
          {"dedup_memory_bytes", dedup_memory_bytes}};
}

std::string CurateReport::summary() const {
  std::string s;
  char buf[256];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    s += buf;
  };
  line("documents in:  %llu (%s)\n", (unsigned long long)docs_in, format_bytes(double(bytes_in)).c_str());
  line("documents out: %llu (%s of records) in %llu shards\n", (unsigned long long)docs_out,
       format_bytes(double(bytes_out)).c_str(), (unsigned long long)shards);
  if (triton_docs)
    line("triton shard:  %llu documents, %llu kernels\n", (unsigned long long)triton_docs,
         (unsigned long long)triton_kernels);
  if (scanned_not_kept)
    line("scanned, not training material: %llu (%s; dropped after the secret gate)\n",
         (unsigned long long)scanned_not_kept, format_bytes(double(scanned_not_kept_bytes)).c_str());
  line("rejected (secrets): %llu\n", (unsigned long long)rejected_secret);
  for (const auto& [k, v] : rejects_by_rule) line("  %-34s %llu\n", k.c_str(), (unsigned long long)v);
  if (dropped_low_quality) line("dropped (quality below threshold): %llu\n", (unsigned long long)dropped_low_quality);
  line("duplicates: %llu exact + %llu near (%llu clusters), ratio %.3f\n", (unsigned long long)exact_duplicates,
       (unsigned long long)near_duplicates, (unsigned long long)near_clusters, duplicate_ratio());
  uint64_t skipped_total = 0;
  for (const auto& [k, v] : skipped) skipped_total += v;
  line("skipped: %llu\n", (unsigned long long)skipped_total);
  for (const auto& [k, v] : skipped) line("  %-34s %llu\n", k.c_str(), (unsigned long long)v);
  line("labels (documents / occurrences):\n");
  for (const auto& [k, v] : label_docs_by_rule)
    line("  %-34s %llu / %llu\n", k.c_str(), (unsigned long long)v, (unsigned long long)label_hits_by_rule.at(k));
  if (!flags.empty()) line("quality flags:\n");
  for (const auto& [k, v] : flags) line("  %-34s %llu\n", k.c_str(), (unsigned long long)v);
  line("throughput: %s on %d threads (%.2f s wall, %.2f s CPU: %s per CPU-second), peak RSS %s\n",
       rate(bytes_in, wall_seconds).c_str(), threads, wall_seconds, cpu_seconds, rate(bytes_in, cpu_seconds).c_str(),
       format_bytes(double(peak_rss_bytes)).c_str());
  line("per stage (thread CPU time, MB/s per core):\n");
  for (const auto& [k, v] : stages)
    line("  %-10s %8.3f s  %s\n", k.c_str(), v.seconds, rate(v.bytes, v.seconds).c_str());
  return s;
}

CurateReport curate(const std::vector<std::string>& inputs, const fs::path& outdir_arg, const CurateConfig& cfg,
                    Context& ctx) {
  const auto t_start = Clock::now();
  const double cpu_start = process_cpu_now();
  if (inputs.empty()) throw_error("curate: no inputs: found 0, expected at least one file or directory");
  fs::path outdir = fs::absolute(outdir_arg).lexically_normal();
  if (outdir.filename().empty()) outdir = outdir.parent_path();
  std::error_code ec;
  if (fs::exists(outdir, ec) && !fs::is_directory(outdir, ec))
    throw_error("curate: output '", outdir.string(), "': exists and is not a directory, expected a directory");
  fs::create_directories(outdir.parent_path(), ec);
  // One writer per output directory; then what killed runs left beside it is cleaned up (an interrupted swap's old
  // copy is put back). The run builds the new directory beside the old one and swaps it in whole at the end, so a
  // kill at any moment leaves either the old outputs or the new ones, never a mixture.
  const OutputLock lock(outdir, "curate");
  remove_stale_temporaries(outdir.parent_path(), "." + outdir.filename().string() + ".");
  TempDirGuard guard{staging_dir_for(outdir)};
  fs::remove_all(guard.path, ec);
  if (!fs::create_directories(guard.path, ec))
    throw_error("curate: output '", outdir.string(), "': cannot create ", guard.path.string(), ": ", ec.message());
  const fs::path tmp = guard.path;

  CurateReport rep;
  rep.threads = std::max(1, ctx.threads);
  // Compiling the secret rules (~0.1 s) overlaps with reading the first batch.
  const std::shared_future<std::shared_ptr<const SecretScanner>> scanner_build =
      std::async(std::launch::async, [&cfg] { return std::make_shared<const SecretScanner>(cfg.rule_cache_dir); });
  const MinHasher hasher(cfg.minhash);

  AtomicFile rejects(tmp / "rejects.ndjson");
  // Only the merge (below) writes the reports, in input order.
  auto write_name_reject = [&](const std::string& shown, const char* field, const SecretFinding& f) {
    const std::string line = json({{"rule", f.rule}, {"path", shown}, {"field", field}, {"col", f.col},
                                   {"fingerprint", f.fingerprint}})
                                 .dump(-1, ' ', false, json::error_handler_t::replace) +
                             "\n";
    rejects.write(line);
  };
  // Names of files that are skipped unread (binary, too large, corrupt ...) go to skipped.ndjson: scanned first, a
  // secret in one is replaced by [REDACTED] there and reported in rejects.ndjson.
  std::unique_ptr<SecretScanner::Scratch> name_scratch;
  std::map<std::string, uint64_t> name_rejects_by_rule;
  auto shown_name = [&](const std::string& path) {
    const SecretScanner& sc = *scanner_build.get();
    if (!name_scratch) name_scratch = std::make_unique<SecretScanner::Scratch>(sc);
    const std::vector<SecretFinding> found = sc.scan(path, *name_scratch);
    if (found.empty()) return path;
    const std::string shown = redact_secrets(path, found);
    for (const auto& f : found) {
      write_name_reject(shown, "path", f);
      ++name_rejects_by_rule[f.rule];
    }
    return shown;
  };
  AtomicFile duplicates(tmp / "duplicates.ndjson");
  auto log_duplicate = [&](const char* kind, const std::string& path, const Hash128& kept) {
    duplicates.write(json({{"kind", kind}, {"path", path}, {"duplicate_of", "xxh3:" + hash_hex(kept)}})
                         .dump(-1, ' ', false, json::error_handler_t::replace) +
                     "\n");
  };
  AtomicFile skipped(tmp / "skipped.ndjson");
  // A batch: its documents and the files skipped unread among them. The reader thread only records a skip with its
  // place in the batch; the merge writes it there, so skipped.ndjson and rejects.ndjson follow the input order
  // whatever the batch size or thread count.
  struct SkippedFile {
    size_t before;  // index of the batch document it preceded (== docs.size(): after the last)
    std::string path, reason;
  };
  struct Batch {
    std::vector<Document> docs;
    std::vector<SkippedFile> skips;
    bool empty() const { return docs.empty() && skips.empty(); }
  };
  Batch* reading_into = nullptr;  // the batch the reader is filling; touched only by the reader
  DocumentSource source(inputs, cfg.source, [&](const std::string& path, const std::string& reason) {
    reading_into->skips.push_back({reading_into->docs.size(), path, reason});
  });
  auto write_skipped = [&](const SkippedFile& s) {
    skipped.write(json({{"path", shown_name(s.path)}, {"reason", s.reason}})
                      .dump(-1, ' ', false, json::error_handler_t::replace) +
                  "\n");
  };
  // Staging: each kept record as it is, in order; pass 2 compresses the survivors into the shards.
  AtomicFile stage(tmp / "stage.frames");
  std::vector<uint64_t> staged_record_bytes, staged_text_bytes;
  std::vector<std::string> staged_paths;  // names a near duplicate in duplicates.ndjson
  std::unordered_set<Hash128, Hash128Hasher> seen;
  NearDupIndex index(cfg.minhash.bands);
  std::vector<float> priority;      // per staged doc: quality score
  std::vector<Hash128> staged_ids;  // per staged doc: its id (names the kept document in duplicates.ndjson)
  std::vector<uint8_t> is_triton;
  uint64_t staged = 0;

  // Reading is sequential; the next batch is read on a helper thread while the workers process this one.
  StageTime read_time;
  auto read_batch = [&](Batch& out) {
    const auto t0 = thread_cpu_now();
    out.docs.clear();
    out.skips.clear();
    reading_into = &out;
    size_t bytes = 0;
    bool more = true;
    while (out.docs.size() < cfg.batch_docs && bytes < cfg.batch_bytes) {
      Document d;
      if (!source.next(d)) {
        more = false;
        break;
      }
      bytes += d.text.size();
      out.docs.push_back(std::move(d));
    }
    read_time.seconds += since(t0);
    read_time.bytes += bytes;
    return more;
  };
  Batch batch, next;
  std::vector<Processed> results;
  bool more = read_batch(batch);
  const SecretScanner& scanner = *scanner_build.get();
  std::vector<std::unique_ptr<SecretScanner::Scratch>> scratch;
  for (int i = 0; i < rep.threads; ++i) scratch.push_back(std::make_unique<SecretScanner::Scratch>(scanner));
  std::vector<WorkerBuffers> buffers(size_t(rep.threads));
  while (!batch.empty()) {
    std::future<bool> reading;
    if (more) reading = std::async(std::launch::async, [&] { return read_batch(next); });
    const std::vector<Document>& docs = batch.docs;
    size_t batch_bytes = 0;
    for (const auto& d : docs) batch_bytes += d.text.size();
    results.assign(docs.size(), Processed{});
    parallel_for(rep.threads, static_cast<int64_t>(docs.size()), [&](int64_t i, int t) {
      try {  // a failing document is counted, not fatal
        process(docs[size_t(i)], cfg, scanner, *scratch[size_t(t)], hasher, buffers[size_t(t)], results[size_t(i)]);
      } catch (const std::exception& e) {
        results[size_t(i)].error = e.what();
      }
    });

    auto t = thread_cpu_now();
    size_t next_skip = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
      for (; next_skip < batch.skips.size() && batch.skips[next_skip].before <= i; ++next_skip)
        write_skipped(batch.skips[next_skip]);
      const Document& d = docs[i];
      Processed& p = results[i];
      if (d.scan_only.empty()) {
        ++rep.docs_in;
        rep.bytes_in += d.text.size();
      } else {
        ++rep.scanned_not_kept;
        rep.scanned_not_kept_bytes += d.text.size();
      }
      if (!p.error.empty()) {
        ++rep.skipped["processing-error"];
        const std::string line = json({{"path", shown_name(d.path)}, {"reason", "processing-error"}, {"error", p.error}})
                                     .dump(-1, ' ', false, json::error_handler_t::replace) +
                                 "\n";
        skipped.write(line);
        continue;
      }
      rep.stages["secrets"].seconds += p.t_secrets;
      rep.stages["secrets"].bytes += d.text.size();
      if (!p.secrets.empty() || !p.name_secrets.empty()) {
        ++rep.rejected_secret;
        std::unordered_set<std::string> rules;
        std::vector<SecretFinding> in_path;
        for (const auto& [field, f] : p.name_secrets)
          if (std::string_view(field) == "path") in_path.push_back(f);
        const std::string shown = in_path.empty() ? d.path : redact_secrets(d.path, in_path);
        for (const auto& [field, f] : p.name_secrets) {
          rules.insert(f.rule);
          write_name_reject(shown, field, f);
        }
        for (const auto& f : p.secrets) {
          rules.insert(f.rule);
          const std::string line = json({{"rule", f.rule},
                                         {"path", shown},
                                         {"line", f.line},
                                         {"col", f.col},
                                         {"fingerprint", f.fingerprint}})
                                       .dump(-1, ' ', false, json::error_handler_t::replace) +
                                   "\n";
          rejects.write(line);
        }
        for (const auto& r : rules) ++rep.rejects_by_rule[r];
        continue;
      }
      if (!d.scan_only.empty()) {  // clean, but not training material: dropped with its reason
        ++rep.skipped[d.scan_only];
        const std::string line = json({{"path", d.path}, {"reason", d.scan_only}, {"secrets", "clean"}})
                                     .dump(-1, ' ', false, json::error_handler_t::replace) +
                                 "\n";
        skipped.write(line);
        continue;
      }
      rep.stages["labels"].seconds += p.t_labels;
      rep.stages["labels"].bytes += d.text.size();
      rep.stages["exact"].seconds += p.t_exact;
      rep.stages["exact"].bytes += d.text.size();
      rep.stages["minhash"].seconds += p.t_minhash;
      rep.stages["minhash"].bytes += d.text.size();
      rep.stages["record"].seconds += p.t_record;
      rep.stages["record"].bytes += d.text.size();
      if (p.labels.score < cfg.min_quality) {
        ++rep.dropped_low_quality;
        continue;
      }
      if (cfg.exact_dedup && !seen.insert(p.key).second) {
        ++rep.exact_duplicates;
        log_duplicate("exact", d.path, p.key);
        continue;
      }
      for (size_t k = 0; k < p.labels.labels.size(); ++k) {
        ++rep.label_docs_by_rule[p.labels.labels[k].rule];
        rep.label_hits_by_rule[p.labels.labels[k].rule] += uint64_t(p.labels.counts[k]);
      }
      for (const auto& f : p.labels.flags) ++rep.flags[f];
      index.add(uint32_t(staged), p.bands);
      priority.push_back(float(p.labels.score));
      staged_ids.push_back(p.key);
      is_triton.push_back(cfg.extract_triton && !p.kernels.empty());
      stage.write(p.record);
      staged_record_bytes.push_back(p.record.size());
      staged_text_bytes.push_back(d.text.size());
      staged_paths.push_back(d.path);
      ++staged;
    }
    for (; next_skip < batch.skips.size(); ++next_skip) write_skipped(batch.skips[next_skip]);
    rep.stages["merge"].seconds += since(t);
    rep.stages["merge"].bytes += batch_bytes;
    more = more && reading.get();
    std::swap(batch, next);
    next.docs.clear();
    next.skips.clear();
  }
  rep.stages["read"] = read_time;
  for (const auto& [rule, n] : name_rejects_by_rule) rep.rejects_by_rule[rule] += n;
  stage.commit();
  rejects.commit();
  skipped.commit();
  for (const auto& [reason, n] : source.skipped()) rep.skipped[reason] += n;

  // LSH clusters; keep the highest quality score per cluster, then the earliest document.
  auto t = thread_cpu_now();
  rep.dedup_memory_bytes = index.memory_bytes() + seen.size() * (sizeof(Hash128) + 16);
  std::vector<uint32_t> root = cfg.near_dedup ? index.clusters(uint32_t(staged)) : std::vector<uint32_t>{};
  std::vector<uint8_t> keep(staged, 1);
  std::vector<uint32_t> best(cfg.near_dedup ? staged : 0, UINT32_MAX);  // per cluster root: the kept member
  if (cfg.near_dedup) {
    std::vector<uint32_t> size(staged, 0);
    for (uint32_t i = 0; i < staged; ++i) {
      uint32_t& b = best[root[i]];
      ++size[root[i]];
      if (b == UINT32_MAX || priority[i] > priority[b]) b = i;
    }
    for (uint32_t i = 0; i < staged; ++i) {
      keep[i] = best[root[i]] == i;
      if (!keep[i]) ++rep.near_duplicates;
      if (root[i] == i && size[i] > 1) ++rep.near_clusters;
    }
  }
  rep.stages["lsh"].seconds += since(t);
  rep.stages["lsh"].bytes += rep.bytes_in;

  // Pass 2: the kept records into the final shards, compressed a frame of about kFrameBytes at a time (a frame
  // never crosses a shard's end). One frame per record cost 30% more zstd instructions and 14% more bytes: each
  // started without history. Frames are compressed kFramesPerThread per thread at once, in parallel.
  constexpr size_t kFrameBytes = size_t(1) << 20, kFramesPerThread = 2;
  t = thread_cpu_now();
  double t_in_compress = 0;  // this thread's share of the parallel compression, not counted as writing
  {
    ShardSet shards[2] = {ShardSet(tmp), ShardSet(tmp / "triton")};  // main, triton
    struct Open {                      // per destination
      std::string raw;                 // the open frame's records
      uint64_t text_bytes = 0;         // their documents' text
      size_t shard_docs = 0;           // records in the open shard
      uint64_t shard_bytes = 0;        // their bytes, uncompressed
    } open[2];
    struct Ready {
      int dest;
      bool ends_shard;
      std::string raw, frame;
      uint64_t text_bytes;
      double seconds = 0;
    };
    std::vector<Ready> ready;
    std::vector<std::unique_ptr<ZstdFrameCompressor>> compressors;
    for (int i = 0; i < rep.threads; ++i) compressors.push_back(std::make_unique<ZstdFrameCompressor>(cfg.zstd_level));
    auto flush = [&] {
      const double t0 = thread_cpu_now();
      parallel_for(rep.threads, static_cast<int64_t>(ready.size()), [&](int64_t i, int th) {
        Ready& r = ready[size_t(i)];
        const double c0 = thread_cpu_now();
        compressors[size_t(th)]->compress(r.raw, r.frame);
        r.seconds = thread_cpu_now() - c0;
      });
      t_in_compress += thread_cpu_now() - t0;
      for (Ready& r : ready) {
        shards[r.dest].add(r.frame, r.raw.size());
        if (r.ends_shard) shards[r.dest].close();
        rep.stages["compress"].seconds += r.seconds;
        rep.stages["compress"].bytes += r.text_bytes;
      }
      ready.clear();
    };
    auto end_frame = [&](int dest, bool ends_shard) {
      Open& o = open[dest];
      ready.push_back({dest, ends_shard, std::move(o.raw), {}, o.text_bytes});
      o.raw.clear();
      o.text_bytes = 0;
      if (ends_shard) o.shard_docs = 0, o.shard_bytes = 0;
      if (ready.size() >= kFramesPerThread * size_t(rep.threads)) flush();
    };
    std::FILE* in = std::fopen((tmp / "stage.frames").c_str(), "rb");
    if (!in) throw_error("curate: cannot reopen the staging file in ", tmp.string());
    std::string record;
    for (uint64_t i = 0; i < staged; ++i) {
      record.resize(staged_record_bytes[i]);
      if (std::fread(record.data(), 1, record.size(), in) != record.size()) {
        std::fclose(in);
        throw_error("curate: staging file ended early at ", i);
      }
      if (!keep[i]) {
        log_duplicate("near", staged_paths[i], staged_ids[best[root[i]]]);
        continue;
      }
      const int dest = is_triton[i] ? 1 : 0;
      if (dest) {
        ++rep.triton_docs;
      } else {
        ++rep.docs_out;
        rep.bytes_out += record.size();
      }
      Open& o = open[dest];
      if (o.raw.capacity() < o.raw.size() + record.size())  // one allocation per frame, not a doubling series
        o.raw.reserve(std::max(kFrameBytes + kFrameBytes / 8, o.raw.size() + record.size()));
      o.raw += record;
      o.text_bytes += staged_text_bytes[i];
      o.shard_bytes += record.size();
      const bool ends_shard = ++o.shard_docs >= cfg.shard_max_docs || o.shard_bytes >= cfg.shard_max_bytes;
      if (ends_shard || o.raw.size() >= kFrameBytes) end_frame(dest, ends_shard);
    }
    std::fclose(in);
    for (int dest = 0; dest < 2; ++dest)
      if (!open[dest].raw.empty()) end_frame(dest, false);
    flush();
    shards[0].close();
    shards[1].close();
    rep.shards = shards[0].count() + shards[1].count();
  }
  duplicates.commit();
  fs::remove(tmp / "stage.frames", ec);
  rep.stages["write"].seconds += since(t) - t_in_compress;
  rep.stages["write"].bytes += rep.bytes_out;
  if (rep.triton_docs) {
    // Count kernels from the triton shard's records without re-parsing the texts: cheap enough to re-read.
    for (const auto& e : fs::directory_iterator(tmp / "triton")) {
      LineReader r(e.path(), SIZE_MAX);
      std::string l;
      while (r.next(l) == LineReader::Status::Line)
        rep.triton_kernels += json::parse(l)["metadata"]["triton_kernels"].size();
    }
  }
  rep.wall_seconds = wall_since(t_start);
  rep.cpu_seconds = process_cpu_now() - cpu_start;
  rep.peak_rss_bytes = uint64_t(process_memory().peak_rss_bytes);
  write_file_atomic(tmp / "summary.log", rep.summary());
  write_file_atomic(tmp / "report.json", rep.to_json().dump(2) + "\n");
  carry_foreign_entries(outdir, tmp);
  replace_dir_atomic(tmp, outdir);
  guard.keep = true;
  return rep;
}

CurateConfig curate_config_from_json(const json& j) {
  CurateConfig c;
  if (!j.is_object()) throw_error("curate config: expected a JSON object, found ", j.type_name());
  // A value quoted in an error; a string that is not UTF-8 is shown with U+FFFD rather than making dump() throw.
  auto quoted_value = [](const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
  auto get = [&quoted_value](const json& obj, const char* key, auto& out, const char* where) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    using T = std::decay_t<decltype(out)>;
    // Integer fields take JSON integers only (unsigned ones not negative): a float such as 1e308 cast to an
    // integer is undefined behaviour, and -1 would wrap to 2^64-1.
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (!it->is_number_integer() ||
          (std::is_unsigned_v<T> && !it->is_number_unsigned() && it->template get<int64_t>() < 0)) {
        throw_error("curate config: '", where, key, "': found ", quoted_value(*it), ", expected a ",
                    std::is_unsigned_v<T> ? "non-negative " : "", "integer");
      }
    }
    try {
      it->get_to(out);
    } catch (const json::exception&) {
      throw_error("curate config: '", where, key, "': found ", quoted_value(*it), ", expected a ",
                  std::is_same_v<std::decay_t<decltype(out)>, bool> ? "boolean" : "value of the right type");
    }
  };
  static const std::unordered_set<std::string> kKeys = {
      "text_key",           "max_file_bytes",     "skip_generated",  "skip_vendored",   "languages",  "max_line_length",
      "minified_mean_line", "min_alnum_fraction", "huge_file_bytes", "exact_dedup",     "near_dedup", "minhash",
      "min_quality",        "extract_triton",     "shard_max_docs",  "shard_max_bytes", "batch_docs", "batch_bytes",
      "zstd_level"};
  for (const auto& [k, v] : j.items())
    if (!kKeys.count(k)) throw_error("curate config: unknown key '", k, "'");
  get(j, "text_key", c.source.text_key, "");
  get(j, "max_file_bytes", c.source.max_file_bytes, "");
  get(j, "skip_generated", c.source.skip_generated, "");
  get(j, "skip_vendored", c.source.skip_vendored, "");
  get(j, "languages", c.source.languages, "");
  get(j, "max_line_length", c.quality.max_line_length, "");
  get(j, "minified_mean_line", c.quality.minified_mean_line, "");
  get(j, "min_alnum_fraction", c.quality.min_alnum_fraction, "");
  get(j, "huge_file_bytes", c.quality.huge_file_bytes, "");
  get(j, "exact_dedup", c.exact_dedup, "");
  get(j, "near_dedup", c.near_dedup, "");
  get(j, "min_quality", c.min_quality, "");
  get(j, "extract_triton", c.extract_triton, "");
  get(j, "shard_max_docs", c.shard_max_docs, "");
  get(j, "shard_max_bytes", c.shard_max_bytes, "");
  get(j, "batch_docs", c.batch_docs, "");
  get(j, "batch_bytes", c.batch_bytes, "");
  get(j, "zstd_level", c.zstd_level, "");
  if (auto it = j.find("minhash"); it != j.end()) {
    if (!it->is_object()) throw_error("curate config: 'minhash': expected an object, found ", it->type_name());
    for (const auto& [k, v] : it->items())
      if (k != "num_perm" && k != "bands" && k != "rows" && k != "ngram" && k != "seed")
        throw_error("curate config: unknown key 'minhash.", k, "'");
    get(*it, "num_perm", c.minhash.num_perm, "minhash.");
    get(*it, "bands", c.minhash.bands, "minhash.");
    get(*it, "rows", c.minhash.rows, "minhash.");
    get(*it, "ngram", c.minhash.ngram, "minhash.");
    get(*it, "seed", c.minhash.seed, "minhash.");
  }
  if (c.shard_max_docs == 0 || c.batch_docs == 0)
    throw_error("curate config: shard_max_docs and batch_docs: found 0, expected at least 1");
  if (c.source.text_key.empty()) throw_error("curate config: 'text_key': found \"\", expected a field name");
  MinHasher check(c.minhash);  // validates the sizes
  return c;
}

CurateConfig load_curate_config(const fs::path& path) {
  const std::string text = read_file_bytes(path);
  json j = path.extension() == ".toml" ? parse_toml_subset(text, "curate config '" + path.string() + "'")
                                       : json::parse(text, nullptr, false);
  if (j.is_discarded()) throw_error("curate config '", path.string(), "': not valid JSON");
  try {
    return curate_config_from_json(j);
  } catch (const Error& e) {
    throw_error("'", path.string(), "': ", e.what());
  }
}

}  // namespace tritter::data
