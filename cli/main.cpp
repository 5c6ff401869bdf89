// tritter: the command-line front end. Parses flags, runs one subcommand, prints Error messages and exits
// non-zero on failure; with --verbose, reports the process's peak memory at the end.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "inference_commands.h"
#include "core/error.h"
#include "core/memory.h"

int main(int argc, char** argv) {
  using namespace tritter;
  cli::apply_openmp_wait_policy(argv);  // first: it may re-execute the program
  CLI::App app{"Tritter: train, fine-tune, pack and run ternary (BitNet b1.58) transformers on ordinary machines."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tritter 0.1.0");
  cli::GlobalOptions global;
  app.add_option("-t,--threads", global.threads, "Worker threads (0 = the physical cores this process may use; when other programs keep cores busy, fewer, e.g. -t 1, can be faster)")->check(CLI::NonNegativeNumber);
  app.add_option("--kernels", global.kernels, "Kernel path: auto, ref, scalar, avx2, avx512-vnni")->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "Per-phase details and the process's peak memory at the end");
  app.add_flag("-q,--quiet", global.quiet, "Print only results and errors");
  app.fallthrough();

  cli::add_version_command(app, global);
  cli::add_bench_command(app, global);
  cli::add_specs_command(app, global); cli::add_hw_command(app, global);
  cli::add_curate_command(app, global); cli::add_bench_curate_command(app, global);
  cli::add_inference_commands(app, global);
  cli::add_bench_stream_command(app, global);
  cli::add_convert_command(app, global);
  cli::add_finetune_command(app, global); cli::add_merge_lora_command(app, global);
  cli::add_serve_command(app, global);
  cli::add_embed_command(app, global);
  cli::add_train_tokenizer_command(app, global);
  cli::add_audio_command(app, global);
  cli::add_train_command(app, global); cli::add_grads_command(app, global); cli::add_eval_command(app, global); cli::add_export_command(app, global); cli::add_bench_train_command(app, global);
  cli::add_expand_command(app, global); cli::add_bench_long_command(app, global);

  cli::rewrite_llama_flags(argc, argv);  // -cnv, -sys
  if (const int rc = cli::check_command_line(app, argc, argv); rc >= 0) return rc;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  if (global.verbose) {
    const ProcessMemory mem = process_memory();
    std::fprintf(stderr, "memory: peak RSS %s, RSS at exit %s\n", format_bytes(mem.peak_rss_bytes).c_str(),
                 format_bytes(mem.rss_bytes).c_str());
  }
  return 0;
}
