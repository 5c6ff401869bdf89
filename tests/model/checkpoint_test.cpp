// Full-precision checkpoints: round trip on the "test" preset, the spec's names and metadata, and one bad file per
// failure (missing, extra, wrong shape, wrong dtype, wrong format, bad config), each naming the file and tensor.
#include "model/checkpoint.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/init.h"
#include "model/tensor_table.h"
#include "util/test_util.h"

namespace tritter {
namespace {

std::vector<float> random_params(const TritterConfig& c, uint64_t seed) {
  std::vector<float> p(parameter_count(c));
  init_parameters(p, c, seed);
  return p;
}

std::string load_error(const std::filesystem::path& path) {
  try {
    load_checkpoint(path, nullptr);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

TEST(Checkpoint, RoundTripIsExactWithSpecNamesAndMetadata) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  const auto p = random_params(c, 7);
  save_checkpoint(dir / "ck.safetensors", c, p);
  const Checkpoint ck = load_checkpoint(dir / "ck.safetensors", nullptr);
  EXPECT_EQ(config_to_json(ck.config, true), config_to_json(c, true));
  ASSERT_EQ(ck.params.bytes(), p.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(ck.params.data(), p.data(), ck.params.bytes()), 0);

  SafeTensorsFile f(dir / "ck.safetensors");
  EXPECT_EQ(f.metadata_value("format"), "tritter-v1");
  EXPECT_NE(f.find("model.layers.1.self_attn.q_norm.weight"), nullptr);
  EXPECT_NE(f.find("model.layers.0.mlp.ffn_sub_norm.weight"), nullptr);
  EXPECT_NE(f.find("lm_head.weight"), nullptr);
  EXPECT_EQ(f.tensors().size(), tensor_table(c).size());
}

TEST(Checkpoint, InitFollowsSpecStdsAndSeed) {
  const TritterConfig c = preset_config("test");
  const auto a = random_params(c, 1), b = random_params(c, 1), d = random_params(c, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, d);
  const auto table = tensor_table(c);
  for (const auto& info : table) {
    const float* x = a.data() + info.offset;
    double s2 = 0;
    for (int64_t i = 0; i < info.numel(); ++i) s2 += double(x[i]) * x[i];
    const double rms = std::sqrt(s2 / info.numel());
    const double want = info.role == TensorRole::Norm ? 1.0 : init_std_for(c, info);
    // Sample std of n normals: relative error ~ 1/sqrt(2n); allow 6 of those.
    EXPECT_NEAR(rms, want, 6.0 * want / std::sqrt(2.0 * info.numel()) + 1e-12) << info.name;
  }
  EXPECT_LT(init_std_for(c, *find_tensor(table, "model.layers.0.self_attn.o_proj.weight")), c.init_std);
}

TEST(CheckpointBad, MissingWrongShapeWrongDtypeExtra) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  const auto p = random_params(c, 3);
  const auto table = tensor_table(c);
  const std::string meta_cfg = config_to_json(c, true).dump();
  auto write_variant = [&](const std::string& name, auto&& edit) {
    std::vector<SafeTensorOut> out;
    for (const auto& info : table) out.push_back({info.name, DType::F32, info.shape, p.data() + info.offset, {}});
    edit(out);
    write_safetensors(dir / name, out, {{"format", "tritter-v1"}, {"config", meta_cfg}});
    return dir / name;
  };
  std::string msg = load_error(write_variant("missing.st", [](auto& o) { o.erase(o.begin() + 3); }));
  EXPECT_NE(msg.find("missing.st"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor '" + table[3].name + "' is missing"), std::string::npos) << msg;

  msg = load_error(write_variant("shape2.st", [](auto& o) { o[3].shape = {o[3].shape[1], o[3].shape[0]}; }));
  EXPECT_NE(msg.find("tensor '" + table[3].name + "': shape [64, 32], expected [32, 64]"), std::string::npos) << msg;

  msg = load_error(write_variant("dtype.st", [](auto& o) {
    o[0].dtype = DType::I32;
  }));
  EXPECT_NE(msg.find("tensor 'model.embed_tokens.weight': dtype I32, expected F32"), std::string::npos) << msg;

  std::vector<float> extra(5);
  msg = load_error(write_variant("extra.st", [&](auto& o) { o.push_back({"bogus.weight", DType::F32, {5}, extra.data(), {}}); }));
  EXPECT_NE(msg.find("unexpected tensor 'bogus.weight'"), std::string::npos) << msg;
}

TEST(CheckpointBad, FormatAndConfig) {
  test::TempDir dir;
  std::vector<float> x(4);
  write_safetensors(dir / "a.st", {{"x", DType::F32, {4}, x.data(), {}}}, {{"format", "pt"}});
  std::string msg = load_error(dir / "a.st");
  EXPECT_NE(msg.find("format 'pt', expected 'tritter-v1'"), std::string::npos) << msg;
  write_safetensors(dir / "b.st", {{"x", DType::F32, {4}, x.data(), {}}}, {{"format", "tritter-v1"}, {"config", "{"}});
  msg = load_error(dir / "b.st");
  EXPECT_NE(msg.find("'config' is not valid JSON"), std::string::npos) << msg;
  write_safetensors(dir / "c.st", {{"x", DType::F32, {4}, x.data(), {}}},
                    {{"format", "tritter-v1"}, {"config", R"({"hidden_size": -3})"}});
  msg = load_error(dir / "c.st");
  EXPECT_NE(msg.find("c.st"), std::string::npos) << msg;
}

TEST(CheckpointBad, SaveWithWrongCountLeavesFileUnchanged) {
  test::TempDir dir;
  test::write_file(dir / "keep.st", "old");
  std::vector<float> p(10);
  EXPECT_THROW(save_checkpoint(dir / "keep.st", preset_config("test"), p), Error);
  EXPECT_EQ(test::read_file(dir / "keep.st"), "old");
}

}  // namespace
}  // namespace tritter
