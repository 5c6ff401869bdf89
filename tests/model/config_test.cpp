#include "model/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/tensor_table.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using test::expect_error;

using json = nlohmann::json;

TEST(Config, EveryPresetValidates) {
  for (const auto& name : preset_names()) {
    const TritterConfig c = preset_config(name);
    EXPECT_EQ(c.model_size, name);
    EXPECT_NO_THROW(c.validate()) << name;
  }
  expect_error([] { preset_config("8B"); }, {"'8B'", "7B", "test"});
}

TEST(Config, PresetSizesAreWhatTheirNamesPromise) {
  EXPECT_LT(parameter_count(preset_config("test")), 1'000'000);
  const double tiny = static_cast<double>(parameter_count(preset_config("tiny")));
  EXPECT_GT(tiny, 5e6);
  EXPECT_LT(tiny, 15e6);
  const double small = static_cast<double>(parameter_count(preset_config("small")));
  EXPECT_GT(small, 80e6);
  EXPECT_LT(small, 120e6);
  const TritterConfig b2 = preset_config("2B-shape");
  EXPECT_EQ(b2.hidden_size, 2560);
  EXPECT_EQ(b2.num_hidden_layers, 30);
  EXPECT_EQ(b2.num_attention_heads, 20);
  EXPECT_EQ(b2.num_key_value_heads, 5);
  EXPECT_EQ(b2.intermediate_size, 6912);
  EXPECT_EQ(b2.mlp_act, MlpAct::Relu2Glu);
}

TEST(Config, OverridesWinOverPresetIncludingFormerSentinels) {
  ConfigOverrides o;
  o.model_size = "7B";
  o.num_hidden_layers = 24;  // the original could not express this (24 was its sentinel)
  const TritterConfig c = resolve_config(o);
  EXPECT_EQ(c.num_hidden_layers, 24);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_key_value_heads, 8);
}

TEST(Config, DerivedFieldsFollowTheirBase) {
  ConfigOverrides o;
  o.hidden_size = 512;
  o.num_hidden_layers = 3;
  o.num_attention_heads = 8;
  const TritterConfig c = resolve_config(o);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.intermediate_size, 2048);
  ConfigOverrides missing;
  missing.hidden_size = 512;
  expect_error([&] { resolve_config(missing); }, {"num_hidden_layers", "required"});
}

TEST(Config, ValidationNamesFieldFoundAndExpected) {
  auto with = [](auto&& edit) {
    TritterConfig c = preset_config("test");
    edit(c);
    return c;
  };
  expect_error([&] { with([](auto& c) { c.hidden_size = 1000; c.num_attention_heads = 16; }).validate(); },
               {"hidden_size 1000 is not divisible by num_attention_heads 16"});
  expect_error([&] { with([](auto& c) { c.vocab_size = 200; }).validate(); },
               {"vocab_size 200 < 264", "8 special tokens + 256 bytes"});
  expect_error([&] { with([](auto& c) { c.num_attention_heads = 4; c.num_key_value_heads = 3; }).validate(); },
               {"num_attention_heads 4 is not divisible by num_key_value_heads 3", "1, 2, 4"});
  expect_error([&] { with([](auto& c) { c.num_key_value_heads = 8; }).validate(); }, {"exceeds"});
  expect_error([&] { with([](auto& c) { c.head_dim = 15; }).validate(); }, {"head_dim 15", "even"});
  expect_error([&] { with([](auto& c) { c.hidden_size = 0; }).validate(); }, {"hidden_size 0 must be positive"});
  // Architecture switches are enums parsed once: a bad name fails at parse time, in code and in JSON.
  expect_error([&] { post_norm_from_name("pre"); }, {"post_norm 'pre'", "'ffn'"});
  expect_error([&] { mlp_act_from_name("silu"); }, {"mlp_act 'silu'"});
  expect_error([&] { config_from_json(json{{"model_size", "test"}, {"post_norm", "pre"}}, "c.json"); },
               {"c.json", "post_norm 'pre'", "'ffn'"});
  expect_error([&] { with([](auto& c) { c.sliding_window = 0; }).validate(); }, {"sliding_window 0"});
  expect_error([&] { with([](auto& c) { c.act_bits = 4; }).validate(); }, {"act_bits 4"});
  // Runtime choices are engine options, not config keys: a config naming one is rejected as unknown.
  expect_error([&] { config_from_json(json{{"model_size", "test"}, {"kv_cache_dtype", "f32"}}, "c.json"); },
               {"unknown key 'kv_cache_dtype'"});
}

TEST(Config, JsonRoundTrip) {
  for (const auto& name : preset_names()) {
    TritterConfig c = preset_config(name);
    c.sliding_window = 128;
    EXPECT_EQ(config_from_json(config_to_json(c), "mem"), c) << name;
  }
  TritterConfig c = preset_config("test");
  const json model_only = config_to_json(c, true);
  EXPECT_FALSE(model_only.contains("use_layer_streaming"));
  EXPECT_TRUE(model_only["sliding_window"].is_null());
  EXPECT_EQ(model_only["post_norm"], "ffn");
}

TEST(Config, JsonErrorsNameFileKeyAndType) {
  expect_error([] { config_from_json(json{{"model_size", "test"}, {"hiden_size", 64}}, "cfg.json"); },
               {"cfg.json", "unknown key 'hiden_size'"});
  expect_error([] { config_from_json(json{{"model_size", "test"}, {"hidden_size", "64"}}, "cfg.json"); },
               {"cfg.json", "'hidden_size'", "\"64\"", "expected an integer"});
  expect_error([] { config_from_json(json{{"model_size", "test"}, {"quant", 1}}, "cfg.json"); },
               {"'quant'", "true or false"});
  expect_error([] { config_from_json(json::array(), "cfg.json"); }, {"cfg.json", "JSON object"});
}

TEST(Config, FileRoundTripAndBadJson) {
  test::TempDir dir;
  const auto path = (dir / "c.json").string();
  const TritterConfig c = preset_config("tiny");
  save_config_file(c, path);
  EXPECT_EQ(load_config_file(path), c);
  test::write_file(dir / "bad.json", "{ not json");
  expect_error([&] { load_config_file((dir / "bad.json").string()); }, {"bad.json", "not valid JSON"});
}

TEST(TensorTable, NamesShapesAndOffsetsOfTheSpec) {
  const TritterConfig c = preset_config("test");  // D 64, L 2, H 4, K 2, d 16, F 256, V 264, untied
  const auto t = tensor_table(c);
  ASSERT_EQ(t.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(t.front().shape, (Shape{264, 64}));
  const TensorInfo* k = find_tensor(t, "model.layers.1.self_attn.k_proj.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape, (Shape{32, 64}));
  EXPECT_EQ(k->role, TensorRole::BitLinear);
  EXPECT_EQ(k->layer, 1);
  EXPECT_NE(find_tensor(t, "model.layers.0.self_attn.q_norm.weight"), nullptr);
  EXPECT_NE(find_tensor(t, "model.layers.0.mlp.ffn_sub_norm.weight"), nullptr);
  EXPECT_NE(find_tensor(t, "model.layers.0.post_feedforward_layernorm.weight"), nullptr);
  EXPECT_EQ(find_tensor(t, "model.layers.0.post_attention_layernorm.weight"), nullptr);  // only with "both"
  EXPECT_EQ(find_tensor(t, "model.layers.0.mlp.gate_proj.weight"), nullptr);             // only with relu2_glu
  EXPECT_EQ(t.back().name, "lm_head.weight");
  // Offsets tile one flat buffer; the rule "BitLinear ⇔ ends in _proj.weight" holds.
  int64_t expect_offset = 0;
  for (const auto& info : t) {
    EXPECT_EQ(info.offset, expect_offset) << info.name;
    expect_offset += info.numel();
    const bool proj = info.name.size() > 12 && info.name.ends_with("_proj.weight");
    EXPECT_EQ(proj, info.role == TensorRole::BitLinear) << info.name;
  }
  EXPECT_EQ(parameter_count(c), expect_offset);
  // Per layer: 2·64 (norms) + 64·64·2 + 32·64·2 (q, o, k, v) + 16·2 (qk norms) + 64 (attn sub) + 256·64·2 (up, down)
  // + 256 (ffn sub) + 64 (post-FFN) ; embed and head 264·64 each ; final norm 64.
  const int64_t per_layer = 2 * 64 + 64 * 64 * 2 + 32 * 64 * 2 + 16 * 2 + 64 + 256 * 64 * 2 + 256 + 64;
  EXPECT_EQ(parameter_count(c), 2 * per_layer + 2 * 264 * 64 + 64);
}

TEST(TensorTable, TiedAndGatedAndBoth) {
  TritterConfig c = preset_config("test");
  c.tie_word_embeddings = true;
  c.mlp_act = MlpAct::Relu2Glu;
  c.post_norm = PostNorm::Both;
  c.qk_norm = false;
  c.sub_norm = false;
  const auto t = tensor_table(c);
  EXPECT_EQ(find_tensor(t, "lm_head.weight"), nullptr);
  EXPECT_NE(find_tensor(t, "model.layers.0.mlp.gate_proj.weight"), nullptr);
  EXPECT_NE(find_tensor(t, "model.layers.0.post_attention_layernorm.weight"), nullptr);
  EXPECT_EQ(find_tensor(t, "model.layers.0.self_attn.q_norm.weight"), nullptr);
  EXPECT_EQ(find_tensor(t, "model.layers.0.mlp.ffn_sub_norm.weight"), nullptr);
  // input + pre-FFN norms, q k v o, post-attn and post-FFN norms ("both"), gate up down.
  EXPECT_EQ(layer_tensors(c, 1).size(), 11u);
}

// A whole float is taken for an integer field only inside int64's range: casting 1e308 was undefined behaviour
// (a fuzzing input).
TEST(Config, OutOfRangeFloatForAnIntegerIsAnError) {
  for (const double v : {1e308, -1e308, 9223372036854775808.0, 1e19}) {
    expect_error([&] { config_from_json(json{{"model_size", "test"}, {"sliding_window", v}}, "c.json"); },
                 {"c.json", "key 'sliding_window'", "expected an integer"});
    expect_error([&] { config_from_json(json{{"model_size", "test"}, {"hidden_size", v}}, "c.json"); },
                 {"c.json", "key 'hidden_size'", "expected an integer"});
  }
  EXPECT_EQ(config_from_json(json{{"model_size", "test"}, {"sliding_window", 32.0}}, "c.json").sliding_window, 32);
}

}  // namespace
}  // namespace tritter
