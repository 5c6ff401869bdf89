// What every subcommand shares: the global flags (--threads, --kernels, --verbose) and the Context made from them.
// Each subcommand lives in its own file and is listed in commands.h.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/context.h"

namespace tritter::cli {

struct GlobalOptions {
  int threads = 0;  // 0 = all logical cores
  std::string kernels = "auto";
  bool verbose = false;
  bool quiet = false;
};

// Builds the Context from the global flags (reads OMP/env only here, in cli/).
std::unique_ptr<Context> make_context(const GlobalOptions& options);

}  // namespace tritter::cli
