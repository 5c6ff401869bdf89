// Sampler and generation: greedy = argmax, seeded draws reproducible and distributed as the softmax says, filters,
// stop strings held back and cut, greedy output identical across thread counts, same seed same text.
#include "infer/generate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "model/init.h"
#include "text/byte_tokenizer.h"

namespace tritter {
namespace {

TEST(Sampler, GreedyIsArgmaxLowestIndexOnTies) {
  std::vector<float> z = {0.1f, 3.0f, -1.0f, 3.0f};
  Sampler s({});
  EXPECT_EQ(s.sample(z.data(), 4, {}), 1);
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  // Two tokens with p = 1/4, 3/4. 4000 draws: the count of token 1 is within 5σ (σ = √(n p (1−p)) ≈ 27).
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.seed = 42;
  Sampler s(o);
  int ones = 0;
  for (int i = 0; i < 4000; ++i) {
    std::vector<float> z = {0.0f, std::log(3.0f)};
    ones += s.sample(z.data(), 2, {}) == 1;
  }
  EXPECT_NEAR(ones, 3000, 5 * std::sqrt(4000 * 0.75 * 0.25));
}

TEST(Sampler, FiltersSeedAndPenalty) {
  std::vector<float> base = {1.0f, 2.0f, 0.5f, 1.9f, -3.0f};
  auto draws = [&](SamplerOptions o, int n) {
    Sampler s(o);
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      auto z = base;
      out.push_back(s.sample(z.data(), 5, {}));
    }
    return out;
  };
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 1;
  for (int32_t t : draws(o, 50)) EXPECT_EQ(t, 1);  // top-k 1 is greedy
  o.top_k = 2;
  o.min_p = 0.0f;
  o.top_p = 1.0f;
  for (int32_t t : draws(o, 200)) EXPECT_TRUE(t == 1 || t == 3);
  o.top_k = 0;
  o.min_p = 0.5f;  // keeps p ≥ 0.5·p_max: tokens 1 and 3 (e^-0.1), not 0 (e^-1)
  for (int32_t t : draws(o, 200)) EXPECT_TRUE(t == 1 || t == 3);
  o.min_p = 0.0f;
  o.seed = 7;
  EXPECT_EQ(draws(o, 100), draws(o, 100));
  SamplerOptions p;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  auto z = base;
  const std::vector<int32_t> hist = {1};
  EXPECT_EQ(s.sample(z.data(), 5, hist), 3);  // 2.0 / 2 = 1.0 < 1.9
  EXPECT_FLOAT_EQ(z[1], 1.0f);
  o.temperature = -1.0f;
  EXPECT_THROW(Sampler{o}, Error);
}

struct Tiny {
  TritterConfig c = preset_config("test");
  PackedModel m = PackedModel::in_memory(c, [this](float* out, const TensorInfo& info, size_t i) {
    init_tensor(out, c, info, i, 5);
  }, {}, nullptr);
};

GenerateResult generate_run(const Tiny& t, int threads, const GenerateOptions& o, std::string* streamed = nullptr) {
  Context ctx;
  ctx.threads = threads;
  Engine e(ctx, t.m.weights(), {});
  const auto ids = tokenize("def main():");
  return generate(e, ids, o, [&](std::string_view s) {
    if (streamed) streamed->append(s);
  });
}

TEST(Generate, GreedySameAcrossThreadsAndSeededSampleReproducible) {
  Tiny t;
  GenerateOptions o;
  o.max_tokens = 24;
  o.stop_at_eos = false;
  const auto a = generate_run(t, 1, o), b = generate_run(t, 2, o);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens.size(), 24u);
  EXPECT_EQ(a.stop_reason, "length");
  EXPECT_EQ(a.decode_steps, 23);
  o.sampler.temperature = 0.9f;
  o.sampler.seed = 3;
  EXPECT_EQ(generate_run(t, 2, o).tokens, generate_run(t, 1, o).tokens);
}

TEST(Generate, StopStringIsCutAndNeverStreamed) {
  Tiny t;
  GenerateOptions o;
  o.max_tokens = 40;
  o.stop_at_eos = false;
  o.sampler.temperature = 1.0f;
  o.sampler.top_k = 0;
  o.sampler.seed = 11;
  const auto full = generate_run(t, 1, o);
  ASSERT_GE(full.text.size(), 20u);
  const std::string stop = full.text.substr(10, 3);
  o.stop = {stop, "\x01never"};
  std::string streamed;
  const auto cut = generate_run(t, 1, o, &streamed);
  EXPECT_EQ(cut.stop_reason, "stop");
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(streamed, cut.text);
}

TEST(Generate, ErrorsForEmptyAndOverlongPrompts) {
  Tiny t;
  Context ctx;
  EngineOptions eo;
  eo.context = 16;
  Engine e(ctx, t.m.weights(), eo);
  EXPECT_THROW(generate(e, std::span<const int32_t>(), {}, [](std::string_view) {}), Error);
  const auto ids = tokenize(std::string(20, 'a'));
  try {
    generate(e, ids, {}, [](std::string_view) {});
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("the prompt has 21 tokens, more than the context of 16"), std::string::npos)
        << err.what();
  }
  const auto ok = tokenize("abc");
  GenerateOptions o;
  o.max_tokens = 100;
  o.stop_at_eos = false;
  const auto r = generate(e, ok, o, [](std::string_view) {});
  EXPECT_EQ(r.stop_reason, "context");
  EXPECT_EQ(r.prompt_tokens + r.decode_steps, 16);
}

}  // namespace
}  // namespace tritter
