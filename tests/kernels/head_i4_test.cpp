// The 4-bit LM head (kernels/head.h): its quantizer's per-weight bound, the logit error bound against the f32
// head, the int32 range at the largest hidden size, and its errors. Every tier is run; the tiers' bits against the
// reference are the op harness's (backend_ops_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/head.h"
#include "kernels/test_util_kernels.h"

namespace tritter {
namespace {

constexpr double kU = 0x1p-24;  // float's unit roundoff

// Rows of several kinds: Gaussian with a spread per group from 1/16 to 16 (so the multipliers cover their range),
// one row with a single outlier, an all-zero row, a row with an all-zero group.
std::vector<float> varied_head(Rng& rng, int64_t V, int64_t D) {
  std::vector<float> w(static_cast<size_t>(V * D));
  for (int64_t v = 0; v < V; ++v) {
    for (int64_t g = 0; g * kHeadI4Group < D; ++g) {
      const float spread = std::exp2(-4.0f + 8.0f * rng.uniform());
      for (int64_t j = g * kHeadI4Group; j < std::min(D, (g + 1) * kHeadI4Group); ++j) {
        w[v * D + j] = spread * test::random_normal(rng, 1)[0];
      }
    }
  }
  if (V > 3) {
    for (int64_t d = 0; d < D; ++d) w[1 * D + d] = 1e-3f * w[1 * D + d];
    w[1 * D + D / 2] = 40.0f;                                          // one outlier
    for (int64_t d = 0; d < D; ++d) w[2 * D + d] = 0.0f;               // all zero
    for (int64_t d = 0; d < std::min<int64_t>(D, 32); ++d) w[3 * D + d] = 0.0f;  // a zero group
  }
  return w;
}

struct I4Head {
  std::vector<uint8_t> q4, k;
  std::vector<float> r;
  HeadWeights view() const {
    HeadWeights hw;
    hw.format = HeadFormat::I4;
    hw.q4 = q4.data();
    hw.mult = k.data();
    hw.row_scale = r.data();
    return hw;
  }
};

// The level q ∈ [−7, 7] of row v, column i, read from its nibble.
int level_of(const I4Head& h, int64_t v, int64_t i, int64_t D) {
  const uint8_t b = h.q4[size_t(v * head_i4_row_bytes(D) + 16 * (i / kHeadI4Group) + (i % 16))];
  return (i % kHeadI4Group < 16 ? b & 15 : b >> 4) - 8;
}

I4Head quantize(const std::vector<float>& w, int64_t V, int64_t D) {
  I4Head h{std::vector<uint8_t>(static_cast<size_t>(V * head_i4_row_bytes(D)), 0),
           std::vector<uint8_t>(static_cast<size_t>(V * head_i4_groups(D)), 0), std::vector<float>(V, 0.0f)};
  head_i4_quantize_rows(h.q4.data(), h.k.data(), h.r.data(), w.data(), V, D, "test head");
  return h;
}

const std::vector<int64_t> kDims = {1, 16, 17, 31, 32, 33, 100, 256, 650, 2560};

TEST(HeadI4, QuantizerKeepsEveryWeightWithinHalfItsGroupStep) {
  Rng rng(7);
  for (int64_t D : kDims) {
    SCOPED_TRACE("D " + std::to_string(D));
    const int64_t V = 9, G = head_i4_groups(D);
    const auto w = varied_head(rng, V, D);
    const I4Head h = quantize(w, V, D);
    const HeadWeights hw = h.view();
    std::vector<float> values(static_cast<size_t>(D));
    for (int64_t v = 0; v < V; ++v) {
      head_row_values(hw, v, D, values.data());
      int top_k = 0;
      for (int64_t g = 0; g < G; ++g) {
        const int k = h.k[size_t(v * G + g)];
        ASSERT_GE(k, 1);
        top_k = std::max(top_k, k);
        const double step = double(k) * h.r[size_t(v)];  // s_g, exact
        for (int64_t j = g * kHeadI4Group; j < std::min(D, (g + 1) * kHeadI4Group); ++j) {
          const int q = level_of(h, v, j, D);
          ASSERT_LE(std::abs(q), 7) << "row " << v << " column " << j;
          // |w − q·s_g| ≤ (s_g/2)(1 + 32u): the nearest level, up to the rounding of w / fl(k·r)
          ASSERT_LE(std::fabs(q * step - w[size_t(v * D + j)]), step / 2 * (1 + 32 * kU)) << "row " << v << " column " << j;
          ASSERT_NEAR(values[size_t(j)], q * step, 2 * kU * std::fabs(q * step)) << "head_row_values, column " << j;
        }
      }
// The padding past D holds level 0 (nibble 8) in both halves of the last group.
      const uint8_t* last = h.q4.data() + v * head_i4_row_bytes(D) + 16 * (G - 1);
      for (int64_t j = D - (G - 1) * kHeadI4Group; j < kHeadI4Group; ++j) {
        ASSERT_EQ(j < 16 ? last[j] & 15 : last[j - 16] >> 4, 8) << "row " << v << " padding column " << j;
      }
      if (std::all_of(w.begin() + v * D, w.begin() + (v + 1) * D, [](float x) { return x == 0.0f; })) {
        EXPECT_EQ(h.r[size_t(v)], 1.0f) << "row " << v << " (all zero)";
        EXPECT_EQ(top_k, 1);
      } else {
        EXPECT_EQ(top_k, 255) << "row " << v << ": its largest group sets the row's step";
      }
    }
  }
}

// |ẑ − z| ≤ Σ_i (s_g(i)/2)(1 + 32u)|h_i| + ((0.5 + 128u)/hs) Σ_i |ŵ_i| + 4u|ẑ| against the exact f32 head z = Σ w_i h_i.
TEST(HeadI4, LogitsStayWithinTheDerivedBound) {
  Rng rng(11);
  for (int64_t D : kDims) {
    SCOPED_TRACE("D " + std::to_string(D));
    const int64_t V = 41, N = 3, G = head_i4_groups(D);
    const auto w = varied_head(rng, V, D);
    const I4Head head = quantize(w, V, D);
    auto h = test::random_normal(rng, N * D);
    h[size_t(D - 1)] = 9.0f;  // token 0: one large activation (coarse activation steps)
    for (KernelTier tier : test::supported_tiers()) {
      Context ctx;
      ctx.kernels = tier;
      for (int threads : {1, 2}) {
        ctx.threads = threads;
        std::vector<float> z(static_cast<size_t>(N * V)), hs(N);
        std::vector<int8_t> hq(static_cast<size_t>(N * D));
        lm_head_forward(ctx, z.data(), h.data(), N, head.view(), V, D, hq.data(), hs.data());
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t v = 0; v < V; ++v) {
            double exact = 0, weights_term = 0, abs_wq = 0;
            for (int64_t i = 0; i < D; ++i) {
              exact += double(w[size_t(v * D + i)]) * h[size_t(n * D + i)];
              const double step = double(head.k[size_t(v * G + i / kHeadI4Group)]) * head.r[size_t(v)];
              weights_term += step / 2 * std::fabs(h[size_t(n * D + i)]);
              abs_wq += std::abs(level_of(head, v, i, D)) * step;
            }
            const double got = z[size_t(n * V + v)];
            const double bound = weights_term * (1 + 32 * kU) + (0.5 + 128 * kU) / hs[size_t(n)] * abs_wq +
                                 4 * kU * std::fabs(got);
            ASSERT_LE(std::fabs(got - exact), bound)
                << "tier " << kernel_tier_name(tier) << " threads " << threads << " token " << n << " row " << v;
          }
        }
      }
    }
  }
}

// At the largest hidden size the contract allows, the extreme sum (every level 7 against activation 127, every
// multiplier 255) is exact in every tier: A = 7 · 127 · 255 · D.
TEST(HeadI4, LargestHiddenSizeSumsExactly) {
  const int64_t D = kHeadI4MaxGroups * kHeadI4Group, V = 5, G = head_i4_groups(D);
  const std::vector<float> h(static_cast<size_t>(D), 1.0f);
  I4Head head{std::vector<uint8_t>(static_cast<size_t>(V * head_i4_row_bytes(D)), 0xFF),  // nibble 15: level 7
              std::vector<uint8_t>(static_cast<size_t>(V * G), 255), std::vector<float>(V, 1.0f)};
  const int64_t A = 7LL * 127 * 255 * D;
  ASSERT_LT(A, int64_t{1} << 31);
  for (KernelTier tier : test::supported_tiers()) {
    Context ctx;
    ctx.kernels = tier;
    std::vector<float> z(V), hs(1);
    std::vector<int8_t> hq(static_cast<size_t>(D));
    lm_head_forward(ctx, z.data(), h.data(), 1, head.view(), V, D, hq.data(), hs.data());
    for (int64_t v = 0; v < V; ++v) {
      EXPECT_EQ(z[size_t(v)], static_cast<float>(static_cast<int32_t>(A)) * 1.0f / hs[0]) << kernel_tier_name(tier);
    }
  }
  Context ctx;
  std::vector<float> z(V), hs(1), wide(static_cast<size_t>(D + 1), 1.0f);
  std::vector<int8_t> hq(static_cast<size_t>(D + 1));
  EXPECT_THROW(lm_head_forward(ctx, z.data(), wide.data(), 1, head.view(), V, D + 1, hq.data(), hs.data()), Error);
  std::vector<uint8_t> q(static_cast<size_t>(head_i4_row_bytes(D + 1))), k(static_cast<size_t>(G + 1));
  float r = 0;
  try {
    head_i4_quantize_rows(q.data(), k.data(), &r, wide.data(), 1, D + 1, "big head");
    FAIL() << "no error for hidden_size " << D + 1;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("big head: a 4-bit head needs hidden_size ≤ 9472, found 9473"),
              std::string::npos)
        << e.what();
  }
}

TEST(HeadI4, NonFiniteWeightIsNamed) {
  const int64_t V = 4, D = 40;
  std::vector<float> w(static_cast<size_t>(V * D), 0.5f);
  w[size_t(2 * D + 5)] = NAN;
  std::vector<uint8_t> q(static_cast<size_t>(V * head_i4_row_bytes(D))), k(static_cast<size_t>(V * head_i4_groups(D)));
  std::vector<float> r(V);
  try {
    head_i4_quantize_rows(q.data(), k.data(), r.data(), w.data(), V, D, "LM head");
    FAIL() << "no error for a NaN weight";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LM head row 2 column 5: found nan, expected a finite value"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tritter
