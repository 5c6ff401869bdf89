// The LoRA delta kernel (kernels/lora.h) against kernels/ref over odd sizes, 1 and 3 threads, with a tolerance
// derived from the sums, plus a hand-computed case and the Reference tier running the reference bit for bit.
#include "kernels/lora.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>

#include "kernels/ref/ref.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter {
namespace {

float max_abs_f(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

TEST(LoraDelta, HandComputed) {
  // x (1, 2) = [1, 2]; A (2, 2) = [[1, 0], [1, 1]]; x Aᵀ = [1, 3]; Bt (2, 3) = [[1, 2, 3], [0, 1, 0]].
  // y += 0.5·[1·[1,2,3] + 3·[0,1,0]] = 0.5·[1, 5, 3] onto y = [10, 20, 30].
  const float x[2] = {1, 2}, A[4] = {1, 0, 1, 1}, Bt[6] = {1, 2, 3, 0, 1, 0};
  for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
    Context ctx;
    ctx.kernels = tier;
    float y[3] = {10, 20, 30};
    lora_delta_forward(ctx, y, x, A, Bt, 1, 2, 2, 3, 0.5f);
    EXPECT_EQ(y[0], 10.5f);
    EXPECT_EQ(y[1], 22.5f);
    EXPECT_EQ(y[2], 31.5f);
  }
}

// Each h_j = s·(A_j · x_t) is a length-I float sum: |ĥ_j − h_j| ≤ (I + 1)·ε·|s|·I·max|A|·max|x|. y_t,o then
// takes r products and r additions onto y0: ≤ 2r·ε·(|y0| + r·max|h|·max|B|) more, plus r·max|B| times the h
// error. Together, with the reference's own single rounding of y:
//   |y − y_ref| ≤ (I + 2r + 3)·ε·(max|y0| + |s|·r·I·max|A|·max|x|·max|B|).
TEST(LoraDelta, MatchesReferenceOverOddSizes) {
  Rng rng(5);
  const float eps = std::numeric_limits<float>::epsilon();
  for (int threads : {1, 3}) {
    for (int64_t r : {1, 3, 16}) {
      for (int I : test::kOddSizes) {
        for (int O : {1, 7, 17, 65}) {
          const int64_t T = threads == 1 ? 1 : 5;
          const float s = 0.75f;
          const auto x = test::random_normal(rng, T * I);
          const auto A = test::random_normal(rng, r * I, 0.3f);
          const auto Bt = test::random_normal(rng, r * O, 0.2f);
          const auto y0 = test::random_normal(rng, T * O);
          std::vector<float> got = y0, want = y0;
          Context ctx;
          ctx.threads = threads;
          lora_delta_forward(ctx, got.data(), x.data(), A.data(), Bt.data(), T, r, I, O, s);
          ref::lora_delta_forward(want.data(), x.data(), A.data(), Bt.data(), T, r, I, O, s);
          const double tol = (I + 2.0 * r + 3) * eps *
                             (max_abs_f(y0) + s * static_cast<double>(r) * I * max_abs_f(A) * max_abs_f(x) * max_abs_f(Bt));
          double worst = 0;
          size_t at = 0;
          for (size_t k = 0; k < got.size(); ++k) {
            const double e = std::fabs(static_cast<double>(got[k]) - want[k]);
            if (!(e <= worst)) {
              worst = e;
              at = k;
            }
          }
          ASSERT_LE(worst, tol) << "threads " << threads << " r " << r << " I " << I << " O " << O << " worst at " << at
                                << ": got " << got[at] << " want " << want[at];
        }
      }
    }
  }
}

TEST(LoraDelta, ReferenceTierRunsTheReference) {
  Rng rng(9);
  const int64_t T = 3, r = 4, I = 33, O = 17;
  const auto x = test::random_normal(rng, T * I);
  const auto A = test::random_normal(rng, r * I);
  const auto Bt = test::random_normal(rng, r * O);
  std::vector<float> got(static_cast<size_t>(T * O), 1.0f), want = got;
  Context ctx;
  ctx.kernels = KernelTier::Reference;
  lora_delta_forward(ctx, got.data(), x.data(), A.data(), Bt.data(), T, r, I, O, 2.0f);
  ref::lora_delta_forward(want.data(), x.data(), A.data(), Bt.data(), T, r, I, O, 2.0f);
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace tritter
