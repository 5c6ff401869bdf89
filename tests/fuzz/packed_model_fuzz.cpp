// libFuzzer target for the packed model reader (model/packed_model.h, .tritter files): any bytes must either open —
// config, every tensor's presence, dtype and shape, scales and codes checked — or throw tritter::Error; never crash,
// hang or read out of bounds. An opened model's weights are read end to end.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/packed_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = tritter::fuzz::write_input("model.tritter", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const auto model = tritter::PackedModel::open(path);
    const auto& w = model.weights();
    volatile float sink = 0;
    const int64_t h = w.config.hidden_size;
    if (w.final_norm) sink = w.final_norm[h - 1];
    if (w.embed) sink = w.embed[w.config.vocab_size * h - 1];
    const int64_t V = w.config.vocab_size;
    if (w.head.i8) sink = w.head.i8[V * h - 1];
    if (w.head.q4) sink = w.head.q4[V * tritter::head_i4_row_bytes(h) - 1] + w.head.mult[V * tritter::head_i4_groups(h) - 1];
    if (w.head.row_scale) sink = w.head.row_scale[V - 1];
    (void)sink;
  } catch (const tritter::Error&) {
  }
  return 0;
}
