// Float ops on every tier against kernels/ref, with tolerances written as formulas (DESIGN.md, Tests): RMSNorm,
// fused RMSNorm + quantization (bit for bit equal to the unfused pair on the same tier), RoPE, squared ReLU,
// gated squared ReLU, softmax; hand-computed cases for RoPE tables and relu2_glu's squared factor.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>

#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter {
namespace {

const float kFloatEps = std::numeric_limits<float>::epsilon();

// A Context forcing one tier (Context is not movable, so this wraps one).
struct TierCtx {
  explicit TierCtx(KernelTier t) { ctx.kernels = t; }
  operator const Context&() const { return ctx; }
  Context ctx;
};
TierCtx tier_ctx(KernelTier t) { return TierCtx(t); }

TEST(Rmsnorm, EveryTierWithinSumOfSquaresBound) {
  // The sum of n squares in float has relative error ≤ n·ε; the factor r = 1/sqrt(·) then ≤ (n/2 + 2)·ε, and the
  // two products y = x·r·g add 2 roundings: |y − y_ref| ≤ (n/2 + 4)·ε·|y_ref|.
  Rng rng(3);
  for (KernelTier tier : test::supported_tiers()) {
    for (int n : test::kOddSizes) {
      const int64_t N = 3;
      const auto x = test::random_normal(rng, N * n, 2.0f);
      const auto g = test::random_normal(rng, n);
      std::vector<float> want(x.size()), got(x.size());
      test::poison(std::span<float>(got));
      ref::rmsnorm(want.data(), x.data(), g.data(), N, n, 1e-5f);
      rmsnorm(tier_ctx(tier), got.data(), x.data(), g.data(), N, n, 1e-5f);
      for (size_t k = 0; k < got.size(); ++k) {
        ASSERT_LE(std::fabs(got[k] - want[k]), (n / 2.0 + 4) * kFloatEps * std::fabs(want[k]))
            << kernel_tier_name(tier) << " n=" << n << " k=" << k << " got " << got[k] << " want " << want[k];
      }
      // In place.
      std::vector<float> inplace = x;
      rmsnorm(tier_ctx(tier), inplace.data(), inplace.data(), g.data(), N, n, 1e-5f);
      for (size_t k = 0; k < got.size(); ++k) ASSERT_EQ(inplace[k], got[k]);
    }
  }
  // eps inside the root: a zero row stays zero, a constant row c gives c/sqrt(c² + eps).
  const float x[2] = {1e-3f, 1e-3f}, g[2] = {1, 1};
  float y[2];
  ref::rmsnorm(y, x, g, 1, 2, 1e-5f);
  EXPECT_NEAR(y[0], 1e-3 / std::sqrt(1e-6 + 1e-5), 1e-6);
}

TEST(RmsnormQuantize, FusedEqualsUnfusedOnSameTierAndNearReference) {
  Rng rng(4);
  for (KernelTier tier : test::supported_tiers()) {
    for (int n : test::kOddSizes) {
      const int64_t N = 2;
      const auto x = test::random_normal(rng, N * n);
      const auto g = test::random_normal(rng, n);
      std::vector<float> y(x.size()), s1(N), s2(N), s_ref(N);
      std::vector<int8_t> q1(x.size()), q2(x.size(), 99), q_ref(x.size());
      const TierCtx ctx(tier);
      rmsnorm(ctx, y.data(), x.data(), g.data(), N, n, 1e-5f);
      quantize_activations(ctx, q1.data(), s1.data(), y.data(), N, n);
      rmsnorm_quantize(ctx, q2.data(), s2.data(), x.data(), g.data(), N, n, 1e-5f);
      ASSERT_EQ(q1, q2) << kernel_tier_name(tier) << " n=" << n;
      ASSERT_EQ(s1, s2);
      // Against the reference the float row differs by the RMSNorm bound, so a level may move by one at a tie.
      ref::rmsnorm_quantize(q_ref.data(), s_ref.data(), x.data(), g.data(), N, n, 1e-5f);
      for (size_t k = 0; k < q2.size(); ++k) ASSERT_LE(std::abs(q2[k] - q_ref[k]), 1);
    }
  }
}

TEST(Rope, TablesHandComputed) {
  // d = 4, θ = 100: inv = [1, 0.1]; t = pos0 + 0..1 with pos0 = 2 → φ = [2, 0.2], [3, 0.3].
  float c[4], s[4];
  rope_tables(c, s, 2, 4, 100.0, 2);
  EXPECT_EQ(c[0], static_cast<float>(std::cos(2.0)));
  EXPECT_EQ(s[1], static_cast<float>(std::sin(0.2)));
  EXPECT_EQ(c[2], static_cast<float>(std::cos(3.0)));
  EXPECT_EQ(s[3], static_cast<float>(std::sin(3.0 * 0.1)));
}

TEST(Rope, ApplyEveryTierAndRotateHalfPairing) {
  // One pair j=0 of d=2 rotated by 90°: (1, 0) → (cos − 0, 0 + sin) = (0, 1): j pairs with j + d/2.
  const float c90 = 0.0f, s90 = 1.0f;
  float u[2] = {1.0f, 0.0f};
  rope_apply(u, &c90, &s90, 1, 1, 2);
  EXPECT_EQ(u[0], 0.0f);
  EXPECT_EQ(u[1], 1.0f);
  // Each output is a·b ± c·d: two products and one sum, ≤ 2 ulp of (|a·b| + |c·d|) apart between tiers.
  Rng rng(6);
  for (KernelTier tier : test::supported_tiers()) {
    for (int d : {2, 4, 6, 16, 34, 64, 130}) {
      const int64_t T = 5, H = 3;
      std::vector<float> cs(T * d / 2), sn(T * d / 2);
      rope_tables(cs.data(), sn.data(), T, d, 10000.0, 7);
      const auto x = test::random_normal(rng, T * H * d);
      std::vector<float> want = x, got = x;
      ref::rope_apply(want.data(), cs.data(), sn.data(), T, H, d);
      rope_apply(tier_ctx(tier), got.data(), cs.data(), sn.data(), T, H, d);
      for (size_t k = 0; k < x.size(); ++k) {
        const int64_t j = static_cast<int64_t>(k % d), t = static_cast<int64_t>(k / (H * d));
        const int64_t jj = j % (d / 2), base = static_cast<int64_t>(k) - j;
        const double mag = std::fabs(x[base + jj]) + std::fabs(x[base + jj + d / 2]);
        (void)t;
        ASSERT_LE(std::fabs(got[k] - want[k]), 2 * kFloatEps * mag) << kernel_tier_name(tier) << " d=" << d;
      }
    }
  }
}

TEST(Relu2, EveryTierExact) {
  // One rounding per product, no reduction: every tier equals the reference exactly.
  Rng rng(8);
  for (KernelTier tier : test::supported_tiers()) {
    for (int n : test::kOddSizes) {
      const auto x = test::random_normal(rng, n), up = test::random_normal(rng, n);
      std::vector<float> want(n), got(n), want2(n), got2(n);
      test::poison(std::span<float>(got));
      test::poison(std::span<float>(got2));
      ref::relu2(want.data(), x.data(), n);
      relu2(tier_ctx(tier), got.data(), x.data(), n);
      ref::relu2_glu(want2.data(), x.data(), up.data(), n);
      relu2_glu(tier_ctx(tier), got2.data(), x.data(), up.data(), n);
      ASSERT_EQ(got, want) << kernel_tier_name(tier);
      ASSERT_EQ(got2, want2) << kernel_tier_name(tier);
    }
  }
  // §4.6: relu(gate)² · up — the gate is squared, not up.
  const float gate[3] = {2.0f, -1.0f, 3.0f}, up[3] = {5.0f, 7.0f, -1.0f};
  float y[3];
  relu2_glu(y, gate, up, 3);
  EXPECT_EQ(y[0], 20.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], -9.0f);
}

TEST(Softmax, EveryTierWithinBoundAndMasks) {
  // p_j = e_j / Σe: exp with ≤ 4 ulp relative error (Highway's Exp is ≤ 1–2 ulp), a float sum of n terms
  // (≤ n·ε relative) and one product: |p − p_ref| ≤ (n + 8)·ε·p_ref + 1e-38 (the flushed exp(< −87) tail).
  Rng rng(9);
  const float inf = std::numeric_limits<float>::infinity();
  for (KernelTier tier : test::supported_tiers()) {
    for (int n : test::kOddSizes) {
      const int64_t rows = 3;
      auto x = test::random_normal(rng, rows * n, 5.0f);
      if (n > 2) {
        x[n + 1] = -inf;  // a masked logit in row 1
      }
      std::vector<float> want = x, got = x;
      ref::softmax_rows(want.data(), rows, n);
      softmax_rows(tier_ctx(tier), got.data(), rows, n);
      for (size_t k = 0; k < x.size(); ++k) {
        ASSERT_LE(std::fabs(got[k] - want[k]), (n + 8) * kFloatEps * want[k] + 1e-38) << kernel_tier_name(tier)
            << " n=" << n << " k=" << k << " got " << got[k] << " want " << want[k];
      }
      if (n > 2) {
        ASSERT_EQ(got[n + 1], 0.0f);
      }
    }
  }
}

}  // namespace
}  // namespace tritter
