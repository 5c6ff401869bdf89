// libFuzzer target for curation's reader of JSON Lines records (one object a line, the text under "text"): see source_fuzz.h.
#include "source_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tritter::fuzz::fuzz_source(data, size, "input.jsonl");
}
