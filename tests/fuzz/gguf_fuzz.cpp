// libFuzzer target for the GGUF reader (io/gguf.h): any byte string must either parse (and then every tensor's
// bytes lie inside the input) or throw tritter::Error — never crash, hang or read out of bounds. Built and run by
// run_gguf_fuzz.sh; crashers go to gguf_crashers/ and are replayed by tests/io/gguf_fuzz_regression_test.cpp.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    tritter::GgufFile f(data, size, "fuzz");
    for (const auto& t : f.tensors()) {
      if (t.data < data || t.data + t.bytes > data + size) std::abort();
      volatile uint8_t sink = 0;
      if (t.bytes) sink = t.data[t.bytes - 1];
      (void)sink;
    }
    for (const auto& [k, v] : f.metadata()) {
      volatile size_t n = k.size() + v.s.size() + v.array.size();
      (void)n;
    }
  } catch (const tritter::Error&) {
  }
  return 0;
}
