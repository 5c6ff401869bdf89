#pragma once
// The body of the curation-source targets (jsonl, jsonl_zst, tar): the input is written as FILE_NAME and read
// through data::DocumentSource, as `tritter curate` reads its inputs. Every document must come out (or be skipped
// with a reason) or tritter::Error be thrown; never a crash, hang or out-of-bounds read.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "data/document.h"
#include "data/sources.h"
#include "fuzz_util.h"

namespace tritter::fuzz {

inline int fuzz_source(const uint8_t* data, size_t size, const std::string& file_name) {
  const auto path = write_input(file_name, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    data::SourceConfig config;
    config.max_file_bytes = 1 << 20;
    data::DocumentSource source({path.string()}, config, [](const std::string&, const std::string&) {});
    data::Document doc;
    for (int n = 0; n < 100000 && source.next(doc); ++n) {
      if (doc.text.size() > config.max_file_bytes) std::abort();
    }
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace tritter::fuzz
