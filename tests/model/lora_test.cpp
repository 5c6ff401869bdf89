// LoRA's shared pieces in model/ (projections.h, lora.h, peft.h, lora_merge.h): the projection list, config
// validation and targets, the adapter table and PEFT names, the PEFT file round trip in F32, F16 and BF16, one bad
// file per failure mode, and merging adapters into a checkpoint (values against W̃ + Σ w·(α/r)·B A).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "model/lora.h"
#include "model/lora_merge.h"
#include "model/peft.h"
#include "model/projections.h"
#include "util/test_util.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

TEST(Proj, NamesInputsAndTableAgree) {
  EXPECT_EQ(kProjCount, 7);
  const char* names[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  const ProjInput inputs[] = {ProjInput::AttnIn, ProjInput::AttnIn, ProjInput::AttnIn, ProjInput::AttnOut,
                              ProjInput::MlpIn,  ProjInput::MlpIn,  ProjInput::MlpAct};
  for (int k = 0; k < kProjCount; ++k) {
    const Proj p = kProjs[static_cast<size_t>(k)];
    EXPECT_EQ(proj_index(p), k);
    EXPECT_STREQ(proj_name(p), names[k]);
    EXPECT_EQ(proj_from_name(names[k]), p);
    EXPECT_EQ(proj_input(p), inputs[k]) << names[k];
    EXPECT_STREQ(proj_block(p), k < 4 ? "self_attn" : "mlp");
  }
  EXPECT_FALSE(proj_from_name("q_norm").has_value());
  EXPECT_FALSE(proj_from_name("qkv").has_value());
  // Every BitLinear of the tensor table is a projection, named model.layers.N.<block>.<name>.weight.
  TritterConfig c = preset_config("test");
  c.mlp_act = MlpAct::Relu2Glu;
  int bitlinears = 0;
  for (const auto& t : tensor_table(c)) {
    if (t.role != TensorRole::BitLinear) continue;
    ++bitlinears;
    const auto p = proj_from_name(t.kind);
    ASSERT_TRUE(p.has_value()) << t.name;
    EXPECT_EQ(t.name, "model.layers." + std::to_string(t.layer) + "." + proj_block(*p) + "." + t.kind + ".weight");
  }
  EXPECT_EQ(bitlinears, kProjCount * c.num_hidden_layers);
}

TEST(Lora, ConfigValidationAndTargets) {
  LoraConfig l;
  EXPECT_FLOAT_EQ(l.scale(), 1.0f);  // r16 α16 (original.md §8.3)
  l.rank = 8;
  EXPECT_FLOAT_EQ(l.scale(), 2.0f);
  l.validate();
  LoraConfig bad = l;
  bad.rank = 0;
  EXPECT_THROW(bad.validate(), Error);
  bad = l;
  bad.dropout = 1.0;
  EXPECT_THROW(bad.validate(), Error);
  bad = l;
  bad.targets = {"qkv"};
  try {
    bad.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'qkv'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_lora_targets("q_proj,v_proj,q_proj"), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(parse_lora_targets("all").size(), 7u);
}

TEST(Lora, PeftNamesAndTable) {
  const TritterConfig c = preset_config("test");
  LoraConfig l;
  l.rank = 4;
  const auto table = lora_table(c, l);
  ASSERT_EQ(table.size(), static_cast<size_t>(4 * c.num_hidden_layers));
  EXPECT_EQ(peft_tensor_name(table[0].base_name, 'A'), "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(peft_tensor_name("model.layers.1.mlp.down_proj.weight", 'B'),
            "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  const auto infos = lora_tensor_infos(table, l.rank);
  EXPECT_EQ(infos[0].shape, (Shape{4, c.hidden_size}));  // A (r, I), PEFT layout
  EXPECT_EQ(infos[1].shape, (Shape{c.q_dim(), 4}));      // B (O, r)
  EXPECT_EQ(infos[3].shape, (Shape{c.kv_dim(), 4}));     // k_proj B: GQA outputs K·d
}

TEST(Lora, TableSkipsGateWithoutGatedMlp) {
  TritterConfig c = preset_config("test");
  ASSERT_FALSE(c.gated_mlp());
  LoraConfig l;
  l.rank = 2;
  l.targets = parse_lora_targets("all");
  const auto table = lora_table(c, l);
  EXPECT_EQ(table.size(), static_cast<size_t>(6 * c.num_hidden_layers));
  for (const auto& t : table) {
    EXPECT_NE(t.proj, Proj::Gate);
    EXPECT_EQ(t.kind, proj_name(t.proj));
  }
  c.mlp_act = MlpAct::Relu2Glu;
  EXPECT_EQ(lora_table(c, l).size(), static_cast<size_t>(7 * c.num_hidden_layers));
}

TEST(LoraIo, RoundTripInPeftLayout) {
  TempDir tmp;
  const TritterConfig c = preset_config("test");
  LoraConfig l;
  l.rank = 4;
  l.alpha = 32;
  l.dropout = 0.05;
  l.targets = {"q_proj", "v_proj", "down_proj"};
  const auto table = lora_table(c, l);
  std::vector<float> p(static_cast<size_t>(lora_num_params(table, l.rank)));
  Rng rng(2);
  for (auto& x : p) x = rng.normal();
  const fs::path dir = tmp.path() / "adapter";
  save_lora_adapter(dir, c, l, p, "base.tpk");
  const auto j = nlohmann::json::parse(std::ifstream(dir / "adapter_config.json"));
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["r"], 4);
  EXPECT_EQ(j["lora_alpha"], 32.0);
  EXPECT_EQ(j["target_modules"], (std::vector<std::string>{"q_proj", "v_proj", "down_proj"}));
  EXPECT_EQ(j["base_model_name_or_path"], "base.tpk");
  const SafeTensorsFile f(dir / "adapter_model.safetensors");
  EXPECT_NE(f.find("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"), nullptr);
  EXPECT_EQ(f.metadata_value("format"), "pt");
  const LoraAdapter a = load_lora_adapter(dir, c, nullptr);
  EXPECT_EQ(a.config.rank, 4);
  EXPECT_EQ(a.config.alpha, 32.0);
  EXPECT_EQ(a.config.targets, l.targets);
  EXPECT_EQ(a.base_model_name, "base.tpk");
  ASSERT_EQ(a.params.bytes(), p.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(a.params.data(), p.data(), a.params.bytes()), 0);
}

void expect_load_error(const fs::path& dir, const TritterConfig& c, const std::string& needle) {
  try {
    load_lora_adapter(dir, c, nullptr);
    FAIL() << "no error, expected one containing " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LoraIo, BadFilesAreRejectedWithClearErrors) {
  TempDir tmp;
  const TritterConfig c = preset_config("test");
  LoraConfig l;
  l.rank = 2;
  const auto table = lora_table(c, l);
  std::vector<float> p(static_cast<size_t>(lora_num_params(table, l.rank)), 0.5f);
  auto fresh = [&](const std::string& name) {
    const fs::path d = tmp.path() / name;
    save_lora_adapter(d, c, l, p, "b");
    return d;
  };
  auto edit_config = [&](const fs::path& d, const std::function<void(nlohmann::json&)>& f) {
    auto j = nlohmann::json::parse(std::ifstream(d / "adapter_config.json"));
    f(j);
    std::ofstream(d / "adapter_config.json") << j.dump();
  };
  expect_load_error(tmp.path() / "nothing", c, "not a directory");
  {
    const fs::path d = fresh("noconfig");
    fs::remove(d / "adapter_config.json");
    expect_load_error(d, c, "adapter_config.json is missing");
  }
  {
    const fs::path d = fresh("badjson");
    std::ofstream(d / "adapter_config.json") << "{\"r\": ";
    expect_load_error(d, c, "not valid JSON");
  }
  {
    const fs::path d = fresh("ia3");
    edit_config(d, [](auto& j) { j["peft_type"] = "IA3"; });
    expect_load_error(d, c, "expected \"LORA\"");
  }
  {
    const fs::path d = fresh("rank");
    edit_config(d, [](auto& j) { j["r"] = 0; });
    expect_load_error(d, c, "rank: found 0");
  }
  {
    const fs::path d = fresh("rslora");
    edit_config(d, [](auto& j) { j["use_rslora"] = true; });
    expect_load_error(d, c, "use_rslora");
  }
  {  // the config now names a tensor the file lacks
    const fs::path d = fresh("missing");
    edit_config(d, [](auto& j) { j["target_modules"] = {"q_proj", "k_proj", "v_proj", "o_proj", "up_proj"}; });
    expect_load_error(d, c, "up_proj.lora_A.weight' is missing");
  }
  {  // fewer targets: the file holds a tensor the config does not ask for
    const fs::path d = fresh("extra");
    edit_config(d, [](auto& j) { j["target_modules"] = {"q_proj", "k_proj", "v_proj"}; });
    expect_load_error(d, c, "unexpected tensor 'base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight'");
  }
  {  // a different rank in the file than in the config
    const fs::path d = fresh("shape");
    edit_config(d, [](auto& j) { j["r"] = 3; });
    expect_load_error(d, c, "shape [2, 64], expected [3, 64]");
  }
  {  // non-finite value
    std::vector<float> q = p;
    q[5] = std::nanf("");
    const fs::path d = tmp.path() / "nan";
    save_lora_adapter(d, c, l, q, "b");
    expect_load_error(d, c, "expected a finite value");
  }
  {  // another base
    const fs::path d = fresh("otherbase");
    TritterConfig other = c;
    other.rope_theta = 500000.0;
    expect_load_error(d, other, "trained for another base");
  }
}


TEST(LoraIo, UnknownTargetModuleIsNamed) {
  TempDir tmp;
  const TritterConfig c = preset_config("test");
  LoraConfig l;
  l.rank = 2;
  std::vector<float> p(static_cast<size_t>(lora_num_params(lora_table(c, l), l.rank)), 0.25f);
  save_lora_adapter(tmp / "u", c, l, p, "b");
  auto j = nlohmann::json::parse(std::ifstream(tmp / "u" / "adapter_config.json"));
  j["target_modules"] = {"q_proj", "qq_proj"};
  std::ofstream(tmp / "u" / "adapter_config.json") << j.dump();
  test::expect_error([&] { load_lora_adapter(tmp / "u", c, nullptr); },
                     {"adapter_config.json", "'target_modules': found \"qq_proj\"", "expected one of q_proj"});
}

// IEEE half of a value exactly representable in it (normal or zero): the test's values are k/64, |k| ≤ 64.
uint16_t exact_half(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  if ((b & 0x7fffffffu) == 0) return static_cast<uint16_t>(b >> 16);
  const uint32_t sign = (b >> 16) & 0x8000u, exp = ((b >> 23) & 0xffu) - 127 + 15, mant = (b & 0x7fffffu) >> 13;
  return static_cast<uint16_t>(sign | (exp << 10) | mant);
}

// PEFT saves adapters in the training dtype: F16 and BF16 files read back to the same floats (values exact in both).
TEST(LoraIo, ReadsF16AndBf16Tensors) {
  TempDir tmp;
  const TritterConfig c = preset_config("test");
  LoraConfig l;
  l.rank = 3;
  l.targets = {"k_proj", "up_proj"};
  const auto table = lora_table(c, l);
  std::vector<float> p(static_cast<size_t>(lora_num_params(table, l.rank)));
  Rng rng(6);
  for (auto& x : p) x = static_cast<float>(static_cast<int>(rng.next_below(129)) - 64) / 64.0f;
  save_lora_adapter(tmp / "f32", c, l, p, "b");
  for (const DType dt : {DType::F16, DType::BF16}) {
    const fs::path d = tmp / std::string(dtype_name(dt));
    fs::create_directories(d);
    fs::copy_file(tmp / "f32" / "adapter_config.json", d / "adapter_config.json");
    std::map<std::string, std::string> meta;
    std::vector<std::vector<uint16_t>> halves;
    std::vector<SafeTensorOut> out;
    {
      const SafeTensorsFile f(tmp / "f32" / "adapter_model.safetensors");
      meta = f.metadata();
      for (const auto& info : lora_tensor_infos(table, l.rank)) {
        std::vector<uint16_t> h(static_cast<size_t>(info.numel()));
        for (int64_t i = 0; i < info.numel(); ++i) {
          const float v = p[static_cast<size_t>(info.offset + i)];
          uint32_t b;
          std::memcpy(&b, &v, 4);
          h[static_cast<size_t>(i)] = dt == DType::BF16 ? static_cast<uint16_t>(b >> 16) : exact_half(v);
        }
        halves.push_back(std::move(h));
        out.push_back({info.name, dt, info.shape, halves.back().data(), {}});
      }
    }
    write_safetensors(d / "adapter_model.safetensors", out, meta);
    const LoraAdapter a = load_lora_adapter(d, c, nullptr);
    ASSERT_EQ(a.params.bytes(), p.size() * sizeof(float));
    EXPECT_EQ(std::memcmp(a.params.data(), p.data(), a.params.bytes()), 0) << dtype_name(dt);
  }
}

// merge_lora on a checkpoint base: targeted BitLinears are W̃ + w·(α/r)·B A with W̃ the base's packed weight
// dequantized, other BitLinears W̃ exactly, gains and embedding the base's. The update is summed in double and
// rounded once into float: tolerance ε·(|W̃| + |Δ|) per element.
TEST(LoraMerge, MergedWeightsAreBasePlusScaledUpdate) {
  TempDir tmp;
  const TritterConfig c = preset_config("test");
  std::vector<float> base(static_cast<size_t>(parameter_count(c)));
  init_parameters(base, c, 4);
  save_checkpoint(tmp / "base.safetensors", c, base);
  LoraConfig l;
  l.rank = 2;
  l.alpha = 6;
  l.targets = {"v_proj", "down_proj"};
  const auto table = lora_table(c, l);
  std::vector<float> p(static_cast<size_t>(lora_num_params(table, l.rank)));
  Rng rng(3);
  for (auto& x : p) x = 0.1f * rng.normal();
  save_lora_adapter(tmp / "ad", c, l, p, "base");
  const float w = 0.5f;
  const LoraMergeReport r = merge_lora(tmp / "base.safetensors", {{tmp / "ad", w}}, tmp / "m.safetensors", nullptr);
  EXPECT_EQ(r.adapters, 1);
  EXPECT_EQ(r.merged, 2 * c.num_hidden_layers);
  EXPECT_GT(r.update_lost_mean, 0.0);
  EXPECT_GT(r.requant_rel_worst, 0.0);
  EXPECT_GE(r.requant_rel_worst, r.requant_rel_mean);
  const Checkpoint m = load_checkpoint(tmp / "m.safetensors", nullptr);
  const PackedModel packed = open_lora_base(tmp / "base.safetensors", nullptr);
  const float* got = m.params.as<float>().data();
  const float eps = std::numeric_limits<float>::epsilon();
  for (const auto& info : tensor_table(c)) {
    const float* g = got + info.offset;
    if (info.role != TensorRole::BitLinear) {
      ASSERT_EQ(std::memcmp(g, base.data() + info.offset, static_cast<size_t>(info.numel()) * 4), 0) << info.name;
      continue;
    }
    const TernaryMatrix& wm = layer_matrix(packed.weights().layers[static_cast<size_t>(info.layer)],
                                           *proj_from_name(info.kind));
    const LoraTensor* t = nullptr;
    for (const auto& x : table) {
      if (x.base_name == info.name) t = &x;
    }
    double moved = 0;  // max |merged − W̃|
    for (int64_t o = 0; o < wm.rows; ++o) {
      for (int64_t i = 0; i < wm.cols; ++i) {
        const double wt = static_cast<double>(ternary_matrix_at(wm, o, i)) / wm.sigma;
        double d = 0;
        if (t) {
          for (int64_t k = 0; k < l.rank; ++k)
            d += static_cast<double>(p[static_cast<size_t>(t->b_offset + o * l.rank + k)]) *
                 p[static_cast<size_t>(t->a_offset + k * wm.cols + i)];
          d *= static_cast<double>(w) * l.scale();
        }
        const double want = static_cast<double>(static_cast<float>(wt)) + d;
        const double err = std::fabs(g[o * wm.cols + i] - want), tol = eps * (std::fabs(wt) + std::fabs(d));
        moved = std::max(moved, std::fabs(g[o * wm.cols + i] - static_cast<double>(static_cast<float>(wt))));
        ASSERT_LE(err, tol) << info.name << " (" << o << ", " << i << "): got " << g[o * wm.cols + i]
                            << " want " << want;
      }
    }
    if (t) {
      EXPECT_GT(moved, 1e-4) << info.name;  // the update is there (not merely W̃): |Δ| ~ 0.5·3·2·0.01
    }
  }
}

TEST(LoraMerge, BadAdapterLeavesOutputUntouched) {
  TempDir tmp;
  const TritterConfig c = preset_config("test");
  std::vector<float> base(static_cast<size_t>(parameter_count(c)));
  init_parameters(base, c, 5);
  save_checkpoint(tmp / "base.safetensors", c, base);
  TritterConfig other = c;
  other.rope_theta = 500000.0;
  LoraConfig l;
  l.rank = 2;
  std::vector<float> p(static_cast<size_t>(lora_num_params(lora_table(other, l), l.rank)), 0.1f);
  save_lora_adapter(tmp / "other", other, l, p, "x");
  test::write_file(tmp / "m.safetensors", "keep me");
  const fs::path out = tmp / "m.safetensors";
  test::expect_error([&] { merge_lora(tmp / "base.safetensors", {{tmp / "other", 1.0f}}, out, nullptr); },
                     {"adapter_model.safetensors", "trained for another base"});
  EXPECT_EQ(test::read_file(out), "keep me");
  test::expect_error([&] { merge_lora(tmp / "nope.safetensors", {{tmp / "other", 1.0f}}, out, nullptr); },
                     {"nope.safetensors"});
  EXPECT_EQ(test::read_file(tmp / "m.safetensors"), "keep me");
}

}  // namespace
}  // namespace tritter
