// libFuzzer target for the checkpoint reader (model/checkpoint.h: safetensors, format tritter-v1, F32/BF16/F16):
// any bytes must either load — every table tensor present with its dtype and shape — or throw tritter::Error;
// never crash, hang or read out of bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/tensor_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = tritter::fuzz::write_input("model.safetensors", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const auto ckpt = tritter::load_checkpoint(path, nullptr);
    const int64_t n = tritter::parameter_count(ckpt.config);
    if (n > 0) {
      volatile float sink = ckpt.params.as<float>()[n - 1];
      (void)sink;
    }
  } catch (const tritter::Error&) {
  }
  return 0;
}
