// What every subcommand shares: the global flags (--threads, --kernels, --verbose), the Context made from them,
// the OpenMP wait policy, the command-line check that runs before CLI11 (usage.cpp) and the few spellings that
// several commands accept (llama.cpp's KV-cache names, seeds, model paths).
// Each subcommand lives in its own file and is listed in commands.h.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <vector>
#include <limits>
#include <cstdio>
#include <memory>
#include <string>

#include "core/context.h"
#include "kernels/ternary_matmul.h"

namespace tritter::cli {

struct GlobalOptions {
  int threads = 0;  // 0 = the physical cores this process may use (default_thread_count)
  std::string kernels = "auto";
  bool verbose = false;
  bool quiet = false;
};

// Builds the Context from the global flags (reads OMP/env only here, in cli/).
std::unique_ptr<Context> make_context(const GlobalOptions& options);

// libgomp reads its wait policy once, when it is loaded: before main. Unless the user chose one (OMP_WAIT_POLICY
// or GOMP_SPINCOUNT set), this sets GOMP_SPINCOUNT=300 (spin a few microseconds, then sleep; libgomp's default
// spins ~300,000 times) and re-executes the program once so that it takes effect; returns (without exec) when a
// policy is already in place or exec fails.
void apply_openmp_wait_policy(char** argv);
// What is in effect, for `tritter version`: "GOMP_SPINCOUNT=300 (set by tritter)", "OMP_WAIT_POLICY=active
// (from the environment)", or "the OpenMP runtime's default" when the re-exec failed.
std::string openmp_wait_policy();

// `tritter` alone: the registered commands with their descriptions.
void print_command_list(const CLI::App& app, std::FILE* out);
// Checks argv against the registered commands and options before CLI11 parses it: prints the command list for no
// arguments (returns 0), names an unknown command or option with the nearest registered one (returns 2), and
// returns -1 when CLI11 should parse.
int check_command_line(const CLI::App& app, int argc, char** argv);

// --kv-cache: Tritter's names (f32, f16, int8, int4) or llama.cpp's (f16, q8_0, q4_0) → Tritter's name.
std::string kv_cache_name(const std::string& name);
// --head auto|f32|i8|i4 on a command that loads a model (the LM head of a converted model: model/model_files.h).
void add_head_option(CLI::App* cmd, std::string* head);
// --ternary-layout t16|t20 of a command that writes a packed file (the layout stored).
void add_stored_layout_option(CLI::App* cmd, std::string* layout);
TernaryLayout stored_layout_from_name(const std::string& name);  // "t16" | "t20"
// --ternary-layout auto|t16|t20 (model/model_files.h: LayoutChoice).
void add_ternary_layout_option(CLI::App* cmd, std::string* layout);
// The layout asked for, with auto made t16 when --kernels forces a tier without AVX-512 VNNI (where T20 is slower).
std::string effective_ternary_layout(const std::string& layout, const std::string& kernels);
// --seed: "-1" (or "random") draws a random 32-bit seed; otherwise a non-negative integer that fits in 64 bits.
// Anything else throws an Error naming `flag`; never wraps.
uint64_t parse_seed(const std::string& text, const std::string& flag);

// A model named on the command line: a packed file, a full-precision checkpoint or a training run directory
// (its latest checkpoint). Returns what it is, for -v: "packed file", "checkpoint, packed in memory" or
// "run directory RUN: latest checkpoint PATH, packed in memory".
std::string describe_model_path(const std::string& path);

// One number through a printf format ("%.2f GiB"), and an integer with thousands separators ("1,234,567").
std::string fmt(const char* format, double v);
std::string grouped(int64_t n);
// "1,2,4" → {1, 2, 4}; an item that is not a number, outside 1 .. max, or an empty list is an error naming `flag`
// ("--rows: found 0, expected counts 1 .. 1024"). `what` names the items ("thread counts").
std::vector<int> parse_count_list(const std::string& text, const char* flag, const char* what,
                                  int max = std::numeric_limits<int>::max());

}  // namespace tritter::cli
