// Registers the inference subcommands: init, pack, inspect, tokenize, generate and `bench model`.
#include "inference_commands.h"

namespace tritter::cli {

void add_inference_commands(CLI::App& app, GlobalOptions& global) {
  add_init_command(app, global);
  add_pack_command(app, global);
  add_inspect_command(app, global);
  add_tokenize_command(app, global);
  add_generate_command(app, global);
  add_bench_model_command(bench_command(app), global);
}

}  // namespace tritter::cli
