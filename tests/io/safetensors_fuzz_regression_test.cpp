// Replays the fuzzer's seeds and every crasher it ever found (tests/fuzz/safetensors_crashers/): each must parse or throw
// tritter::Error, nothing else.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TEST(SafetensorsFuzzRegression, SeedsAndCrashersParseOrThrowError) {
  int files = 0;
  for (const char* dir : {"/tests/fuzz/safetensors_seeds", "/tests/fuzz/safetensors_crashers"}) {
    const std::filesystem::path path = std::string(TRITTER_SOURCE_DIR) + dir;
    if (!std::filesystem::exists(path)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (!entry.is_regular_file() || entry.path().filename().string().starts_with(".")) continue;
      const std::string bytes = test::read_file(entry.path());
      ++files;
      try {
        SafeTensorsFile f(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), entry.path().string());
      } catch (const Error&) {
      }
    }
  }
  EXPECT_GE(files, 4);
}

}  // namespace
}  // namespace tritter
