// `tritter curate` as a library call (issue 8): sources -> secret gate -> labels -> exact + MinHash dedup ->
// JSONL.zst shards + report.json + summary.log + rejects.ndjson + skipped.ndjson. Streaming in batches (bounded
// memory: one batch of documents plus ~0.5 KB per kept document for dedup), threads from ctx.threads. The
// output directory is locked against a concurrent run (io/atomic_file.h), built under a staging sibling and swapped
// in whole at the end (the user's own files in an old output directory are carried over), so a failed or killed
// run leaves the old outputs or the new ones, never a mixture. Record format: docs/curation.md.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/context.h"
#include "data/dedup.h"
#include "data/labels.h"
#include "data/sources.h"

namespace tritter::data {

struct CurateConfig {
  SourceConfig source;
  QualityConfig quality;
  MinHashConfig minhash;
  bool exact_dedup = true;
  bool near_dedup = true;
  double min_quality = 0.0;     // documents scoring below are dropped (counted); 0 keeps every clean one
  bool extract_triton = false;  // Python files with @triton.jit kernels go to triton/shard-*.jsonl.zst
  size_t shard_max_docs = 10000;
  size_t shard_max_bytes = 256u << 20;  // uncompressed
  size_t batch_docs = 256;  // smaller batches: lower peak memory and fewer page faults, same output
  size_t batch_bytes = 64u << 20;
  int zstd_level = 1;  // 1, not 3: ~25% faster for ~5% more bytes (docs/curation.md)
  // Not a config key: where the compiled secret rules are cached (the CLI passes $XDG_CACHE_HOME/tritter or
  // ~/.cache/tritter); empty compiles them every run.
  std::filesystem::path rule_cache_dir;
};

// Reads the config (keys as in docs/curation.md) from JSON, or from the TOML subset of config_toml.h when the
// file name ends in .toml; throws Error naming an unknown key or a bad value.
CurateConfig curate_config_from_json(const nlohmann::json& j);
CurateConfig load_curate_config(const std::filesystem::path& path);

struct StageTime {
  double seconds = 0.0;  // thread CPU time, summed over threads
  uint64_t bytes = 0;
};

struct CurateReport {
  uint64_t docs_in = 0, bytes_in = 0;
  uint64_t docs_out = 0, bytes_out = 0;
  // Files that are not training material (config, credentials, hidden, unknown language, generated): scanned by
  // the secret gate, then dropped; their findings count in rejected_secret, the clean ones in `skipped`.
  uint64_t scanned_not_kept = 0, scanned_not_kept_bytes = 0;
  uint64_t triton_docs = 0, triton_kernels = 0;
  uint64_t rejected_secret = 0, dropped_low_quality = 0, exact_duplicates = 0, near_duplicates = 0;
  uint64_t near_clusters = 0;  // clusters with more than one member
  uint64_t shards = 0;
  std::map<std::string, uint64_t> skipped;             // reason -> files/records
  std::map<std::string, uint64_t> rejects_by_rule;     // secret rule -> documents
  std::map<std::string, uint64_t> label_docs_by_rule;  // label rule -> documents carrying it
  std::map<std::string, uint64_t> label_hits_by_rule;  // label rule -> occurrences
  std::map<std::string, uint64_t> flags;               // file-level quality flag -> documents
  std::map<std::string, uint64_t> docs_by_language;    // kept documents
  std::map<std::string, StageTime> stages;  // read, secrets, labels, exact, minhash, record, merge, lsh, write
  double wall_seconds = 0.0;
  double cpu_seconds = 0.0;  // user + system of the whole process during the run
  int threads = 1;
  uint64_t peak_rss_bytes = 0;
  uint64_t dedup_memory_bytes = 0;

  double duplicate_ratio() const;  // (exact + near) / documents that reached dedup
  nlohmann::json to_json() const;
  std::string summary() const;  // the readable summary (also summary.log)
};

// Runs the pipeline; throws Error for bad inputs/outdir (a missing input, an outdir that is a file, an outdir
// another run holds locked).
CurateReport curate(const std::vector<std::string>& inputs, const std::filesystem::path& outdir,
                    const CurateConfig& config, Context& ctx);

}  // namespace tritter::data
