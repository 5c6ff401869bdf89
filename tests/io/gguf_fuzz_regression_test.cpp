// Replays the GGUF fuzzer's seeds and every crasher it found (tests/fuzz/gguf_crashers/): each must parse or
// throw tritter::Error; the seeds must parse.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/gguf.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TEST(GgufFuzzRegression, SeedsParseAndCrashersParseOrThrowError) {
  int files = 0;
  for (const char* dir : {"/tests/fuzz/gguf_seeds", "/tests/fuzz/gguf_crashers"}) {
    const std::filesystem::path path = std::string(TRITTER_SOURCE_DIR) + dir;
    if (!std::filesystem::exists(path)) continue;
    const bool seeds = std::string(dir).ends_with("seeds");
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (!entry.is_regular_file() || entry.path().filename().string().starts_with(".")) continue;
      const std::string bytes = test::read_file(entry.path());
      ++files;
      try {
        GgufFile f(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), entry.path().string());
      } catch (const Error& e) {
        EXPECT_FALSE(seeds) << e.what();
      }
    }
  }
  EXPECT_GE(files, 3);
}

}  // namespace
}  // namespace tritter
