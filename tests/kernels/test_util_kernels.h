// Helpers shared by the kernel tests: the SIMD tiers this CPU supports and random data makers.
#pragma once
#include <cstdint>
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

}  // namespace tritter::test
