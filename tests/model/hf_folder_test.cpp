// Hugging Face BitNet folders written by an independent Python writer (tests/model/hf_bitnet_writer.py, standard
// library only) load to the same logits as Tritter's native load of the same weights: packed U8 + weight_scale,
// bf16 masters (quantized at load), sharded. Bad folders give errors naming the file and field.
#include "model/hf_folder.h"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/foreign_fixture.h"
#include "model/model_files.h"
#include "util/test_util.h"

namespace tritter {
namespace {

struct HfFixture {
  test::TempDir dir;
  nlohmann::json cfg = test::bitnet_config_json();
  TritterConfig c = hf_config_to_tritter(cfg, "test");
  std::vector<float> p = test::exact_params(c, 7);
  HfFixture() { test::write_manifest(dir.path(), cfg, c, p); }
  std::filesystem::path write(const std::string& mode) {
    const auto out = dir / mode;
    const std::string args = (dir / "manifest.json").string() + " " + (dir / "weights.f32").string() + " " +
                             out.string() + " " + mode;
    EXPECT_EQ(test::run_python("hf_bitnet_writer.py", args), 0);
    return out;
  }
};

TEST(HfFolder, ConfigMapsBitNetKeys) {
  const TritterConfig c = hf_config_to_tritter(test::bitnet_config_json(), "config.json");
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.post_norm, PostNorm::None);
  EXPECT_EQ(c.mlp_act, MlpAct::Relu2Glu);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(bitnet_compatible(c));
  auto j = test::bitnet_config_json();
  j["hidden_act"] = "silu";
  test::expect_error([&] { hf_config_to_tritter(j, "file 'x/config.json'"); },
                     {"file 'x/config.json'", "field 'hidden_act' is 'silu', expected 'relu2'"});
  j = test::bitnet_config_json();
  j.erase("hidden_size");
  test::expect_error([&] { hf_config_to_tritter(j, "file 'c.json'"); }, {"file 'c.json'", "field 'hidden_size' is missing"});
  j = test::bitnet_config_json();
  j["architectures"] = {"LlamaForCausalLM"};
  test::expect_error([&] { hf_config_to_tritter(j, "c"); }, {"architectures[0] 'LlamaForCausalLM'"});
}

TEST(HfFolder, PackedBf16AndShardedFoldersGiveTheNativeLogits) {
  HfFixture fx;
  const PackedModel native = test::native_model(fx.c, fx.p);
  const std::vector<float> want = test::model_logits(native.weights());
  for (const char* mode : {"packed", "bf16", "sharded"}) {
    const auto folder = fx.write(mode);
    LoadedModel m = load_any_model(folder, nullptr);
    EXPECT_EQ(m.kind, ModelFileKind::HfFolder) << mode;
    EXPECT_TRUE(m.add_bos) << mode;
    EXPECT_EQ(m.model.config(), fx.c) << mode;
    EXPECT_EQ(test::model_logits(m.model.weights()), want) << mode;
    EXPECT_EQ(m.model.weights().bytes_per_token, native.weights().bytes_per_token) << mode;
  }
  // The folder's model.safetensors also names the folder.
  EXPECT_EQ(detect_model_file(fx.dir / "packed" / "model.safetensors"), ModelFileKind::HfFolder);
}

TEST(HfFolder, TritterWritesAFolderThatLoadsBack) {
  HfFixture fx;
  const PackedModel native = test::native_model(fx.c, fx.p);
  write_hf_folder(fx.dir / "out", native.weights(), HfWriteOptions{});
  const nlohmann::json cfg = nlohmann::json::parse(test::read_file(fx.dir / "out" / "config.json"));
  EXPECT_EQ(cfg["architectures"][0], "BitNetForCausalLM");
  LoadedModel m = load_any_model(fx.dir / "out", nullptr);
  EXPECT_FALSE(m.add_bos);
  EXPECT_EQ(m.model.weights().head.format, HeadFormat::F32);  // auto: a full-precision head stays f32
  EXPECT_EQ(test::model_logits(m.model.weights()), test::model_logits(native.weights()));
  // --head i8: the packer's int8 head of the same rows.
  const PackedModel native_i8 = PackedModel::in_memory(fx.c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, fx.p.data() + info.offset, static_cast<size_t>(info.numel()) * 4);
  }, PackOptions{HeadFormat::I8}, nullptr);
  LoadedModel mi = load_any_model(fx.dir / "out", nullptr, LoadOptions{HeadChoice::I8});
  EXPECT_EQ(mi.model.weights().head.format, HeadFormat::I8);
  EXPECT_EQ(mi.model.weights().bytes_per_token, native_i8.weights().bytes_per_token);
  EXPECT_EQ(test::model_logits(mi.model.weights()), test::model_logits(native_i8.weights()));
  // A Tritter layer BitNet's graph lacks (q/k norms, post-FFN norm): TritterForCausalLM, same logits.
  TritterConfig t = preset_config("test");
  std::vector<float> p(static_cast<size_t>(parameter_count(t)));
  for (size_t i = 0; i < p.size(); ++i) p[i] = 0.01f * static_cast<float>((i * 7919) % 201) - 1.0f;
  const PackedModel tm = test::native_model(t, p);
  write_hf_folder(fx.dir / "tr", tm.weights(), HfWriteOptions{});
  EXPECT_EQ(nlohmann::json::parse(test::read_file(fx.dir / "tr" / "config.json"))["architectures"][0], "TritterForCausalLM");
  LoadedModel back = load_any_model(fx.dir / "tr", nullptr);
  EXPECT_EQ(test::model_logits(back.model.weights()), test::model_logits(tm.weights()));
}

TEST(HfFolder, BadFoldersNameTheFileAndField) {
  HfFixture fx;
  const auto folder = fx.write("packed");
  std::filesystem::remove(folder / "tokenizer.json");
  test::expect_error([&] { load_any_model(folder, nullptr); }, {"folder '", "tokenizer.json is missing"});
  const auto f2 = fx.write("sharded");
  auto cfg = test::bitnet_config_json();
  cfg["intermediate_size"] = 768;
  test::write_file(f2 / "config.json", cfg.dump());
  test::expect_error([&] { load_any_model(f2, nullptr); },
                     {"mlp.gate_proj.weight': shape [128, 256], expected [192, 256] (from config.json)"});
  const auto f3 = fx.write("bf16");
  std::filesystem::remove(f3 / "model.safetensors");
  test::expect_error([&] { load_any_model(f3, nullptr); }, {"has neither model.safetensors nor model.safetensors.index.json"});
  test::TempDir empty;
  test::expect_error([&] { load_any_model(empty.path(), nullptr); }, {"has no config.json", "GGUF"});
  test::write_file(empty / "x.bin", "PK\x03\x04 not a model at all");
  test::expect_error([&] { load_any_model(empty / "x.bin", nullptr); }, {"x.bin': not a model file Tritter reads", "GGUF"});
  // A 2-bit code 3 in a packed weight.
  const auto f4 = fx.write("packed");
  std::string st = test::read_file(f4 / "model.safetensors");
  const size_t n = static_cast<uint8_t>(st[0]) | (static_cast<uint8_t>(st[1]) << 8) | (static_cast<uint8_t>(st[2]) << 16);
  const auto header = nlohmann::json::parse(st.substr(8, n));
  st[8 + n + header["model.layers.0.self_attn.q_proj.weight"]["data_offsets"][0].get<size_t>()] = static_cast<char>(0xff);
  test::write_file(f4 / "model.safetensors", st);
  test::expect_error([&] { load_any_model(f4, nullptr); }, {"2-bit code 3"});
}

// rope_scaling of every type: config.json's object is read (not refused), an independent writer's folder gives the
// native logits of the scaled model, and Tritter's writer carries the object so the folder reads back the same.
TEST(HfFolder, RopeScalingIsReadAndCarriedByTheWriter) {
  for (const nlohmann::json& rs : test::rope_scaling_examples()) {
    const std::string type = rs["rope_type"];
    test::TempDir dir;
    nlohmann::json cfg = test::bitnet_config_json();
    cfg["rope_scaling"] = rs;
    const TritterConfig c = hf_config_to_tritter(cfg, "config.json");
    EXPECT_EQ(rope_scaling_name(c.rope_scaling.type), type);
    EXPECT_EQ(c.rope_scaling.factor, rs["factor"].get<double>()) << type;
    for (const auto& [k, v] : rs.items()) EXPECT_EQ(config_to_json(c, true)["rope_scaling"][k], v) << type << " " << k;
    const std::vector<float> p = test::exact_params(c, 5);
    test::write_manifest(dir.path(), cfg, c, p);
    ASSERT_EQ(test::run_python("hf_bitnet_writer.py", (dir / "manifest.json").string() + " " +
                                                          (dir / "weights.f32").string() + " " + (dir / "in").string() + " packed"), 0);
    const LoadedModel m = load_any_model(dir / "in", nullptr);
    EXPECT_EQ(m.model.config(), c) << type;
    const PackedModel native = test::native_model(c, p);
    const std::vector<float> want = test::model_logits(native.weights());
    EXPECT_EQ(test::model_logits(m.model.weights()), want) << type;
    if (type != "dynamic") {  // dynamic is plain RoPE within the original length; the others change the logits
      TritterConfig plain = c;
      plain.rope_scaling = RopeScaling{};
      EXPECT_NE(test::model_logits(test::native_model(plain, p).weights()), want) << type;
    }
    write_hf_folder(dir / "out", native.weights(), HfWriteOptions{});
    const nlohmann::json written = nlohmann::json::parse(test::read_file(dir / "out" / "config.json"));
    EXPECT_EQ(written["architectures"][0], "BitNetForCausalLM") << type;
    for (const auto& [k, v] : rs.items()) EXPECT_EQ(written["rope_scaling"][k], v) << type << " " << k;  // and defaults
    EXPECT_EQ(load_any_model(dir / "out", nullptr).model.config(), c) << type;
  }
  auto j = test::bitnet_config_json();
  j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}};
  test::expect_error([&] { hf_config_to_tritter(j, "file 'x/config.json'"); },
                     {"file 'x/config.json'", "rope_scaling", "'longrope' is not supported", "'yarn', 'llama3'"});
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  test::expect_error([&] { hf_config_to_tritter(j, "file 'x/config.json'"); },
                     {"file 'x/config.json'", "rope_type 'llama3' needs 'original_max_position_embeddings'"});
}

}  // namespace
}  // namespace tritter
