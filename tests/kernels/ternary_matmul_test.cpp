// Ternary matmuls on every tier this CPU supports against kernels/ref: int32 sums and the float epilogue bit for
// bit, the transposed product within a derived tolerance; odd shapes, NaN-poisoned outputs, 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>

#include "core/error.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"
#include "kernels/ternary_matmul.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using test::make_packed;
using test::supported_tiers;

struct Shape {
  int64_t O, I, N;
};

std::vector<Shape> odd_shapes() {
  std::vector<Shape> shapes;
  for (int64_t O : {1, 3, 17, 65}) {
    for (int64_t I : {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 257}) {
      for (int64_t N : {1, 2, 5, 9}) shapes.push_back({O, I, N});
    }
  }
  shapes.push_back({257, 1031, 3});   // large enough to run on 2 threads
  shapes.push_back({40, 4099, 1});    // long rows
  shapes.push_back({33, 300, 37});    // several token tiles
  return shapes;
}

TEST(TernaryMatmul, Int32AndFloatEqualReferenceOnEveryTier) {
  Rng rng(11);
  for (const Shape& s : odd_shapes()) {
   const auto m = make_packed(rng, s.O, s.I);
   for (TernaryLayout layout : test::kLayouts) {
    const TernaryMatrix w = m.view(0.73f, layout);
    const auto xq = test::random_int8(rng, s.N * s.I);
    std::vector<float> x_scale(static_cast<size_t>(s.N));
    for (auto& v : x_scale) v = 0.5f + rng.uniform() * 100.0f;
    std::vector<int32_t> want(static_cast<size_t>(s.N * s.O));
    std::vector<float> want_y(want.size());
    ref::ternary_matmul_i32(want.data(), xq.data(), w, s.N);
    ref::ternary_matmul(want_y.data(), xq.data(), x_scale.data(), w, s.N);
    // The reference itself against the plain int8 matrix.
    for (int64_t n = 0; n < s.N; ++n) {
      for (int64_t o = 0; o < s.O; ++o) {
        int32_t sum = 0;
        for (int64_t i = 0; i < s.I; ++i) sum += m.q[o * s.I + i] * xq[n * s.I + i];
        ASSERT_EQ(want[n * s.O + o], sum);
      }
    }
    for (KernelTier tier : supported_tiers()) {
      for (int threads : {1, 2}) {
        Context ctx;
        ctx.kernels = tier;
        ctx.threads = threads;
        std::vector<int32_t> got(want.size(), std::numeric_limits<int32_t>::min());
        ternary_matmul_i32(ctx, got.data(), xq.data(), w, s.N);
        for (size_t k = 0; k < got.size(); ++k) {
          ASSERT_EQ(got[k], want[k]) << kernel_tier_name(tier) << " " << ternary_layout_name(layout) << " O=" << s.O << " I=" << s.I << " N=" << s.N
                                     << " threads=" << threads << " at n=" << k / s.O << " o=" << k % s.O;
        }
        std::vector<float> y(want.size());
        test::poison(std::span<float>(y));
        ternary_matmul(ctx, y.data(), xq.data(), x_scale.data(), w, s.N);
        for (size_t k = 0; k < y.size(); ++k) {
          ASSERT_EQ(std::bit_cast<uint32_t>(y[k]), std::bit_cast<uint32_t>(want_y[k]))
              << kernel_tier_name(tier) << " " << ternary_layout_name(layout) << " O=" << s.O << " I=" << s.I
              << " N=" << s.N << " y=" << y[k] << " want " << want_y[k];
        }
      }
    }
   }
  }
}

// Batched decode sizes and the int16 flush boundaries of the SIMD bodies (the AVX2 GEMV widens every 8 tiles,
// its GEMM every 15; token groups of up to 8 are split evenly), against the reference, 1 and 2 threads.
TEST(TernaryMatmul, ManyTokensAndFlushBoundariesEqualReference) {
  Rng rng(12);
  for (int64_t O : {16, 33}) {
    for (int64_t I : {112, 128, 129, 240, 241, 256, 1041}) {
      const auto m = make_packed(rng, O, I);
      for (TernaryLayout layout : test::kLayouts) {
      const TernaryMatrix w = m.view(0.31f, layout);
      for (int64_t N : {1, 2, 3, 4, 7, 8, 9, 16, 17, 63, 64, 65, 130}) {
        const auto xq = test::random_int8(rng, N * I);
        std::vector<float> x_scale(static_cast<size_t>(N));
        for (auto& v : x_scale) v = 0.25f + rng.uniform() * 50.0f;
        std::vector<int32_t> want(static_cast<size_t>(N * O));
        std::vector<float> want_y(want.size());
        ref::ternary_matmul_i32(want.data(), xq.data(), w, N);
        ref::ternary_matmul(want_y.data(), xq.data(), x_scale.data(), w, N);
        for (KernelTier tier : supported_tiers()) {
          for (int threads : {1, 2}) {
            Context ctx;
            ctx.kernels = tier;
            ctx.threads = threads;
            std::vector<int32_t> got(want.size(), std::numeric_limits<int32_t>::min());
            ternary_matmul_i32(ctx, got.data(), xq.data(), w, N);
            ASSERT_EQ(got, want) << kernel_tier_name(tier) << " " << ternary_layout_name(layout) << " O=" << O
                                 << " I=" << I << " N=" << N << " threads=" << threads;
            std::vector<float> y(want.size());
            test::poison(std::span<float>(y));
            ternary_matmul(ctx, y.data(), xq.data(), x_scale.data(), w, N);
            for (size_t k = 0; k < y.size(); ++k) {
              ASSERT_EQ(std::bit_cast<uint32_t>(y[k]), std::bit_cast<uint32_t>(want_y[k]))
                  << kernel_tier_name(tier) << " " << ternary_layout_name(layout) << " O=" << O << " I=" << I
                  << " N=" << N << " at " << k;
            }
          }
        }
      }
      }
    }
  }
}

// A matrix of 1 MiB and more takes the prefetching paths (GEMV and the first pass of a GEMM over each band), in
// both layouts.
TEST(TernaryMatmul, DramResidentMatrixEqualsReference) {
  Rng rng(14);
  const int64_t O = 1041, I = 5150;  // T20: past one fold of 5120 columns
  ASSERT_GE(ternary_matrix_bytes(O, I), size_t{1} << 20);
  const auto m = make_packed(rng, O, I);
  ASSERT_GE(ternary_matrix_bytes(O, I, TernaryLayout::T20), size_t{1} << 20);
  for (TernaryLayout layout : test::kLayouts) {
  const TernaryMatrix w = m.view(0.5f, layout);
  for (int64_t N : {1, 2, 3, 4, 9}) {
    const auto xq = test::random_int8(rng, N * I);
    std::vector<int32_t> want(static_cast<size_t>(N * O));
    ref::ternary_matmul_i32(want.data(), xq.data(), w, N);
    for (KernelTier tier : supported_tiers()) {
      Context ctx;
      ctx.kernels = tier;
      ctx.threads = 2;
      std::vector<int32_t> got(want.size(), std::numeric_limits<int32_t>::min());
      ternary_matmul_i32(ctx, got.data(), xq.data(), w, N);
      ASSERT_EQ(got, want) << kernel_tier_name(tier) << " " << ternary_layout_name(layout) << " N=" << N;
    }
  }
  }
}

// The largest int16 partial sums, for every token count: all +1 weights (one row all −1) against −128 and +127.
TEST(TernaryMatmul, ExtremeActivationsAtEveryTokenCount) {
  const int64_t O = 17, I = 2056;
  std::vector<int8_t> q(static_cast<size_t>(O * I), 1);
  for (int64_t i = 0; i < I; ++i) q[5 * I + i] = -1;
  std::vector<uint8_t> bytes(ternary_matrix_bytes(O, I));
  ternary_matrix_pack(bytes.data(), q.data(), O, I);
  std::vector<uint8_t> bytes20(ternary_matrix_bytes(O, I, TernaryLayout::T20));
  ternary_matrix_to_t20(bytes20.data(), bytes.data(), O, I);
  for (const TernaryMatrix w : {TernaryMatrix{bytes.data(), O, I, 1.0f},
                                TernaryMatrix{bytes20.data(), O, I, 1.0f, TernaryLayout::T20}}) {
  for (int64_t N : {1, 2, 3, 4, 8, 9, 16, 24}) {
    std::vector<int8_t> xq(static_cast<size_t>(N * I));
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < I; ++i) xq[n * I + i] = n % 2 == 0 ? -128 : 127;
    }
    for (KernelTier tier : supported_tiers()) {
      Context ctx;
      ctx.kernels = tier;
      std::vector<int32_t> acc(static_cast<size_t>(N * O), 0);
      ternary_matmul_i32(ctx, acc.data(), xq.data(), w, N);
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t o = 0; o < O; ++o) {
          const int32_t sign = o == 5 ? -1 : 1;
          ASSERT_EQ(acc[n * O + o], sign * (n % 2 == 0 ? -128 : 127) * I)
              << kernel_tier_name(tier) << " " << ternary_layout_name(w.layout) << " N=" << N << " n=" << n
              << " o=" << o;
        }
      }
    }
  }
  }
}

TEST(TernaryMatmul, ExtremeActivationsDoNotOverflow) {
  // All +1 weights against all −128 (and all +127) activations: the largest partial sums any tier can see.
  const int64_t O = 19, I = 8195, N = 2;
  std::vector<int8_t> q(static_cast<size_t>(O * I), 1);
  for (int64_t i = 0; i < I; ++i) q[3 * I + i] = -1;
  std::vector<uint8_t> bytes(ternary_matrix_bytes(O, I));
  ternary_matrix_pack(bytes.data(), q.data(), O, I);
  std::vector<uint8_t> bytes20(ternary_matrix_bytes(O, I, TernaryLayout::T20));
  ternary_matrix_to_t20(bytes20.data(), bytes.data(), O, I);
  std::vector<int8_t> xq(static_cast<size_t>(N * I));
  for (int64_t i = 0; i < I; ++i) {
    xq[i] = -128;
    xq[I + i] = 127;
  }
  for (const TernaryMatrix w : {TernaryMatrix{bytes.data(), O, I, 1.0f},
                                TernaryMatrix{bytes20.data(), O, I, 1.0f, TernaryLayout::T20}}) {
  for (KernelTier tier : supported_tiers()) {
    Context ctx;
    ctx.kernels = tier;
    std::vector<int32_t> acc(static_cast<size_t>(N * O), 0);
    ternary_matmul_i32(ctx, acc.data(), xq.data(), w, N);  // GEMM path
    std::vector<int32_t> gemv(static_cast<size_t>(N * O), 0);
    for (int64_t n = 0; n < N; ++n) ternary_matmul_i32(ctx, gemv.data() + n * O, xq.data() + n * I, w, 1);
    for (int64_t o = 0; o < O; ++o) {
      const int32_t sign = o == 3 ? -1 : 1;
      ASSERT_EQ(acc[o], sign * -128 * I) << kernel_tier_name(tier) << " o=" << o;
      ASSERT_EQ(acc[O + o], sign * 127 * I) << kernel_tier_name(tier) << " o=" << o;
      ASSERT_EQ(gemv[o], sign * -128 * I) << kernel_tier_name(tier) << " GEMV o=" << o;
      ASSERT_EQ(gemv[O + o], sign * 127 * I) << kernel_tier_name(tier) << " GEMV o=" << o;
    }
  }
  }
}

// A T20 matrix has no backward kernel: a clear error, not T16 code reading T20 bytes.
TEST(TernaryMatmulT, RefusesT20) {
  Rng rng(15);
  const auto m = make_packed(rng, 16, 20);
  std::vector<float> dy(16, 1.0f), dx(20);
  Context ctx;
  test::expect_error([&] { ternary_matmul_t(ctx, dx.data(), dy.data(), m.view(1.0f, TernaryLayout::T20), 1); },
                     {"ternary_matmul_t", "found layout t20", "expected t16"});
}

TEST(TernaryMatmulT, MatchesReferenceWithinDerivedTolerance) {
  // dx[n,i] = Σ_o dy[n,o]·w[o,i] / σ. Float sums of O terms in any order: |error| ≤ O·ε·Σ_o|dy[n,o]| / σ
  // (first-order bound on recursive summation) plus the final division's half ulp; the reference sums in double.
  Rng rng(12);
  const float eps = std::numeric_limits<float>::epsilon();
  std::vector<Shape> shapes;
  for (int64_t O : {1, 3, 17, 65}) {
    for (int64_t I : {1, 2, 7, 16, 17, 33, 129, 257}) shapes.push_back({O, I, 3});
  }
  shapes.push_back({300, 517, 40});
  for (const Shape& s : shapes) {
    const auto m = make_packed(rng, s.O, s.I);
    const TernaryMatrix w = m.view(1.7f);
    const auto dy = test::random_normal(rng, s.N * s.O);
    std::vector<float> want(static_cast<size_t>(s.N * s.I));
    ref::ternary_matmul_t(want.data(), dy.data(), w, s.N);
    for (KernelTier tier : supported_tiers()) {
      for (int threads : {1, 2}) {
        Context ctx;
        ctx.kernels = tier;
        ctx.threads = threads;
        std::vector<float> dx(want.size());
        test::poison(std::span<float>(dx));
        ternary_matmul_t(ctx, dx.data(), dy.data(), w, s.N);
        for (int64_t n = 0; n < s.N; ++n) {
          double l1 = 0.0;
          for (int64_t o = 0; o < s.O; ++o) l1 += std::fabs(dy[n * s.O + o]);
          const double tol = (static_cast<double>(s.O) * eps * l1 + 1e-30) / w.sigma + eps * std::fabs(want[n * s.I]);
          for (int64_t i = 0; i < s.I; ++i) {
            const double err = std::fabs(static_cast<double>(dx[n * s.I + i]) - want[n * s.I + i]);
            ASSERT_LE(err, tol + eps * std::fabs(want[n * s.I + i])) << kernel_tier_name(tier) << " O=" << s.O
                << " I=" << s.I << " n=" << n << " i=" << i << " got " << dx[n * s.I + i] << " want "
                << want[n * s.I + i];
          }
        }
      }
    }
  }
}

TEST(TernaryMatmul, ForcedTierMissingIsAClearError) {
  Context ctx;
  ctx.cpu = CpuFeatures{};  // a CPU with nothing
  ctx.kernels = KernelTier::Avx512Vnni;
  try {
    ternary_kernel_tier(ctx);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lacks AVX-512 VNNI"), std::string::npos) << e.what();
  }
  ctx.kernels = KernelTier::Avx2;
  EXPECT_THROW(ternary_kernel_tier(ctx), Error);
  ctx.kernels = KernelTier::Auto;
  EXPECT_EQ(ternary_kernel_tier(ctx), KernelTier::Scalar);
}

TEST(TernaryMatmul, RejectsBadShapes) {
  Context ctx;
  const uint8_t byte[64] = {};
  const TernaryMatrix w{byte, 0, 4, 1.0f};
  int32_t acc = 0;
  int8_t x = 0;
  EXPECT_THROW(ternary_matmul_i32(ctx, &acc, &x, w, 1), Error);
}

}  // namespace
}  // namespace tritter

namespace tritter {
namespace {

TEST(BenchKernelsCli, RunsAndReportsEveryPart) {
  const auto r = test::run_cli("bench kernels --quick --min-time 0.01 --dram-mib 16 --stream-mib 4 --layers-mib 8 "
                              "--threads-list 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* part : {"limits, 1 thread", "2560x2560", "DRAM-resident GEMV", "scalar", "decode layers",
                           "700M-shape"}) {
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  }
  const auto bad = test::run_cli("bench kernels --threads-list 0");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--threads-list"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace tritter

namespace tritter {
namespace {

TEST(TernaryMatmul, BitLinearEqualsDequantizedFloatProduct) {
  // training-spec §4.2: y = x̃ W̃ᵀ ≡ (Xq Wqᵀ)/(s_n·σ). The integer form is exact up to its final rounding; the
  // dequantized double product differs only by the roundings of x̃ = q/s and W̃ = q/σ: ≤ 4ε·Σ|x̃||W̃| per output.
  Rng rng(21);
  const int64_t N = 3, O = 37, I = 259;
  const auto x = test::random_normal(rng, N * I);
  const auto wf = test::random_normal(rng, O * I, 0.02f);
  std::vector<int8_t> wq(static_cast<size_t>(O * I)), xq(static_cast<size_t>(N * I));
  const float sigma = ternary_quantize_absmean(wq.data(), wf.data(), O * I);
  std::vector<float> s(N);
  quantize_activations(xq.data(), s.data(), x.data(), N, I);
  std::vector<uint8_t> bytes(ternary_matrix_bytes(O, I));
  ternary_matrix_pack(bytes.data(), wq.data(), O, I);
  const TernaryMatrix w{bytes.data(), O, I, sigma};
  for (KernelTier tier : {KernelTier::Reference, KernelTier::Auto}) {
    Context ctx;
    ctx.kernels = tier;
    std::vector<float> y(static_cast<size_t>(N * O));
    test::poison(std::span<float>(y));
    ternary_matmul(ctx, y.data(), xq.data(), s.data(), w, N);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t o = 0; o < O; ++o) {
        double want = 0, mag = 0;
        for (int64_t i = 0; i < I; ++i) {
          const double xt = static_cast<float>(xq[n * I + i]) / s[n];
          const double wt = static_cast<float>(wq[o * I + i]) / sigma;
          want += xt * wt;
          mag += std::fabs(xt * wt);
        }
        const double eps = std::numeric_limits<float>::epsilon();
        ASSERT_NEAR(y[n * O + o], want, 4 * eps * mag + eps * std::fabs(want)) << kernel_tier_name(tier);
      }
    }
  }
}

}  // namespace
}  // namespace tritter
