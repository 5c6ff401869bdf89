#pragma once
// Helpers of the libFuzzer targets whose readers take a path (packed model, checkpoint, adapter, configs, curation
// sources): the input goes to a file in a per-process directory under $TMPDIR, rewritten for every input.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "model/config.h"

namespace tritter::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                              ("tritter-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    // Removed when libFuzzer ends by exit() after -max_total_time (a crash leaves the files to look at). The
    // handler reads a copy that is never destroyed: `d` itself is gone by the time atexit handlers run.
    static const std::filesystem::path* const keep = new std::filesystem::path(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*keep, ec);
    });
    return d;
  }();
  return dir;
}

// Writes bytes to scratch_dir()/name and returns its path.
inline std::filesystem::path write_input(const std::string& name, std::string_view bytes) {
  const std::filesystem::path p = scratch_dir() / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

}  // namespace tritter::fuzz
