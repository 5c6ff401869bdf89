// Writes the model-file seeds of the fuzz targets (packed_model_seeds/, checkpoint_seeds/, peft_adapter_seeds/,
// config_json_seeds/) for a tiny config, so each seed is a few KB and mutations reach the header and the tensors.
// Built by -DTRITTER_FUZZ=ON as fuzz_make_seeds; usage: fuzz_make_seeds tests/fuzz. Rerun when a format changes.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/init.h"
#include "model/lora.h"
#include "model/packed_model.h"
#include "model/peft.h"
#include "model/tensor_table.h"

namespace fs = std::filesystem;
using namespace tritter;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FUZZ_DIR (tests/fuzz)\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  // The base of peft_adapter_fuzz.cpp: 1 layer, hidden 16, 2 heads of 8, 1 KV head, MLP 32, vocab 264.
  const nlohmann::json cfg_json = nlohmann::json::parse(R"({"model_size": "custom", "hidden_size": 16,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 32,
      "vocab_size": 264, "max_position_embeddings": 64})");
  const TritterConfig config = config_from_json(cfg_json, "seed config");
  std::vector<float> params(static_cast<size_t>(parameter_count(config)));
  init_parameters(params, config, 7);
  for (const char* d : {"packed_model_seeds", "checkpoint_seeds", "peft_adapter_seeds", "config_json_seeds"}) {
    fs::create_directories(dir / d);
  }
  pack_checkpoint(dir / "packed_model_seeds/tiny_f32_head.tritter", config, params, PackOptions{HeadFormat::F32});
  pack_checkpoint(dir / "packed_model_seeds/tiny_i8_head.tritter", config, params, PackOptions{HeadFormat::I8});
  pack_checkpoint(dir / "packed_model_seeds/tiny_i4_head.tritter", config, params, PackOptions{HeadFormat::I4});
  PackOptions t20{HeadFormat::I8};
  t20.layout = TernaryLayout::T20;
  pack_checkpoint(dir / "packed_model_seeds/tiny_t20.tritter", config, params, t20);
  save_checkpoint(dir / "checkpoint_seeds/tiny_bf16.safetensors", config, params, {}, DType::BF16);
  save_checkpoint(dir / "checkpoint_seeds/tiny_f16.safetensors", config, params, {}, DType::F16);
  write_file_atomic(dir / "config_json_seeds/tiny.json", config_to_json(config).dump(2) + "\n");
  write_file_atomic(dir / "config_json_seeds/preset.json", R"({"model_size": "test", "sliding_window": 32})" "\n");
  // Adapters: 2-byte little-endian length of adapter_config.json, the JSON, then adapter_model.safetensors.
  const fs::path tmp = fs::temp_directory_path() / ("tritter-seeds-" + std::to_string(::getpid()));
  int n = 0;
  for (const LoraConfig& lora : {LoraConfig{.rank = 2}, LoraConfig{.rank = 1, .alpha = 2, .targets = {"q_proj", "k_proj",
                                   "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}}) {
    const auto table = lora_table(config, lora);
    std::vector<float> lp(static_cast<size_t>(lora_num_params(table, lora.rank)));
    for (size_t i = 0; i < lp.size(); ++i) lp[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
    save_lora_adapter(tmp, config, lora, lp, "tiny");
    const std::string js = read_file_bytes(tmp / "adapter_config.json");
    const std::string st = read_file_bytes(tmp / "adapter_model.safetensors");
    std::string seed;
    seed += static_cast<char>(js.size() & 0xff);
    seed += static_cast<char>(js.size() >> 8);
    write_file_atomic(dir / ("peft_adapter_seeds/adapter" + std::to_string(++n) + ".bin"), seed + js + st);
  }
  fs::remove_all(tmp);
  return 0;
}
