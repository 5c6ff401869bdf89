// libFuzzer target for curation's reader of tar archives (ustar/pax/GNU headers, long names, members read as source files): see source_fuzz.h.
#include "source_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tritter::fuzz::fuzz_source(data, size, "input.tar");
}
