// `tritter curate INPUT... -o OUTDIR [--config FILE.json|FILE.toml] [--extract-triton]`: the data curation pipeline
// (docs/curation.md). Parses flags, calls data::curate, prints the summary.
#include <cstdio>

#include "commands.h"
#include "data/pipeline.h"

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
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("inputs", opts->inputs, "Directories, source files, or .jsonl / .jsonl.zst files")->required();
  cmd->add_option("-o,--output", opts->outdir, "Output directory (written atomically)")->required();
  cmd->add_option("--config", opts->config, "Config, .json or .toml (keys in docs/curation.md)");
  cmd->add_flag("--extract-triton", opts->extract_triton,
                "Put Python files with @triton.jit kernels into triton/shard-*.jsonl.zst");
  cmd->add_option("--text-key", opts->text_key, "JSONL field holding the text (default: text)");
  cmd->add_flag("--no-near-dedup", opts->no_near_dedup, "Exact dedup only (skip MinHash-LSH)");
  cmd->callback([opts, &global] {
    auto ctx = make_context(global);
    data::CurateConfig config = opts->config.empty() ? data::CurateConfig{} : data::load_curate_config(opts->config);
    if (opts->extract_triton) config.extract_triton = true;
    if (!opts->text_key.empty()) config.source.text_key = opts->text_key;
    if (opts->no_near_dedup) config.near_dedup = false;
    const data::CurateReport report = data::curate(opts->inputs, opts->outdir, config, *ctx);
    if (ctx->log_level != LogLevel::Quiet) std::fputs(report.summary().c_str(), stdout);
    std::printf("wrote %s\n", opts->outdir.c_str());
  });
}

}  // namespace tritter::cli
