// Continuous thought in the engine: step_embedding(E[id]) is step_token(id) bit for bit, forward_embeddings of
// embedding rows is forward of the ids, last_hidden is what the head reads, latent steps advance the cache one
// position each and equal a full recompute of every pass (Coconut's n+1 passes), generate's latent mode is the
// manual loop, and latent_steps 0 is plain generation.
#include "infer/latent.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "model/config.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TritterConfig latent_config(int64_t vocab = 272) {
  ConfigOverrides o;
  o.model_size = "test";
  o.vocab_size = vocab;
  return resolve_config(o);
}

PackedModel latent_model(const TritterConfig& c, uint64_t seed) {
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  init_parameters(p, c, seed);
  Rng rng(seed + 7);  // gains off 1 so a mis-wired final norm shows
  for (const auto& t : tensor_table(c)) {
    if (t.role != TensorRole::Norm) continue;
    for (int64_t i = 0; i < t.numel(); ++i) p[t.offset + i] = 1.0f + 0.3f * (rng.uniform() - 0.5f);
  }
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, {HeadFormat::F32}, nullptr);
}

std::vector<int32_t> byte_ids(int64_t T, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(static_cast<size_t>(T));
  for (auto& x : v) x = static_cast<int32_t>(8 + rng.next_below(256));
  return v;
}

std::vector<float> embedding_of(Engine& e, std::span<const int32_t> ids) {
  std::vector<float> x(ids.size() * static_cast<size_t>(e.weights().config.hidden_size));
  e.source().embed_rows(ids.data(), static_cast<int64_t>(ids.size()), x.data());
  return x;
}

TEST(Latent, ControlIdsFollowTheByteVocabulary) {
  EXPECT_EQ(kTokenBot, 264);
  EXPECT_EQ(kTokenEot, 265);
  EXPECT_EQ(kTokenLatent, 266);
  EXPECT_EQ(kTokenPause, 267);
  EXPECT_EQ(kLatentVocabSize, 268);
}

TEST(Latent, StepEmbeddingOfTheEmbeddingRowIsStepTokenBitForBit) {
  const TritterConfig c = latent_config();
  Context ctx;
  const PackedModel m = latent_model(c, 3);
  const auto prompt = byte_ids(7, 1);
  const int64_t V = c.vocab_size;
  for (int32_t id : {int32_t{1}, int32_t{40}, kTokenBot, kTokenEot, kTokenPause}) {
    Engine a(ctx, m.weights(), {}), b(ctx, m.weights(), {});
    std::vector<float> za(V), zb(V);
    a.forward(prompt, za.data(), false);
    b.forward(prompt, zb.data(), false);
    for (int step = 0; step < 3; ++step) {  // several positions, also after a decode step
      test::poison(std::span<float>(za));
      test::poison(std::span<float>(zb));
      a.step_token(id, za.data());
      const auto x = embedding_of(b, std::span<const int32_t>(&id, 1));
      b.step_embedding(x, zb.data());
      ASSERT_EQ(za, zb) << "id " << id << " step " << step;
      ASSERT_EQ(a.position(), b.position());
      EXPECT_EQ(a.position(), 7 + step + 1);
    }
  }
}

TEST(Latent, ForwardEmbeddingsOfRowsIsForwardOfIdsAcrossChunks) {
  const TritterConfig c = latent_config();
  Context ctx;
  const PackedModel m = latent_model(c, 5);
  const auto ids = byte_ids(11, 2);
  const int64_t V = c.vocab_size;
  EngineOptions o;
  o.max_batch = 4;  // 11 rows = three chunks
  Engine a(ctx, m.weights(), o), b(ctx, m.weights(), o);
  std::vector<float> za(ids.size() * V), zb(ids.size() * V);
  test::poison(std::span<float>(zb));
  a.forward(ids, za.data(), true);
  b.forward_embeddings(embedding_of(b, ids), zb.data(), true);
  EXPECT_EQ(za, zb);
  EXPECT_EQ(b.position(), 11);
}

TEST(Latent, LastHiddenIsTheStateTheHeadReads) {
  const TritterConfig c = latent_config();
  Context ctx;
  const PackedModel m = latent_model(c, 9);
  const auto prompt = byte_ids(6, 4);
  const int64_t V = c.vocab_size, D = c.hidden_size;
  Engine e(ctx, m.weights(), {});
  std::vector<float> h(D), h2(D), z(V), z2(V);
  EXPECT_THROW(e.last_hidden(h), Error);  // before any forward
  e.forward(prompt, z.data(), false);
  e.last_hidden(h);
  std::vector<int8_t> hq(D);
  float hs = 0;
  test::poison(std::span<float>(z2));
  e.source().head_forward(ctx, z2.data(), h.data(), 1, hq.data(), &hs);
  EXPECT_EQ(z, z2) << "the head of last_hidden() must be forward()'s logits";
  double ss = 0;
  for (float x : h) ss += static_cast<double>(x) * x;
  EXPECT_GT(ss, 0.1 * D);  // a normed state (RMS ≈ the gains ≈ 1), not the raw residual
  Engine f(ctx, m.weights(), {});
  f.forward(prompt, nullptr, false);  // the head skipped: the same state
  f.last_hidden(h2);
  EXPECT_EQ(h, h2);
  std::vector<float> wrong(D + 1);
  EXPECT_THROW(e.last_hidden(wrong), Error);
  EXPECT_THROW(e.step_embedding(wrong, nullptr), Error);
}

TEST(Latent, EmbeddingRowRmsIsTheMeanRowNormOverSqrtD) {
  const TritterConfig c = latent_config();
  Context ctx;
  const PackedModel m = latent_model(c, 2);
  Engine e(ctx, m.weights(), {});
  const int64_t V = c.vocab_size, D = c.hidden_size;
  std::vector<int32_t> all(V);
  for (int64_t v = 0; v < V; ++v) all[v] = static_cast<int32_t>(v);
  const auto E = embedding_of(e, all);
  double want = 0;
  for (int64_t v = 0; v < V; ++v) {
    double ss = 0;
    for (int64_t k = 0; k < D; ++k) ss += static_cast<double>(E[v * D + k]) * E[v * D + k];
    want += std::sqrt(ss);
  }
  want /= static_cast<double>(V) * std::sqrt(static_cast<double>(D));
  EXPECT_NEAR(embedding_row_rms(e.source()), want, 1e-12 * want);
  EXPECT_GT(want, 0.0);
}

// The KV-cached loop against Coconut's full recompute: pass j runs every input so far (the prompt's and <bot>'s
// embedding rows, then thoughts 0 .. j−1) from an empty cache; by causality it must give the same thought j, and
// the last pass the same logits. On an f32 cache prefill and decode agree bit for bit, so equality is exact.
TEST(Latent, LatentStepsAdvanceTheCacheAndEqualTheFullRecompute) {
  const TritterConfig c = latent_config();
  Context ctx;
  const PackedModel m = latent_model(c, 13);
  const int64_t V = c.vocab_size, D = c.hidden_size, N = 4;
  auto prompt = byte_ids(5, 6);
  prompt.push_back(kTokenBot);
  Engine e(ctx, m.weights(), {});
  const float scale = static_cast<float>(embedding_row_rms(e.source()));
  e.forward(prompt, nullptr, false);
  std::vector<float> inputs = embedding_of(e, prompt);  // every input row fed so far
  std::vector<float> h(D);
  for (int64_t j = 0; j < N; ++j) {
    e.last_hidden(h);
    for (float& x : h) x *= scale;
    Engine full(ctx, m.weights(), {});
    full.forward_embeddings(inputs, nullptr, false);
    std::vector<float> hf(D);
    full.last_hidden(hf);
    for (float& x : hf) x *= scale;
    ASSERT_EQ(h, hf) << "thought " << j;
    inputs.insert(inputs.end(), h.begin(), h.end());
    e.step_embedding(h, nullptr);
    EXPECT_EQ(e.position(), static_cast<int64_t>(prompt.size()) + j + 1);
  }
  // run_latent_steps is this loop.
  Engine r(ctx, m.weights(), {});
  r.forward(prompt, nullptr, false);
  run_latent_steps(r, N, scale);
  EXPECT_EQ(r.position(), static_cast<int64_t>(prompt.size()) + N);
  std::vector<float> z(V), zr(V), zf(V);
  e.step_token(kTokenEot, z.data());
  r.step_token(kTokenEot, zr.data());
  EXPECT_EQ(z, zr);
  const auto eot = embedding_of(e, std::span<const int32_t>(&kTokenEot, 1));
  inputs.insert(inputs.end(), eot.begin(), eot.end());
  Engine full(ctx, m.weights(), {});
  full.forward_embeddings(inputs, zf.data(), false);
  EXPECT_EQ(z, zf);
  EXPECT_EQ(e.position(), static_cast<int64_t>(prompt.size()) + N + 1);
  EXPECT_THROW(run_latent_steps(r, -1, scale), Error);
}

std::vector<int32_t> greedy_after(Engine& e, std::vector<float> z, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t id = static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
    out.push_back(id);
    if (i + 1 < n) e.step_token(id, z.data());
  }
  return out;
}

TEST(Latent, GenerateWithLatentStepsIsTheManualLoop) {
  const TritterConfig c = latent_config();
  Context ctx;
  const PackedModel m = latent_model(c, 17);
  const int64_t V = c.vocab_size, N = 3;
  const auto prompt = byte_ids(6, 8);
  GenerateOptions o;
  o.max_tokens = 6;
  o.stop_at_eos = false;
  o.sampler.temperature = 0;
  o.sampler.repeat_penalty = 1;
  o.latent_steps = N;
  o.latent_scale = 0.5f;
  Engine g(ctx, m.weights(), {});
  const GenerateResult r = generate_tokens(g, prompt, o, {});
  EXPECT_EQ(r.latent_steps, N);
  EXPECT_EQ(r.prompt_tokens, 6);
  EXPECT_EQ(g.position(), 6 + 1 + N + 1 + r.decode_steps);

  Engine e(ctx, m.weights(), {});
  auto with_bot = prompt;
  with_bot.push_back(kTokenBot);
  e.forward(with_bot, nullptr, false);
  run_latent_steps(e, N, 0.5f);
  std::vector<float> z(V);
  e.step_token(kTokenEot, z.data());
  EXPECT_EQ(r.tokens, greedy_after(e, z, 6));

  // latent_steps 0: plain generation, no control ids.
  o.latent_steps = 0;
  Engine p(ctx, m.weights(), {}), q(ctx, m.weights(), {});
  const GenerateResult plain = generate_tokens(p, prompt, o, {});
  std::vector<float> zq(V);
  q.forward(prompt, zq.data(), false);
  EXPECT_EQ(plain.tokens, greedy_after(q, zq, 6));
  EXPECT_EQ(plain.latent_steps, 0);
  EXPECT_EQ(p.position(), 6 + plain.decode_steps);
  EXPECT_NE(plain.tokens, r.tokens) << "three thoughts and two control ids should change an untrained model's text";
}

TEST(Latent, ErrorsNameTheVocabularyAndTheContext) {
  Context ctx;
  const TritterConfig small = latent_config(264);
  const PackedModel m = latent_model(small, 1);
  Engine e(ctx, m.weights(), {});
  GenerateOptions o;
  o.latent_steps = 2;
  o.sampler.temperature = 0;
  const auto prompt = byte_ids(4, 1);
  try {
    generate_tokens(e, prompt, o, {});
    FAIL() << "a 264-id vocabulary has no <bot>";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("vocab_size is 264, expected at least 268"), std::string::npos)
        << err.what();
  }
  const TritterConfig c = latent_config();
  const PackedModel m2 = latent_model(c, 1);
  EngineOptions eo;
  eo.context = 10;
  Engine f(ctx, m2.weights(), eo);
  o.latent_steps = 5;  // 4 + 1 + 5 + 1 > 10
  EXPECT_THROW(generate_tokens(f, prompt, o, {}), Error);
  o.latent_steps = -1;
  EXPECT_THROW(generate_tokens(f, prompt, o, {}), Error);
}

}  // namespace
}  // namespace tritter
