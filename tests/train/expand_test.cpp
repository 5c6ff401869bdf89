// Depth up-scaling (model/expand.h, `tritter expand`): the layer plans, the function-preserving methods giving the
// original's logits bit for bit (training forward and the packed inference engine), SOLAR's changed function, the
// optimizer state, and the command's outputs and errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "infer/engine.h"
#include "io/safetensors.h"
#include "kernels/quantize.h"
#include "model/checkpoint.h"
#include "model/expand.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"
#include "train/model.h"
#include "util/test_util.h"

namespace tritter {
namespace {

std::vector<std::pair<int64_t, bool>> as_pairs(const std::vector<ExpandedLayer>& plan) {
  std::vector<std::pair<int64_t, bool>> out;
  for (const auto& e : plan) out.push_back({e.source, e.zeroed});
  return out;
}

TEST(Expand, Plans) {
  using P = std::vector<std::pair<int64_t, bool>>;
  EXPECT_EQ(as_pairs(expand_plan(3, 6, ExpandMethod::Duplicate)),
            (P{{0, false}, {1, false}, {2, false}, {0, true}, {1, true}, {2, true}}));
  EXPECT_EQ(as_pairs(expand_plan(3, 5, ExpandMethod::Duplicate)), (P{{0, false}, {1, false}, {2, false}, {0, true}, {1, true}}));
  EXPECT_EQ(as_pairs(expand_plan(3, 6, ExpandMethod::Interleave)),
            (P{{0, false}, {0, true}, {1, false}, {1, true}, {2, false}, {2, true}}));
  // 4 → 6: two copies over four layers, after layers 1 and 3.
  EXPECT_EQ(as_pairs(expand_plan(4, 6, ExpandMethod::Interleave)),
            (P{{0, false}, {1, false}, {1, true}, {2, false}, {3, false}, {3, true}}));
  EXPECT_EQ(as_pairs(expand_plan(2, 2, ExpandMethod::Interleave)), (P{{0, false}, {1, false}}));
  // SOLAR on 4 layers to 6: m = 1, layers 0..2 then 1..3 (SOLAR 10.7B: 32 → 48 with m = 8).
  EXPECT_EQ(as_pairs(expand_plan(4, 6, ExpandMethod::Solar)),
            (P{{0, false}, {1, false}, {2, false}, {1, false}, {2, false}, {3, false}}));
  const auto solar48 = expand_plan(32, 48, ExpandMethod::Solar);
  ASSERT_EQ(solar48.size(), 48u);
  EXPECT_EQ(solar48[23].source, 23);
  EXPECT_EQ(solar48[24].source, 8);
  EXPECT_EQ(solar48[47].source, 31);
  test::expect_error([] { expand_plan(4, 3, ExpandMethod::Duplicate); }, {"--layers 3", "at least 4"});
  test::expect_error([] { expand_plan(4, 7, ExpandMethod::Solar); }, {"--layers 7", "solar", "even", "4 to 8"});
  test::expect_error([] { expand_plan(4, 10, ExpandMethod::Solar); }, {"--layers 10"});
  test::expect_error([] { expand_method_from_name("stack"); }, {"'stack'", "duplicate, interleave or solar"});
}

// An all-zero matrix quantizes to all-zero levels: absmean 0 is clamped to quant_eps, and 0·σ rounds to 0.
TEST(Expand, ZeroMatrixQuantizesToZero) {
  std::vector<float> w(96, 0.0f);
  std::vector<int8_t> q(96, 7);
  const float sigma = ternary_quantize_absmean(q.data(), w.data(), 96);
  EXPECT_EQ(sigma, 1.0f / kQuantEps);
  for (int8_t v : q) EXPECT_EQ(v, 0);
}

struct Logits {
  double loss;
  std::vector<float> logits;
};

Logits train_forward(const TritterConfig& c, std::span<const float> params, const std::vector<int32_t>& in,
                     const std::vector<int32_t>& tg, int64_t B, int64_t T) {
  Context ctx;
  ctx.threads = 1;
  train::TrainModel m(c, ctx);
  std::memcpy(m.params().data(), params.data(), params.size() * sizeof(float));
  m.reserve(B, T, false);
  const double loss = m.forward(in.data(), tg.data(), B, T);
  return {loss, std::vector<float>(m.logits(), m.logits() + B * T * c.vocab_size)};
}

std::vector<float> random_params(const TritterConfig& c, uint64_t seed) {
  Context ctx;
  train::TrainModel m(c, ctx);
  m.init_weights(seed);
  // Gains away from 1, so that a wrongly copied norm would show.
  Rng rng(seed + 1);
  for (const auto& t : m.table()) {
    if (t.role == TensorRole::Norm) {
      for (int64_t i = 0; i < t.numel(); ++i) m.params()[t.offset + i] = 0.5f + rng.uniform();
    }
  }
  return {m.params().begin(), m.params().end()};
}

// Every layer variant: GQA, QK-norm on and off, post-norm ffn/both/none, squared ReLU and its gated form, quant off.
std::vector<TritterConfig> variants() {
  std::vector<TritterConfig> out;
  TritterConfig c = preset_config("test");
  out.push_back(c);
  c.post_norm = PostNorm::Both;
  c.mlp_act = MlpAct::Relu2Glu;
  c.qk_norm = false;
  out.push_back(c);
  c.post_norm = PostNorm::None;
  c.sub_norm = false;
  c.tie_word_embeddings = true;
  out.push_back(c);
  c = preset_config("test");
  c.quant = false;
  out.push_back(c);
  return out;
}

TEST(Expand, FunctionPreservingMethodsGiveTheSameLogitsBitForBit) {
  const int64_t B = 2, T = 24;
  Rng rng(5);
  std::vector<int32_t> in(B * T), tg(B * T);
  for (auto& t : in) t = static_cast<int32_t>(rng.next_below(264));
  for (auto& t : tg) t = static_cast<int32_t>(rng.next_below(264));
  for (const TritterConfig& c : variants()) {
    const auto params = random_params(c, 11);
    const Logits base = train_forward(c, params, in, tg, B, T);
    for (const auto& [method, N] : std::vector<std::pair<ExpandMethod, int64_t>>{
             {ExpandMethod::Duplicate, 4}, {ExpandMethod::Duplicate, 3}, {ExpandMethod::Interleave, 5},
             {ExpandMethod::Interleave, 2}}) {
      const auto plan = expand_plan(c.num_hidden_layers, N, method);
      const TritterConfig g = expanded_config(c, N);
      std::vector<float> grown(static_cast<size_t>(parameter_count(g)));
      expand_params(c, params, plan, grown);
      const Logits big = train_forward(g, grown, in, tg, B, T);
      EXPECT_EQ(big.loss, base.loss) << expand_method_name(method) << " " << N;
      ASSERT_EQ(big.logits.size(), base.logits.size());
      EXPECT_EQ(std::memcmp(big.logits.data(), base.logits.data(), base.logits.size() * sizeof(float)), 0)
          << expand_method_name(method) << " " << N << " quant " << c.quant;
    }
  }
}

TEST(Expand, SolarChangesTheFunction) {
  const TritterConfig c = preset_config("test");  // 2 layers → 4 (m = 0: the stack twice) or 2 (m = 1)
  const int64_t B = 1, T = 16;
  Rng rng(9);
  std::vector<int32_t> in(B * T), tg(B * T);
  for (auto& t : in) t = static_cast<int32_t>(rng.next_below(264));
  for (auto& t : tg) t = static_cast<int32_t>(rng.next_below(264));
  const auto params = random_params(c, 2);
  const Logits base = train_forward(c, params, in, tg, B, T);
  const auto plan = expand_plan(2, 4, ExpandMethod::Solar);
  std::vector<float> grown(static_cast<size_t>(parameter_count(expanded_config(c, 4))));
  expand_params(c, params, plan, grown);
  const Logits big = train_forward(expanded_config(c, 4), grown, in, tg, B, T);
  EXPECT_TRUE(std::isfinite(big.loss));
  EXPECT_NE(big.loss, base.loss);
  // Layer 2 of the grown model is layer 0 of the original, weight for weight.
  const auto src = tensor_table(c), dst = tensor_table(expanded_config(c, 4));
  const TensorInfo* a = find_tensor(src, "model.layers.0.self_attn.o_proj.weight");
  const TensorInfo* b = find_tensor(dst, "model.layers.2.self_attn.o_proj.weight");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(std::memcmp(params.data() + a->offset, grown.data() + b->offset, a->numel() * sizeof(float)), 0);
}

// The packed inference engine runs the grown model to the same logits too (zeroed matrices pack to zero codes).
TEST(Expand, PackedEngineGivesTheSameLogits) {
  const TritterConfig c = preset_config("test");
  const auto params = random_params(c, 4);
  const auto plan = expand_plan(2, 4, ExpandMethod::Interleave);
  const TritterConfig g = expanded_config(c, 4);
  std::vector<float> grown(static_cast<size_t>(parameter_count(g)));
  expand_params(c, params, plan, grown);
  test::TempDir dir;
  pack_checkpoint(dir / "a.safetensors", c, params, PackOptions{});
  pack_checkpoint(dir / "b.safetensors", g, grown, PackOptions{});
  const PackedModel pa = PackedModel::open(dir / "a.safetensors"), pb = PackedModel::open(dir / "b.safetensors");
  Context ctx;
  ctx.threads = 1;
  Engine ea(ctx, pa.weights(), EngineOptions{.context = 64}), eb(ctx, pb.weights(), EngineOptions{.context = 64});
  std::vector<int32_t> tokens = {1, 50, 60, 70, 80, 90, 100, 7};
  std::vector<float> la(tokens.size() * c.vocab_size), lb(la.size());
  ea.forward(tokens, la.data(), true);
  eb.forward(tokens, lb.data(), true);
  EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)), 0);
}

// `tritter expand` on a training run: a resumable run directory (reset or expanded moments), a model file, errors.
TEST(Expand, CommandWritesResumableRunsAndRefusesBadInput) {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 300; ++i) text += "def g" + std::to_string(i) + "(a, b):\n    return a + b\n\n";
  test::write_file(dir / "d.py", text);
  const std::string run = (dir / "run").string();
  auto r = test::run_cli("-t 1 train --config test --data " + (dir / "d.py").string() + " --out " + run +
                         " --steps 3 --batch 2 --seq 32 --warmup 1 --val-fraction 0 --eval-every 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  const std::string big = (dir / "big").string();
  r = test::run_cli("expand " + run + " " + big + " --layers 4 --method interleave");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("0 0z 1 1z"), std::string::npos) << r.output;
  ASSERT_TRUE(std::filesystem::exists(dir / "big" / "step-00000000" / "optimizer.safetensors"));
  {
    const Checkpoint ck = load_checkpoint(dir / "big" / "step-00000000" / "model.safetensors", nullptr);
    EXPECT_EQ(ck.config.num_hidden_layers, 4);
    const auto table = tensor_table(ck.config);
    const TensorInfo* o1 = find_tensor(table, "model.layers.1.self_attn.o_proj.weight");
    for (int64_t i = 0; i < o1->numel(); ++i) ASSERT_EQ(ck.params.as<float>()[o1->offset + i], 0.0f);
    const SafeTensorsFile of(dir / "big" / "step-00000000" / "optimizer.safetensors");
    EXPECT_EQ(of.metadata_value("t"), "0");
    const SafeTensor& m0 = of.expect("m.model.layers.0.mlp.up_proj.weight", DType::F32,
                                     find_tensor(table, "model.layers.0.mlp.up_proj.weight")->shape);
    EXPECT_EQ(reinterpret_cast<const float*>(m0.data)[0], 0.0f);  // reset
  }
  r = test::run_cli("-t 1 train --resume " + big + " --steps 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 2/2"), std::string::npos) << r.output;

  // --optimizer expand: moments follow their weights, t and the step continue.
  const std::string big2 = (dir / "big2").string();
  r = test::run_cli("expand " + run + " " + big2 + " --layers 4 --method duplicate --optimizer expand");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  {
    const SafeTensorsFile a(std::filesystem::path(run) / "step-00000003" / "optimizer.safetensors");
    const SafeTensorsFile b(dir / "big2" / "step-00000003" / "optimizer.safetensors");
    EXPECT_EQ(b.metadata_value("t"), "3");
    const TritterConfig c = preset_config("test");
    const Shape up = find_tensor(tensor_table(c), "model.layers.1.mlp.up_proj.weight")->shape;
    const Shape down = find_tensor(tensor_table(c), "model.layers.1.mlp.down_proj.weight")->shape;
    const SafeTensor& va = a.expect("v.model.layers.1.mlp.up_proj.weight", DType::F32, up);
    const SafeTensor& vb = b.expect("v.model.layers.3.mlp.up_proj.weight", DType::F32, up);  // the copy of layer 1
    EXPECT_EQ(std::memcmp(va.data, vb.data, va.bytes()), 0);
    EXPECT_NE(reinterpret_cast<const float*>(va.data)[0], 0.0f);
    const SafeTensor& vz = b.expect("v.model.layers.3.mlp.down_proj.weight", DType::F32, down);  // zeroed: 0
    for (int64_t i = 0; i < shape_numel(down); ++i) ASSERT_EQ(reinterpret_cast<const float*>(vz.data)[i], 0.0f);
  }
  r = test::run_cli("-t 1 train --resume " + big2 + " --steps 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 5/5"), std::string::npos) << r.output;

  // A model file out; then the errors.
  r = test::run_cli("expand " + run + " " + (dir / "solar.safetensors").string() + " --layers 4 --method solar");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(load_checkpoint(dir / "solar.safetensors", nullptr).config.num_hidden_layers, 4);
  r = test::run_cli("expand " + run + " " + big + " --layers 4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("exists"), std::string::npos) << r.output;
  r = test::run_cli("expand " + run + " " + (dir / "x").string() + " --layers 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("at least 2"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));
  r = test::run_cli("expand " + (dir / "solar.safetensors").string() + " " + (dir / "y").string() + " --layers 6");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("give OUT as a .safetensors file"), std::string::npos) << r.output;
  r = test::run_cli("expand " + (dir / "nope").string() + " " + (dir / "z.safetensors").string() + " --layers 6");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no such file"), std::string::npos) << r.output;
  r = test::run_cli("expand " + run + " " + (dir / "w.safetensors").string() + " --layers 4 --optimizer keep");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("reset or expand"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tritter
