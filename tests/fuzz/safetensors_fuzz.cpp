// libFuzzer target for the safetensors reader (io/safetensors.h): any byte string must either parse (and then
// every tensor's bytes lie inside the input) or throw tritter::Error — never crash, hang or read out of bounds.
// Built and run by run_fuzz.sh (clang -fsanitize=fuzzer,address,undefined); crashers it finds go to crashers/ and
// are replayed by tests/io/safetensors_fuzz_regression_test.cpp.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    tritter::SafeTensorsFile f(data, size, "fuzz");
    for (const auto& t : f.tensors()) {
      if (t.data < data || t.data + t.bytes() > data + size) std::abort();
      volatile uint8_t sink = 0;
      if (t.bytes()) sink = t.data[t.bytes() - 1];
      (void)sink;
    }
  } catch (const tritter::Error&) {
  }
  return 0;
}
