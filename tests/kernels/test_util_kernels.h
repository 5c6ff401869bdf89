// Helpers shared by the kernel tests: the SIMD tiers this CPU supports, random data makers and the gradient checks.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/context.h"
#include "core/rng.h"
#include "kernels/ternary_matmul.h"

namespace tritter::test {

// Every tier that runs here (Scalar always; AVX2 / AVX-512 VNNI when the CPU has them), plus Auto.
inline std::vector<KernelTier> supported_tiers() {
  std::vector<KernelTier> tiers;
  for (KernelTier t : {KernelTier::Auto, KernelTier::Scalar, KernelTier::Avx2, KernelTier::Avx512Vnni}) {
    Context ctx;
    ctx.kernels = t;
    try {
      ternary_kernel_tier(ctx);
      tiers.push_back(t);
    } catch (...) {
    }
  }
  return tiers;
}

inline std::vector<int8_t> random_ternary(Rng& rng, int64_t n) {
  std::vector<int8_t> q(static_cast<size_t>(n));
  for (auto& v : q) v = static_cast<int8_t>(static_cast<int>(rng.next_below(3)) - 1);
  return q;
}

inline std::vector<int8_t> random_int8(Rng& rng, int64_t n, int lo = -128, int hi = 127) {
  std::vector<int8_t> q(static_cast<size_t>(n));
  for (auto& v : q) v = static_cast<int8_t>(lo + static_cast<int>(rng.next_below(static_cast<uint32_t>(hi - lo + 1))));
  return q;
}

// n draws of scale·N(0, 1) from a generator seeded with `seed`.
inline std::vector<float> randn(int64_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

inline std::vector<float> random_normal(Rng& rng, int64_t n, float scale = 1.0f) {
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = rng.normal() * scale;
  return x;
}

// A packed matrix that owns its bytes, in both kernel layouts.
struct PackedMatrix {
  std::vector<int8_t> q;
  std::vector<uint8_t> bytes, bytes20;
  TernaryMatrix view(float sigma = 1.0f) const { return {bytes.data(), rows, cols, sigma}; }
  TernaryMatrix view(float sigma, TernaryLayout layout) const {
    if (layout == TernaryLayout::T20) return {bytes20.data(), rows, cols, sigma, layout};
    return view(sigma);
  }
  int64_t rows = 0, cols = 0;
};
inline constexpr TernaryLayout kLayouts[] = {TernaryLayout::T16, TernaryLayout::T20};

inline PackedMatrix make_packed(Rng& rng, int64_t rows, int64_t cols) {
  PackedMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.q = random_ternary(rng, rows * cols);
  m.bytes.resize(ternary_matrix_bytes(rows, cols));
  ternary_matrix_pack(m.bytes.data(), m.q.data(), rows, cols);
  m.bytes20.resize(ternary_matrix_bytes(rows, cols, TernaryLayout::T20));
  ternary_matrix_to_t20(m.bytes20.data(), m.bytes.data(), rows, cols);
  return m;
}

// ---- gradient checks: float analytic gradients against double central differences
using Vec = std::vector<double>;

inline Vec to_double(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

// Central differences of f at x in double: g[i] = (f(x + h e_i) − f(x − h e_i)) / 2h.
inline Vec numeric_grad(const std::function<double(const Vec&)>& f, Vec x, double h = 1e-6) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f(x);
    x[i] = keep - h;
    const double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

// Float analytic gradient vs double numeric: |a − n| ≤ tol · max|n| + 1e-6 elementwise, reporting the worst.
// tol = 1e-4 covers fp32 rounding of O(10²)-term sums (~n·2^−24 ≈ 1e-5) with margin; the FD error is ~1e-9; the
// 1e-6 floor is fp32 noise on O(1) inputs where the exact gradient is 0 (attention with window 1).
inline void expect_grad_near(const std::vector<float>& analytic, const Vec& numeric, const char* what, double tol = 1e-4) {
  ASSERT_EQ(analytic.size(), numeric.size()) << what;
  double scale = 0;
  for (double v : numeric) scale = std::max(scale, std::abs(v));
  size_t worst = 0;
  double worst_err = -1;
  for (size_t i = 0; i < numeric.size(); ++i) {
    const double e = std::abs(analytic[i] - numeric[i]);
    if (e > worst_err) worst_err = e, worst = i;
  }
  EXPECT_LE(worst_err, tol * scale + 1e-6)
      << what << ": worst element " << worst << " analytic " << analytic[worst] << " numeric " << numeric[worst];
}

inline double dot(const Vec& a, const Vec& w) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * w[i];
  return s;
}

}  // namespace tritter::test
