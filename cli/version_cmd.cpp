// `tritter version`: the build and what this CPU gives the kernels.
#include "commands.h"
#include "core/cpu.h"

namespace tritter::cli {

void add_version_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("version", "Print the version, the CPU and the SIMD path the kernels will use");
  cmd->callback([&global] {
    auto ctx = make_context(global);
    std::printf("tritter 0.1.0\ncpu: %s, %d logical cores\nsimd: %s\nthreads: %d (default: the physical cores)\n",
                ctx->cpu.model_name.empty() ? "unknown" : ctx->cpu.model_name.c_str(), ctx->cpu.logical_cores,
                best_simd_level(ctx->cpu).c_str(), ctx->threads);
    std::printf("openmp wait: %s\n", openmp_wait_policy().c_str());
  });
}

}  // namespace tritter::cli
