// libFuzzer target for the PEFT LoRA adapter reader (model/peft.h): an input is a 2-byte little-endian length L,
// L bytes of adapter_config.json, then adapter_model.safetensors. Either the adapter loads for the fixed base
// below — every tensor present, of the table's dtype and shape, finite — or tritter::Error is thrown; never a
// crash, hang or out-of-bounds read.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fuzz_util.h"
#include "model/config.h"
#include "model/peft.h"

namespace {

// The seeds' base (tests/fuzz/make_seeds.sh): 1 layer, hidden 16, 2 heads of 8, 1 KV head, MLP 32, vocab 264.
const tritter::TritterConfig& base_config() {
  static const tritter::TritterConfig c = tritter::config_from_json(
      nlohmann::json::parse(R"({"model_size": "custom", "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 32, "vocab_size": 264,
        "max_position_embeddings": 64})"),
      "fuzz base");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t json_len = std::min<size_t>(size - 2, data[0] | (size_t{data[1]} << 8));
  const std::string_view json(reinterpret_cast<const char*>(data) + 2, json_len);
  const std::string_view tensors(reinterpret_cast<const char*>(data) + 2 + json_len, size - 2 - json_len);
  tritter::fuzz::write_input("adapter/adapter_config.json", json);
  tritter::fuzz::write_input("adapter/adapter_model.safetensors", tensors);
  try {
    const auto adapter = tritter::load_lora_adapter(tritter::fuzz::scratch_dir() / "adapter", base_config(), nullptr);
    const auto params = adapter.params.as<float>();
    volatile float sink = params.empty() ? 0.f : params.back();
    (void)sink;
  } catch (const tritter::Error&) {
  }
  return 0;
}
