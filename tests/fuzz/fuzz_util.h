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

// True when a config's tensors could fit in `file_bytes` (at least 2 bits per weight). The loaders build the
// tensor table from the config before they look for the tensors, so a 1 KB file claiming 2^32 layers asks for
// unbounded memory; the loaders are to reject such configs from the bytes present (hardening), and until they do
// the targets leave those inputs out rather than report the known out-of-memory again.
inline bool plausible_for(const TritterConfig& c, size_t file_bytes) {
  const double h = static_cast<double>(c.hidden_size), f = static_cast<double>(c.intermediate_size);
  const double q = static_cast<double>(c.num_attention_heads) * static_cast<double>(c.head_dim);
  const double kv = static_cast<double>(c.num_key_value_heads) * static_cast<double>(c.head_dim);
  const double per_layer = h * (q + 2 * kv) + q * h + 3 * h * f + 4 * h;
  const double params = static_cast<double>(c.num_hidden_layers) * per_layer + 2 * static_cast<double>(c.vocab_size) * h;
  return std::isfinite(params) && params / 4 <= static_cast<double>(file_bytes) + 4096 &&
         c.max_position_embeddings <= (int64_t{1} << 20);
}

}  // namespace tritter::fuzz
