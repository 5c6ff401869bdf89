// The inference engine's subcommands, one file each; add_inference_commands (inference_commands.cpp)
// registers them all, so commands.h and main.cpp carry one line for the lot.
#pragma once
#include "commands.h"

namespace tritter::cli {

void add_init_command(CLI::App& app, GlobalOptions& global);
void add_pack_command(CLI::App& app, GlobalOptions& global);
void add_inspect_command(CLI::App& app, GlobalOptions& global);
void add_tokenize_command(CLI::App& app, GlobalOptions& global);
void add_generate_command(CLI::App& app, GlobalOptions& global);
// llama-cli's multi-letter single-dash flags (-cnv, -sys), which CLI11 cannot name, as their long forms.
void rewrite_llama_flags(int argc, char** argv);
void add_bench_model_command(CLI::App& bench, GlobalOptions& global);  // under `tritter bench`

}  // namespace tritter::cli
