// libFuzzer target for curation's reader of zstd-compressed JSON Lines (frames, truncation, then the records): see source_fuzz.h.
#include "source_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tritter::fuzz::fuzz_source(data, size, "input.jsonl.zst");
}
