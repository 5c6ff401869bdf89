// RoPE scaling (kernels/ops.h rope_frequencies, rope_tables; the config's rope_scaling key): every type against
// values worked out by hand from the formulas in docs/long-context.md, the reference transcription agreeing, plain
// RoPE unchanged bit for bit, and the JSON key read and written as Hugging Face names it.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "kernels/ops.h"
#include "kernels/ref/ref.h"
#include "model/config.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using T = RopeScaling::Type;

RopeScaling scaling(T type, double factor, int64_t original = 0) {
  RopeScaling s;
  s.type = type;
  s.factor = factor;
  s.original_max_position_embeddings = original;
  return s;
}

void expect_freqs(const RopeFrequencies& f, std::initializer_list<double> want, double attention = 1.0) {
  ASSERT_EQ(f.inv_freq.size(), want.size());
  size_t j = 0;
  for (double w : want) {
    EXPECT_NEAR(f.inv_freq[j], w, 1e-14 * std::max(1.0, w)) << "j " << j;
    ++j;
  }
  EXPECT_NEAR(f.attention_factor, attention, 1e-15);
}

// d = 8, θ = 10⁴: plain inverse frequencies 1, 0.1, 0.01, 0.001.
TEST(RopeScaling, LinearDividesEveryFrequency) {
  expect_freqs(rope_frequencies(8, 1e4, scaling(T::Linear, 4), 1000, 1000), {0.25, 0.025, 0.0025, 0.00025});
}

TEST(RopeScaling, DynamicNtkRaisesTheBaseBeyondTheOriginalLength) {
  // seq_len 3000, original 1000, factor 2: θ' = 10⁴ · (2·3 − 1)^(8/6), so inv_j = 10^(−j) · 5^(−j/3).
  const RopeFrequencies f = rope_frequencies(8, 1e4, scaling(T::Dynamic, 2, 1000), 4000, 3000);
  expect_freqs(f, {1.0, 0.1 * std::pow(5.0, -1.0 / 3), 0.01 * std::pow(5.0, -2.0 / 3), 0.001 / 5});
  EXPECT_NEAR(f.inv_freq[1], 0.0584803547642573, 1e-15);
  // Within the original length: plain RoPE. Without original_max_position_embeddings: max_positions is original.
  expect_freqs(rope_frequencies(8, 1e4, scaling(T::Dynamic, 2, 1000), 4000, 800), {1, 0.1, 0.01, 0.001});
  expect_freqs(rope_frequencies(8, 1e4, scaling(T::Dynamic, 2), 1000, 3000),
               {1.0, 0.1 * std::pow(5.0, -1.0 / 3), 0.01 * std::pow(5.0, -2.0 / 3), 0.001 / 5});
}

TEST(RopeScaling, YarnRampsBetweenExtrapolationAndInterpolation) {
  // original 1000, β_fast 32, β_slow 1: correction dims 8·ln(1000/(2π·β))/(2 ln 10⁴) = 0.697 and 2.202 → the
  // range [0, 3]; ramp j/3 → inv_j = 10^(−j) · (ramp/4 + 1 − ramp); attention factor 0.1·ln 4 + 1.
  const RopeFrequencies f = rope_frequencies(8, 1e4, scaling(T::Yarn, 4, 1000), 4000, 4000);
  expect_freqs(f, {1.0, 0.075, 0.005, 0.00025}, 0.1 * std::log(4.0) + 1);
  EXPECT_NEAR(f.attention_factor, 1.1386294361119890, 1e-15);
  // Given attention_factor wins; mscale/mscale_all_dim give their ratio.
  RopeScaling s = scaling(T::Yarn, 4, 1000);
  s.attention_factor = 1.5;
  EXPECT_EQ(rope_frequencies(8, 1e4, s, 4000, 4000).attention_factor, 1.5);
  s.attention_factor.reset();
  s.mscale = 1.0;
  s.mscale_all_dim = 0.5;
  EXPECT_NEAR(rope_frequencies(8, 1e4, s, 4000, 4000).attention_factor,
              (0.1 * std::log(4.0) + 1) / (0.05 * std::log(4.0) + 1), 1e-15);
  // truncate = false keeps the fractional range [0.697, 2.202].
  s = scaling(T::Yarn, 4, 1000);
  s.truncate = false;
  const double lo = 8 * std::log(1000 / (2 * M_PI * 32)) / (2 * std::log(1e4));
  const double hi = 8 * std::log(1000 / (2 * M_PI)) / (2 * std::log(1e4));
  const double r1 = (1 - lo) / (hi - lo), r2 = (2 - lo) / (hi - lo);
  expect_freqs(rope_frequencies(8, 1e4, s, 4000, 4000),
               {1.0, 0.1 * (r1 / 4 + 1 - r1), 0.01 * (r2 / 4 + 1 - r2), 0.00025}, 0.1 * std::log(4.0) + 1);
}

TEST(RopeScaling, Llama3KeepsHighFrequenciesAndSmoothsTheMiddle) {
  // original 100, factor 8, low 1, high 4: wavelengths 2π·10^j = 6.28 (< 25: kept), 62.8 (between: smoothed with
  // s = (100/(20π) − 1)/3), 628 and 6283 (> 100: divided by 8).
  RopeScaling s = scaling(T::Llama3, 8, 100);
  const double sm = (5.0 / M_PI - 1.0) / 3.0;
  expect_freqs(rope_frequencies(8, 1e4, s, 4000, 4000), {1.0, 0.1 * ((1 - sm) / 8 + sm), 0.00125, 0.000125});
}

TEST(RopeScaling, ReferenceAgreesAndPlainRopeIsUnchanged) {
  for (const RopeScaling& s : {scaling(T::None, 1), scaling(T::Linear, 3), scaling(T::Dynamic, 4, 512),
                               scaling(T::Yarn, 8, 512), scaling(T::Llama3, 8, 512)}) {
    for (int64_t d : {8, 64, 128}) {
      const RopeFrequencies a = rope_frequencies(d, 5e5, s, 1024, 4096), b = ref::rope_frequencies(d, 5e5, s, 1024, 4096);
      ASSERT_EQ(a.inv_freq.size(), b.inv_freq.size());
      for (size_t j = 0; j < a.inv_freq.size(); ++j) {
        EXPECT_NEAR(a.inv_freq[j], b.inv_freq[j], 1e-14 * b.inv_freq[j]) << rope_scaling_name(s.type) << " d " << d;
      }
      EXPECT_EQ(a.attention_factor, b.attention_factor);
    }
  }
  // Type None: the tables are the plain ones bit for bit.
  const int64_t Tn = 50, d = 64;
  std::vector<float> c0(Tn * d / 2), s0(c0.size()), c1(c0.size()), s1(c0.size());
  rope_tables(c0.data(), s0.data(), Tn, d, 1e4, 7);
  rope_tables(c1.data(), s1.data(), Tn, d, 1e4, 7, RopeScaling{}, 1024, Tn);
  EXPECT_EQ(c0, c1);
  EXPECT_EQ(s0, s1);
  // Scaled tables: cos(pos · inv_j) · attention_factor (yarn, pos 5, j 1 of the hand example: 0.375 rad).
  std::vector<float> c(4 * 8), sn(c.size());
  rope_tables(c.data(), sn.data(), 8, 8, 1e4, 0, scaling(T::Yarn, 4, 1000), 4000, 4000);
  const double af = 0.1 * std::log(4.0) + 1;
  EXPECT_FLOAT_EQ(c[5 * 4 + 1], static_cast<float>(std::cos(0.375) * af));
  EXPECT_FLOAT_EQ(sn[5 * 4 + 1], static_cast<float>(std::sin(0.375) * af));
}

TEST(RopeScaling, ConfigKeyReadWrittenAndChecked) {
  using json = nlohmann::json;
  json j = config_to_json(preset_config("test"));
  EXPECT_FALSE(j.contains("rope_scaling"));  // plain RoPE: configs are written as before
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 512},
                       {"beta_fast", 16}};
  TritterConfig c = config_from_json(j, "cfg");
  EXPECT_EQ(c.rope_scaling.type, T::Yarn);
  EXPECT_EQ(c.rope_scaling.factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 512);
  EXPECT_EQ(c.rope_scaling.beta_fast, 16.0);
  EXPECT_EQ(c.rope_scaling.beta_slow, 1.0);
  EXPECT_EQ(config_from_json(config_to_json(c), "round trip"), c);
  // HF's older spelling "type", and llama3's required keys.
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2}};
  EXPECT_EQ(config_from_json(j, "cfg").rope_scaling.type, T::Linear);
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 1}, {"high_freq_factor", 4},
                       {"original_max_position_embeddings", 8192}};
  c = config_from_json(j, "cfg");
  EXPECT_EQ(c.rope_scaling.type, T::Llama3);
  EXPECT_EQ(config_from_json(config_to_json(c), "round trip"), c);
  j["rope_scaling"] = nullptr;
  EXPECT_EQ(config_from_json(j, "cfg").rope_scaling.type, T::None);
  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(config_from_json(j, "cfg").rope_scaling, RopeScaling{});

  const auto bad = [&](const json& rs, std::initializer_list<const char*> fragments) {
    json k = j;
    k["rope_scaling"] = rs;
    test::expect_error([&] { config_from_json(k, "cfg.json"); }, fragments);
  };
  bad({{"rope_type", "longrope"}, {"factor", 2}}, {"cfg.json", "'longrope'", "'yarn'"});
  bad({{"factor", 2}}, {"rope_type"});
  bad({{"rope_type", "linear"}}, {"needs 'factor'"});
  bad({{"rope_type", "linear"}, {"factor", 2}, {"beta_fast", 3}}, {"'beta_fast' is not a key of rope_type 'linear'"});
  bad({{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 1}, {"high_freq_factor", 4}},
      {"original_max_position_embeddings"});
  bad({{"rope_type", "linear"}, {"factor", 0.5}}, {"rope_scaling.factor 0.5", ">= 1"});
  bad({{"rope_type", "yarn"}, {"factor", "4"}}, {"rope_scaling.factor", "a number"});
  bad("yarn", {"rope_scaling", "null or an object"});
}

}  // namespace
}  // namespace tritter
