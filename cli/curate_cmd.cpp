// `tritter curate INPUT... -o OUTDIR [--config FILE.json|FILE.toml] [--extract-triton]`: the data curation pipeline
// (docs/curation.md). Parses flags, calls data::curate, prints the summary. `--report-only` runs the secret gate
// alone (no shards), prints the findings and exits 1 when there are any (for CI and pre-commit hooks).
#include <cstdio>

#include "commands.h"
#include "core/error.h"
#include "data/pipeline.h"
#include "data/secret_scan.h"
#include "io/atomic_file.h"

namespace tritter::cli {

void add_curate_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "curate", "Curate code for training: secret gate, security/quality labels, dedup, JSONL.zst shards");
  struct Options {
    std::vector<std::string> inputs;
    std::string outdir;
    std::string config;
    bool extract_triton = false;
    std::string text_key;
    bool no_near_dedup = false;
    bool report_only = false;
    std::string sarif;
    int exit_code = 1;
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("inputs", opts->inputs, "Directories, source files, or .jsonl / .jsonl.zst files")->required();
  cmd->add_option("-o,--output", opts->outdir, "Output directory (written atomically; not with --report-only)");
  cmd->add_option("--config", opts->config, "Config, .json or .toml (keys in docs/curation.md)");
  cmd->add_flag("--extract-triton", opts->extract_triton,
                "Put Python files with @triton.jit kernels into triton/shard-*.jsonl.zst");
  cmd->add_option("--text-key", opts->text_key, "JSONL field holding the text (default: text)");
  cmd->add_flag("--no-near-dedup", opts->no_near_dedup, "Exact dedup only (skip MinHash-LSH)");
  cmd->add_flag("--report-only", opts->report_only,
                "Only scan for secrets: print path:line:col: rule fingerprint per finding, write no shards, exit "
                "non-zero when anything is found");
  cmd->add_option("--sarif", opts->sarif, "With --report-only: also write the findings as SARIF 2.1.0 to this file");
  cmd->add_option("--exit-code", opts->exit_code, "With --report-only: exit status when secrets are found (default 1)");
  cmd->callback([opts, &global] {
    auto ctx = make_context(global);
    data::CurateConfig config = opts->config.empty() ? data::CurateConfig{} : data::load_curate_config(opts->config);
    if (opts->report_only) {
      if (!opts->text_key.empty()) config.source.text_key = opts->text_key;
      const data::SecretScanReport rep = data::scan_secrets_only(opts->inputs, config.source, *ctx);
      std::fputs(data::findings_text(rep).c_str(), stdout);
      if (!opts->sarif.empty()) write_file_atomic(opts->sarif, data::findings_sarif(rep));
      if (ctx->log_level != LogLevel::Quiet)
        std::fprintf(stderr, "%zu secret finding(s) in %llu files scanned (%.1f MB, %.2f s)\n", rep.findings.size(),
                     (unsigned long long)rep.files_scanned, double(rep.bytes_scanned) / 1e6, rep.wall_seconds);
      if (!rep.findings.empty()) throw CLI::RuntimeError(opts->exit_code);
      return;
    }
    if (opts->outdir.empty())
      throw_error("curate: -o/--output: missing, expected an output directory (or --report-only)");
    if (opts->extract_triton) config.extract_triton = true;
    if (!opts->text_key.empty()) config.source.text_key = opts->text_key;
    if (opts->no_near_dedup) config.near_dedup = false;
    const data::CurateReport report = data::curate(opts->inputs, opts->outdir, config, *ctx);
    if (ctx->log_level != LogLevel::Quiet) std::fputs(report.summary().c_str(), stdout);
    std::printf("wrote %s\n", opts->outdir.c_str());
  });
}

}  // namespace tritter::cli
