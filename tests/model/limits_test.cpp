// Sizes from a file are bounded before anything is allocated, JSON numbers become integers only within range, and
// loaders name the tensor of a NaN/Inf (norms, embeddings, head; LoRA values too, with a stated bound). Each test is
// a reproducer of a defect a hostile file showed: a few bytes of metadata asking for gigabytes, UB on 1e308, a NaN
// norm giving empty text.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/init.h"
#include "model/lora.h"
#include "model/packed_model.h"
#include "model/peft.h"
#include "util/test_util.h"

namespace tritter {
namespace {
using test::error_of;

namespace fs = std::filesystem;
using nlohmann::json;


json test_config_json() { return config_to_json(preset_config("test")); }

TEST(ConfigLimits, EverySizeHasAStatedMaximum) {
  const std::pair<const char*, int64_t> cases[] = {{"num_hidden_layers", 4294967296},
                                                   {"vocab_size", 4000000000},
                                                   {"hidden_size", 1 << 20},
                                                   {"intermediate_size", int64_t{1} << 30},
                                                   {"max_position_embeddings", int64_t{1} << 40}};
  for (const auto& [key, value] : cases) {
    json j = test_config_json();
    j[key] = value;
    const std::string msg = error_of([&] { config_from_json(j, "cfg.json"); });
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string(key) + ": found " + std::to_string(value) + ", expected "), std::string::npos) << msg;
  }
  // Each field within its bound, their product not: the parameter count is bounded too.
  json j = test_config_json();
  j["hidden_size"] = 65536;
  j["num_attention_heads"] = 64;
  j["num_key_value_heads"] = 64;
  j["head_dim"] = 1024;
  j["intermediate_size"] = 262144;
  j["num_hidden_layers"] = 1024;
  const std::string msg = error_of([&] { config_from_json(j, "cfg.json"); });
  EXPECT_NE(msg.find("parameters"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected at most 1.09951e+12"), std::string::npos) << msg;
}

TEST(ConfigLimits, NumbersBecomeIntegersOnlyWithinRange) {
  // 1e308 cast to int64 was undefined behaviour; 2^64-1 read as int64 wrapped to -1.
  json j = test_config_json();
  j["sliding_window"] = 1e308;
  std::string msg = error_of([&] { config_from_json(j, "cfg.json"); });
  EXPECT_NE(msg.find("cfg.json: key 'sliding_window': found 1e+308 (number), expected an integer in"),
            std::string::npos) << msg;
  j = test_config_json();
  j["num_hidden_layers"] = 18446744073709551615ull;
  msg = error_of([&] { config_from_json(j, "cfg.json"); });
  EXPECT_NE(msg.find("key 'num_hidden_layers': found 18446744073709551615 (number), expected an integer below 2^63"),
            std::string::npos) << msg;
  j = test_config_json();
  j["rope_theta"] = std::numeric_limits<double>::infinity();
  msg = error_of([&] { config_from_json(j, "cfg.json"); });
  EXPECT_NE(msg.find("rope_theta: found inf, expected a finite value > 0"), std::string::npos) << msg;
  EXPECT_EQ(json_to_int(json(4096.0), "f", "k"), 4096);
  EXPECT_NE(error_of([] { json_to_int(json(-1e19), "f", "k"); }).find("f: key 'k': found -1e+19"), std::string::npos);
}

// A checkpoint of the test model whose metadata claims `layers` layers.
fs::path checkpoint_claiming(const test::TempDir& dir, const std::string& key, int64_t value) {
  const TritterConfig c = preset_config("test");
  save_checkpoint(dir / "good.st", c, std::vector<float>(parameter_count(c), 0.01f));
  const SafeTensorsFile f(dir / "good.st");
  std::vector<SafeTensorOut> out;
  for (const auto& t : f.tensors()) out.push_back({t.name, t.dtype, t.shape, t.data, {}});
  auto meta = f.metadata();
  json cj = json::parse(meta["config"]);
  cj[key] = value;
  meta["config"] = cj.dump();
  const fs::path p = dir / ("claims-" + key + ".st");
  write_safetensors(p, out, meta);
  return p;
}

TEST(LoaderLimits, AConfigIsCheckedAgainstTheBytesTheFileHolds) {
  test::TempDir dir;
  // 4294967296 layers: refused by the stated maximum before a table is built.
  std::string msg = error_of([&] { load_checkpoint(checkpoint_claiming(dir, "num_hidden_layers", 4294967296), nullptr); });
  EXPECT_NE(msg.find("num_hidden_layers: found 4294967296, expected 1 .. 1024"), std::string::npos) << msg;
  // 1000 layers is a legal config, but not one a 0.5 MB file can hold: refused before the 1000-layer buffer.
  msg = error_of([&] { load_checkpoint(checkpoint_claiming(dir, "num_hidden_layers", 1000), nullptr); });
  EXPECT_NE(msg.find("claims-num_hidden_layers.st': its config needs "), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected at most what the file holds"), std::string::npos) << msg;
  // The packed loader the same way.
  const TritterConfig c = preset_config("test");
  std::vector<float> p(parameter_count(c));
  init_parameters(p, c, 5);
  pack_checkpoint(dir / "p.st", c, p, {});
  const SafeTensorsFile f(dir / "p.st");
  std::vector<SafeTensorOut> out;
  for (const auto& t : f.tensors()) out.push_back({t.name, t.dtype, t.shape, t.data, {}});
  auto meta = f.metadata();
  json cj = json::parse(meta["config"]);
  cj["vocab_size"] = 1000000;
  meta["config"] = cj.dump();
  write_safetensors(dir / "p-big.st", out, meta);
  msg = error_of([&] { PackedModel::open(dir / "p-big.st"); });
  EXPECT_NE(msg.find("p-big.st': its config needs "), std::string::npos) << msg;
}

// Rewrites safetensors file `src` with tensor `name`'s first f32 element set to `value`.
fs::path with_value(const fs::path& src, const fs::path& dst, const std::string& name, float value) {
  const SafeTensorsFile f(src);
  std::vector<std::vector<uint8_t>> data;
  std::vector<SafeTensorOut> out;
  for (const auto& t : f.tensors()) {
    data.emplace_back(t.data, t.data + t.bytes());
    if (t.name == name) std::memcpy(data.back().data(), &value, 4);
    out.push_back({t.name, t.dtype, t.shape, nullptr, {}});
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].data = data[i].data();
  write_safetensors(dst, out, f.metadata());
  return dst;
}

TEST(LoaderLimits, NonFiniteNormsEmbeddingsAndHeadAreNamed) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  std::vector<float> p(parameter_count(c));
  init_parameters(p, c, 5);
  pack_checkpoint(dir / "p.st", c, p, {});
  for (const char* name : {"model.norm.weight", "model.layers.1.input_layernorm.weight", "model.embed_tokens.weight",
                           "lm_head.weight"}) {
    const std::string msg = error_of([&] { PackedModel::open(with_value(dir / "p.st", dir / "nan.st", name, NAN)); });
    EXPECT_NE(msg.find("nan.st': tensor '" + std::string(name) + "' element 0: found nan, expected a finite value"),
              std::string::npos) << msg;
  }
  save_checkpoint(dir / "ck.st", c, p);
  const std::string msg = error_of([&] {
    load_checkpoint(with_value(dir / "ck.st", dir / "inf.st", "model.layers.0.pre_feedforward_layernorm.weight", INFINITY),
                    nullptr);
  });
  EXPECT_NE(msg.find("inf.st': tensor 'model.layers.0.pre_feedforward_layernorm.weight' element 0: found inf"),
            std::string::npos) << msg;
}

struct AdapterFixture {
  test::TempDir dir;
  TritterConfig base = preset_config("test");
  LoraConfig lora;
  AdapterFixture() {
    lora.rank = 4;
    const auto table = lora_table(base, lora);
    std::vector<float> params(lora_num_params(table, lora.rank), 0.01f);
    save_lora_adapter(dir / "a", base, lora, params, "base");
  }
  void edit_config(const std::function<void(json&)>& edit) {
    json j = json::parse(read_file_bytes(dir / "a" / "adapter_config.json"));
    edit(j);
    write_file_atomic(dir / "a" / "adapter_config.json", j.dump());
  }
  std::string load_error() {
    return error_of([&] { load_lora_adapter(dir / "a", base, nullptr); });
  }
};

TEST(AdapterLimits, RankIsBoundedByTheBaseBeforeAllocation) {
  AdapterFixture f;
  f.edit_config([](json& j) { j["r"] = 1000000; });
  std::string msg = f.load_error();
  EXPECT_NE(msg.find("adapter_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rank: found 1000000, expected 1 .. 65536"), std::string::npos) << msg;
  // Within the stated maximum but above min(out, in) of k_proj (32, 64): named before the tensors are read.
  f.edit_config([](json& j) { j["r"] = 40; });
  msg = f.load_error();
  EXPECT_NE(msg.find("rank r: found 40, expected at most min(out, in) = 32 of model.layers.0.self_attn.k_proj.weight"),
            std::string::npos) << msg;
  f.edit_config([](json& j) { j["r"] = 18446744073709551615ull; });
  EXPECT_NE(f.load_error().find("'r': found 18446744073709551615"), std::string::npos) << f.load_error();
}

TEST(AdapterLimits, JsonTypeErrorsNameFileAndKey) {
  AdapterFixture f;
  f.edit_config([](json& j) { j["use_rslora"] = "yes"; });
  const std::string msg = f.load_error();
  EXPECT_NE(msg.find("adapter_config.json': 'use_rslora': found \"yes\", expected true or false"), std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("json.exception"), std::string::npos) << msg;
}

TEST(AdapterLimits, HugeFiniteValuesAreRefusedNamingFileAndTensor) {
  AdapterFixture f;
  const std::string name = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight";
  const fs::path st = f.dir / "a" / "adapter_model.safetensors";
  with_value(st, f.dir / "tmp.st", name, 3e30f);
  fs::rename(f.dir / "tmp.st", st);
  const std::string msg = f.load_error();
  EXPECT_NE(msg.find("adapter_model.safetensors': tensor '" + name + "': element 0 is 3e+30, expected a value within +-10000"),
            std::string::npos) << msg;
}

TEST(AdapterLimits, AWeightThatIsNotANumberIsNamedAsTheWeight) {
  AdapterFixture f;
  const std::string spec = (f.dir / "a").string() + ":0.5x";
  const std::string msg = error_of([&] { parse_lora_spec(spec); });
  EXPECT_NE(msg.find("weight '0.5x' is not a number"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("not a directory"), std::string::npos) << msg;
  EXPECT_EQ(parse_lora_spec((f.dir / "a").string() + ":0.5").second, 0.5f);
}

}  // namespace
}  // namespace tritter
