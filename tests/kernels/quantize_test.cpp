// BitNet b1.58 quantizers (training-spec §3, §4.2): hand-computed cases, ties to even, zero and all-equal rows,
// huge and tiny magnitudes, NaN/Inf errors; the SIMD activation quantizer equals the reference bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "core/error.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter {
namespace {

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(TernarySigma, HandComputed) {
  const float w[4] = {0.5f, -1.0f, 0.25f, 0.25f};  // Σ|w| = 2, β = 0.5, σ = 2
  EXPECT_EQ(ternary_sigma(w, 4), 2.0f);
  const float zeros[3] = {0, 0, 0};  // β clamps to 1e-5
  EXPECT_EQ(ternary_sigma(zeros, 3), 1.0f / 1e-5f);
  // β accumulated in double: 1e8 small values that a float accumulator would stall on.
  std::vector<float> many(1 << 20, 0.1f);
  many[0] = 3e4f;
  const double exact = (3e4 + static_cast<double>(0.1f) * ((1 << 20) - 1)) / (1 << 20);
  EXPECT_EQ(ternary_sigma(many.data(), static_cast<int64_t>(many.size())), 1.0f / static_cast<float>(exact));
}

TEST(TernarySigma, Errors) {
  const float w[2] = {1.0f, kNaN};
  EXPECT_THROW(ternary_sigma(w, 2), Error);
  const float w2[2] = {kInf, 1.0f};
  EXPECT_THROW(ternary_sigma(w2, 2), Error);
  EXPECT_THROW(ternary_sigma(w, 0), Error);
}

TEST(TernaryQuantize, TiesToEvenAndClamp) {
  // σ = 2: w·σ = 0.5 → 0 (tie to even), 1.5 → 2 → clamp 1, −0.5 → −0 → 0, 0.75·2 = 1.5 → 1, −3 → −1.
  const float w[7] = {0.25f, 0.75f, -0.25f, -0.2500001f, 10.0f, -1.5f, 0.2499999f};
  int8_t q[7];
  ternary_quantize(q, w, 7, 2.0f);
  const int8_t want[7] = {0, 1, 0, -1, 1, -1, 0};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(q[i], want[i]) << i;
}

TEST(TernaryQuantize, EqualsRoundThenClampAtEveryBoundary) {
  // The definition, clamp(rne(w·σ), −1, 1), against the two-compare form, on the floats around ±0.5 and ±1.5
  // (w·σ lands on, just above and just below each), ±0, huge weights and a spread of random ones; n = 4099 so a
  // vector body and its tail both run.
  std::vector<float> w;
  for (float edge : {0.5f, 1.5f, 2.5f}) {
    for (float sign : {1.0f, -1.0f}) {
      float v = sign * edge;
      for (int k = 0; k < 4; ++k) v = std::nextafter(v, 0.0f);
      for (int k = 0; k < 9; ++k, v = std::nextafter(v, sign * 10.0f)) w.push_back(v);
    }
  }
  for (float v : {0.0f, -0.0f, 3e38f, -3e38f, 1e-30f, -1e-30f}) w.push_back(v);
  uint64_t state = 12345;
  while (w.size() < 4099) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    w.push_back(static_cast<float>(static_cast<int64_t>(state >> 33) % 4001 - 2000) / 1000.0f);
  }
  for (float sigma : {1.0f, 0.75f, 3.0f}) {
    std::vector<int8_t> q(w.size());
    ternary_quantize(q.data(), w.data(), static_cast<int64_t>(w.size()), sigma);
    for (size_t i = 0; i < w.size(); ++i) {
      const float want = std::fmin(std::fmax(std::nearbyint(w[i] * sigma), -1.0f), 1.0f);
      ASSERT_EQ(q[i], static_cast<int8_t>(want)) << "w " << w[i] << " sigma " << sigma;
    }
  }
}

TEST(TernaryQuantize, AllEqualAndZeroRows) {
  // All-equal magnitudes: β = |w|, w·σ = ±1 exactly → every weight survives (unlike the original's α threshold).
  const float w[4] = {0.3f, -0.3f, 0.3f, -0.3f};
  int8_t q[4];
  const float sigma = ternary_quantize_absmean(q, w, 4);
  EXPECT_EQ(sigma, 1.0f / 0.3f);
  EXPECT_EQ(q[0], 1);
  EXPECT_EQ(q[1], -1);
  const float z[4] = {0, -0.0f, 0, 0};
  ternary_quantize_absmean(q, z, 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(q[i], 0);
  const float bad[2] = {0.1f, -kInf};
  try {
    ternary_quantize(q, bad, 2, 1.0f);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight 1"), std::string::npos) << e.what();
  }
}

TEST(QuantizeActivations, HandComputed) {
  // absmax 2 → s = 63.5: 1 → 63.5 → 64 (tie to even), −1 → −64, 0.5 → 31.75 → 32, 2 → 127, −2 → −127.
  const float x[5] = {1.0f, -1.0f, 0.5f, 2.0f, -2.0f};
  int8_t xq[5];
  float s = 0;
  quantize_activations(xq, &s, x, 1, 5);
  EXPECT_EQ(s, 63.5f);
  const int8_t want[5] = {64, -64, 32, 127, -127};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(xq[i], want[i]) << i;
  // Ties: absmax 127 → s = 1: 2.5 → 2, 3.5 → 4, −2.5 → −2.
  const float t[4] = {127.0f, 2.5f, 3.5f, -2.5f};
  quantize_activations(xq, &s, t, 1, 4);
  EXPECT_EQ(xq[1], 2);
  EXPECT_EQ(xq[2], 4);
  EXPECT_EQ(xq[3], -2);
}

TEST(QuantizeActivations, ZeroTinyAndHugeRows) {
  const float zeros[3] = {0, 0, 0};
  int8_t xq[3];
  float s;
  quantize_activations(xq, &s, zeros, 1, 3);
  EXPECT_EQ(s, 127.0f / 1e-5f);
  for (int8_t v : xq) EXPECT_EQ(v, 0);
  const float tiny[3] = {1e-7f, -4e-6f, 0};  // absmax below eps: the clamped scale, values round down
  quantize_activations(xq, &s, tiny, 1, 3);
  EXPECT_EQ(s, 127.0f / 1e-5f);
  EXPECT_EQ(xq[0], 1);  // 1e-7 · 1.27e7 = 1.27
  EXPECT_EQ(xq[1], -51);  // −4e-6 · 1.27e7 = −50.8
  const float huge[3] = {3e38f, -3e38f, 1e30f};
  quantize_activations(xq, &s, huge, 1, 3);
  EXPECT_EQ(xq[0], 127);
  EXPECT_EQ(xq[1], -127);
  EXPECT_EQ(xq[2], 0);
}

TEST(QuantizeActivations, NonFiniteIsAnErrorNamingTheColumn) {
  for (KernelTier tier : test::supported_tiers()) {
    Context ctx;
    ctx.kernels = tier;
    for (float bad : {kNaN, kInf, -kInf}) {
      std::vector<float> x(40, 1.0f);
      x[20 + 17] = bad;  // as (1, 40): column 57 is wrong, it is column 37; as (2, 20): row 1, column 17
      std::vector<int8_t> xq(40);
      float s[2];
      try {
        quantize_activations(ctx, xq.data(), s, x.data(), 1, 40);
        FAIL() << kernel_tier_name(tier);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("row 0 column 37"), std::string::npos) << e.what();
      }
      try {
        quantize_activations(ctx, xq.data(), s, x.data(), 2, 20);
        FAIL() << kernel_tier_name(tier);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("row 1 column 17"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(QuantizeActivations, EveryTierEqualsReferenceBitForBit) {
  Rng rng(5);
  for (KernelTier tier : test::supported_tiers()) {
    Context ctx;
    ctx.kernels = tier;
    for (int I : test::kOddSizes) {
      const int64_t N = 3;
      auto x = test::random_normal(rng, N * I, 3.0f);
      if (I > 4) x[3] = 1.5f * 127.0f / 64.0f;  // lands near a tie
      std::vector<int8_t> want(x.size()), got(x.size(), 99);
      std::vector<float> s_want(N), s_got(N);
      test::poison(std::span<float>(s_got));
      ref::quantize_activations(want.data(), s_want.data(), x.data(), N, I);
      quantize_activations(ctx, got.data(), s_got.data(), x.data(), N, I);
      ASSERT_EQ(got, want) << kernel_tier_name(tier) << " I=" << I;
      for (int64_t n = 0; n < N; ++n) ASSERT_EQ(s_got[n], s_want[n]);
    }
  }
}

TEST(DequantizeActivations, TrueDivision) {
  const int8_t xq[2] = {64, -127};
  const float s = 63.5f;
  float x[2];
  dequantize_activations(x, xq, &s, 1, 2);
  EXPECT_EQ(x[0], 64.0f / 63.5f);
  EXPECT_EQ(x[1], -127.0f / 63.5f);
}

}  // namespace
}  // namespace tritter
