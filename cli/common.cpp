#include "common.h"

#include "kernels/parallel.h"


namespace tritter::cli {

std::unique_ptr<Context> make_context(const GlobalOptions& options) {
  auto ctx = std::make_unique<Context>();
  ctx->threads = options.threads > 0 ? options.threads : ctx->cpu.logical_cores;
  set_default_threads(ctx->threads);
  ctx->kernels = kernel_tier_from_name(options.kernels);
  ctx->log_level = options.quiet ? LogLevel::Quiet : (options.verbose ? LogLevel::Verbose : LogLevel::Info);
  return ctx;
}

}  // namespace tritter::cli
