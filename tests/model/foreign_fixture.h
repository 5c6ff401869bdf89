// Shared by the HF-folder and GGUF model tests: a small BitNet-shaped config, weights that every format holds
// exactly (ternary matrices T·a with exactly half the codes non-zero, so mean|W| = a/2 is a power of two; gains
// and embeddings exact in bf16), the manifest the independent Python writers read, and logits of a model.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/context.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "kernels/block_quant.h"
#include "model/hf_folder.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"

namespace tritter::test {

inline nlohmann::json bitnet_config_json() {
  return {{"architectures", {"BitNetForCausalLM"}}, {"model_type", "bitnet"}, {"vocab_size", 264},
          {"hidden_size", 256}, {"intermediate_size", 512}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"hidden_act", "relu2"},
          {"max_position_embeddings", 128}, {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0},
          {"tie_word_embeddings", true}, {"attention_bias", false}, {"bos_token_id", 1}, {"eos_token_id", 2},
          {"torch_dtype", "bfloat16"}};
}

// Hugging Face rope_scaling objects of each type Tritter applies, valid for bitnet_config_json()'s 128 positions.
inline std::vector<nlohmann::json> rope_scaling_examples() {
  return {{{"rope_type", "linear"}, {"factor", 2.0}},
          {{"rope_type", "dynamic"}, {"factor", 2.0}, {"original_max_position_embeddings", 64}},
          {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64}, {"attention_factor", 1.25}},
          {{"rope_type", "llama3"}, {"factor", 8.0}, {"original_max_position_embeddings", 64},
           {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}}};
}

// Parameters in tensor-table order that every format stores exactly.
inline std::vector<float> exact_params(const TritterConfig& c, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  for (const TensorInfo& t : tensor_table(c)) {
    float* w = p.data() + t.offset;
    const int64_t n = t.numel();
    if (t.role == TensorRole::BitLinear) {
      const float a = 1.0f / static_cast<float>(1 << (2 + rng.next_below(3)));
      std::vector<int8_t> q(static_cast<size_t>(n), 0);
      for (int64_t i = 0; i < n / 2; ++i) q[i] = rng.next_below(2) ? 1 : -1;
      for (int64_t i = n - 1; i > 0; --i) std::swap(q[i], q[rng.next_below(static_cast<uint32_t>(i + 1))]);
      for (int64_t i = 0; i < n; ++i) w[i] = a * q[i];
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const float x = t.role == TensorRole::Norm ? 1.0f + 0.2f * rng.normal() : 0.5f * rng.normal();
        w[i] = bf16_to_f32(f32_to_bf16(x));
      }
    }
  }
  return p;
}

inline void write_manifest(const std::filesystem::path& dir, const nlohmann::json& config, const TritterConfig& c,
                           const std::vector<float>& p) {
  nlohmann::json m{{"config", config}, {"tensors", nlohmann::json::array()}};
  for (const TensorInfo& t : tensor_table(c)) m["tensors"].push_back({{"name", t.name}, {"shape", t.shape}, {"offset", t.offset}});
  std::ofstream(dir / "manifest.json") << m.dump();
  std::ofstream(dir / "weights.f32", std::ios::binary)
      .write(reinterpret_cast<const char*>(p.data()), static_cast<std::streamsize>(p.size() * 4));
}

// Runs a test writer script with /usr/bin/python3; returns its exit status.
inline int run_python(const std::string& script, const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " + std::string(TRITTER_SOURCE_DIR) + "/tests/model/" + script + " " + args;
  return std::system(cmd.c_str());
}

inline PackedModel native_model(const TritterConfig& c, const std::vector<float>& p) {
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * 4);
  }, PackOptions{}, nullptr);
}

inline std::vector<float> model_logits(const ModelWeights& w) {
  Context ctx;
  Engine e(ctx, w, EngineOptions{});
  const std::vector<int32_t> ids = {1, 72, 101, 108, 108, 111, 33, 200, 9};
  std::vector<float> z(ids.size() * static_cast<size_t>(w.config.vocab_size));
  e.forward(ids, z.data(), true);
  return z;
}

}  // namespace tritter::test
