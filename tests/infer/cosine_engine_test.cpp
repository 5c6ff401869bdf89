// A cosine-head model through packing and inference: the packed file round trip (log scale, unit table, int8 head
// from the unit rows), engine logits against the trainer's forward, the KNN exit equal to the argmax of the
// logits, generation with the KNN exit equal to greedy softmax, attention masks in the engine (bidirectional and
// prefix_lm prefill), the KNN evaluation, and the shipped-style linear configs unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "infer/knn_eval.h"
#include "kernels/knn.h"
#include "model/config.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "train/model.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TritterConfig cosine_config() {
  ConfigOverrides o;
  o.model_size = "test";
  o.head_type = HeadType::CosineTied;
  o.embed_pred_loss = EmbedPredLoss::Cosine;
  return resolve_config(o);  // ties the embedding by itself
}

std::vector<float> params(const TritterConfig& c, uint64_t seed) {
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  init_parameters(p, c, seed);
  return p;
}

PackedModel packed(const TritterConfig& c, const std::vector<float>& p, HeadFormat head = HeadFormat::F32) {
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, {head}, nullptr);
}

std::vector<int32_t> ids(int64_t T, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(static_cast<size_t>(T));
  for (auto& x : v) x = static_cast<int32_t>(8 + rng.next_below(256));
  return v;
}

TEST(CosineConfig, KeysRoundTripAndLinearJsonIsUnchanged) {
  const TritterConfig c = cosine_config();
  EXPECT_TRUE(c.tie_word_embeddings);
  const nlohmann::json j = config_to_json(c, true);
  EXPECT_EQ(j.at("head_type"), "cosine_tied");
  EXPECT_EQ(j.at("embed_pred_loss"), "cosine");
  EXPECT_EQ(config_from_json(j, "t"), [&] { TritterConfig d = c; d.model_size = "custom"; return d; }());
  const nlohmann::json lin = config_to_json(preset_config("tiny"), true);
  EXPECT_FALSE(lin.contains("head_type"));  // old files and new linear ones look the same
  EXPECT_FALSE(lin.contains("embed_pred_weight"));
  EXPECT_EQ(config_from_json(lin, "t").head_type, HeadType::Linear);
  ConfigOverrides bad;
  bad.model_size = "test";
  bad.head_type = HeadType::CosineTied;
  bad.tie_word_embeddings = false;
  EXPECT_THROW(resolve_config(bad), Error);
  ConfigOverrides aux;
  aux.model_size = "test";
  aux.embed_pred_loss = EmbedPredLoss::Cosine;
  EXPECT_THROW(resolve_config(aux), Error);  // the auxiliary term needs the cosine head
  EXPECT_EQ(tensor_table(c).back().name, "lm_head.log_scale");
  EXPECT_EQ(find_tensor(tensor_table(preset_config("test")), "lm_head.log_scale"), nullptr);
}

TEST(CosineConfig, WeightScheduleIsPiecewiseLinear) {
  EXPECT_DOUBLE_EQ(embed_pred_beta("0.1", 0.7), 0.1);
  const std::string plan = "0@0.2,0.5@0.5,0.9@0.8,1.0@1.0";
  EXPECT_DOUBLE_EQ(embed_pred_beta(plan, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(embed_pred_beta(plan, 0.35), 0.25);
  EXPECT_DOUBLE_EQ(embed_pred_beta(plan, 0.8), 0.9);
  EXPECT_DOUBLE_EQ(embed_pred_beta(plan, 1.0), 1.0);
  for (const char* bad : {"", "x", "-1", "0.1@0.5,0.2@0.4", "0.1,0.2@0.5", "0.1@2"}) {
    EXPECT_THROW(embed_pred_beta(bad, 0.0), Error) << bad;
  }
}

TEST(CosineEngine, PackedFileRoundTripsAndMatchesTheTrainer) {
  const TritterConfig c = cosine_config();
  auto p = params(c, 3);
  p[static_cast<size_t>(find_tensor(tensor_table(c), "lm_head.log_scale")->offset)] = std::log(9.0f);
  test::TempDir dir;
  const auto path = dir.path() / "cos.safetensors";
  pack_checkpoint(path, c, p, {});
  const PackedModel file = PackedModel::open(path);
  const PackedModel mem = packed(c, p);
  TritterConfig fc = file.config();
  fc.model_size = mem.config().model_size;  // a file stores the keys, not the preset's name
  EXPECT_EQ(fc, mem.config());
  EXPECT_FLOAT_EQ(file.weights().head.cos_scale, 9.0f);
  const auto in = ids(11, 4);
  const int64_t V = c.vocab_size;
  Context ctx;
  std::vector<float> zf(in.size() * V), zm(in.size() * V);
  Engine(ctx, file.weights(), {}).forward(in, zf.data(), true);
  Engine(ctx, mem.weights(), {}).forward(in, zm.data(), true);
  EXPECT_EQ(zf, zm);
  // The trainer's forward on the same weights (quantization-aware: the same integer products up to rounding).
  train::TrainModel tm(c, ctx);
  std::copy(p.begin(), p.end(), tm.params().begin());
  tm.reserve(1, static_cast<int64_t>(in.size()), false);
  tm.forward(in.data(), nullptr, 1, static_cast<int64_t>(in.size()));
  double worst = 0;
  for (size_t i = 0; i < zf.size(); ++i) worst = std::max(worst, double(std::fabs(zf[i] - tm.logits()[i])));
  EXPECT_LE(worst, 2e-2 * 9.0) << "cosine logits are bounded by s = 9";
  for (float z : zf) EXPECT_LE(std::fabs(z), 9.0f * (1 + 1e-5f));
}

TEST(CosineEngine, KnnExitIsTheArgmaxAndGenerationAgrees) {
  const TritterConfig c = cosine_config();
  const auto p = params(c, 5);
  for (HeadFormat f : {HeadFormat::F32, HeadFormat::I8}) {
    const PackedModel m = packed(c, p, f);
    Context ctx;
    Engine e(ctx, m.weights(), {});
    const auto in = ids(7, 9);
    std::vector<float> z(static_cast<size_t>(c.vocab_size));
    for (int step = 0; step < 5; ++step) {
      e.forward(step == 0 ? std::span<const int32_t>(in) : std::span<const int32_t>(&in[step], 1), z.data(), false);
      int32_t id[3], am = -1;
      float sc[3];
      e.knn_exit(id, sc, 3);
      argmax_rows(&am, z.data(), 1, c.vocab_size);
      EXPECT_EQ(id[0], am);
      EXPECT_EQ(sc[0], z[static_cast<size_t>(am)]);
      EXPECT_GE(sc[0], sc[1]);
    }
    GenerateOptions go;
    go.max_tokens = 12;
    go.stop_at_eos = false;
    go.sampler.repeat_penalty = 1.0f;
    Engine a(ctx, m.weights(), {}), b(ctx, m.weights(), {});
    const GenerateResult soft = generate_tokens(a, in, go, {});
    go.knn_exit = true;
    const GenerateResult knn = generate_tokens(b, in, go, {});
    EXPECT_EQ(soft.tokens, knn.tokens);
    go.sampler.temperature = 0.8f;
    EXPECT_THROW(generate_tokens(b, in, go, {}), Error);
  }
  const PackedModel lin = packed(preset_config("test"), params(preset_config("test"), 1));
  Context ctx;
  Engine e(ctx, lin.weights(), {});
  std::vector<float> z(264);
  e.forward(ids(3, 1), z.data(), false);
  int32_t id;
  float sc;
  EXPECT_THROW(e.knn_exit(&id, &sc, 1), Error);
}

TEST(CosineEngine, KnnEvaluationAgreesEverywhere) {
  const TritterConfig c = cosine_config();
  const PackedModel m = packed(c, params(c, 8));
  Context ctx;
  EngineOptions eo;
  eo.max_batch = 16;  // windows of 40 run in three chunks
  Engine e(ctx, m.weights(), eo);
  const int64_t T = 40;
  std::vector<int32_t> win;
  for (int w = 0; w < 3; ++w) {
    const auto x = ids(T + 1, 20 + w);
    win.insert(win.end(), x.begin(), x.end());
  }
  const KnnEval r = evaluate_knn_exit(e, win.data(), 3, T);
  EXPECT_EQ(r.positions, 3 * T);
  EXPECT_EQ(r.agree, r.positions);
  EXPECT_EQ(r.knn_correct, r.argmax_correct);
  EXPECT_GT(r.bits_per_token(), 0.0);
}

// The engine's masks: bidirectional prefill sees later positions (the first state changes with the last token);
// prefix_lm(P) with P = 0 is causal, and after a prefix prefill decoding is causal over the cached prefix: equal
// to one full prefix-LM forward.
TEST(EngineMasks, BidirectionalAndPrefixLm) {
  const TritterConfig c = preset_config("test");
  const PackedModel m = packed(c, params(c, 2));
  Context ctx;
  const int64_t V = c.vocab_size, D = c.hidden_size;
  auto a = ids(9, 3), b = a;
  b.back() = a.back() == 100 ? 101 : 100;
  auto first_state = [&](const std::vector<int32_t>& x, const AttnMask& mask) {
    Engine e(ctx, m.weights(), {});
    e.set_mask(mask);
    e.forward(x, nullptr, false);
    return std::vector<float>(e.hidden_states(), e.hidden_states() + D);
  };
  EXPECT_EQ(first_state(a, AttnMask::causal()), first_state(b, AttnMask::causal()));
  EXPECT_NE(first_state(a, AttnMask::bidirectional()), first_state(b, AttnMask::bidirectional()));
  EXPECT_EQ(first_state(a, AttnMask::prefix_lm(0)), first_state(a, AttnMask::causal()));
  // Cached prefix-LM decoding = the full forward under the same mask.
  const int64_t P = 4;
  std::vector<float> full(a.size() * V), step(a.size() * V);
  {
    Engine e(ctx, m.weights(), {});
    e.set_mask(AttnMask::prefix_lm(P));
    e.forward(a, full.data(), true);
  }
  {
    Engine e(ctx, m.weights(), {});
    e.set_mask(AttnMask::prefix_lm(P));
    e.forward(std::span<const int32_t>(a.data(), P), step.data(), true);
    for (size_t t = P; t < a.size(); ++t) e.forward(std::span<const int32_t>(&a[t], 1), step.data() + t * V, false);
  }
  for (size_t i = 0; i < full.size(); ++i) ASSERT_NEAR(full[i], step[i], 1e-5f * (1 + std::fabs(full[i]))) << i;
  Engine e(ctx, m.weights(), {});
  e.set_mask(AttnMask::prefix_lm(P));
  EXPECT_THROW(e.forward(std::span<const int32_t>(a.data(), 2), nullptr, false), Error);  // prefix split
}

}  // namespace
}  // namespace tritter
