// The KV cache's 4-bit dequantizers (kernels/kv_quant.h): the public functions, the byte-at-a-time scalar path
// and the AVX2 path (where the CPU has it) equal kernels/ref bit for bit, over odd head dims (vector tails) and
// odd value group sizes (groups that start on a high nibble). Random packed bytes and params: every level 0..15.
#include <gtest/gtest.h>

#include <cstring>
#include <span>
#include <vector>

#include "kernels/cpu/kv_dequant.h"
#include "kernels/kv_quant.h"
#include "kernels/ref/ref.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter {
namespace {

std::vector<uint8_t> random_bytes(Rng& rng, int64_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng.next_below(256));
  return b;
}

// Same bits (NaN-poisoned outputs compare as bit patterns, so an unwritten element fails).
void expect_bits(const std::vector<float>& got, const std::vector<float>& want, const char* what, int64_t d,
                 int64_t gv) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << what << " d=" << d << " gv=" << gv << " i=" << i << " got " << got[i] << " want " << want[i];
  }
}

bool cpu_has_avx2() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

TEST(KvQuant, Int4KeyRowEveryPathMatchesReference) {
  Rng rng(11);
  for (int d : test::kOddSizes) {
    const auto row = random_bytes(rng, (d + 1) / 2);
    const auto params = test::random_normal(rng, 2 * d, 3.0f);
    std::vector<float> want(d), got(d);
    ref::kv_dequantize_key_row(want.data(), row.data(), params.data(), d, 4);
    test::poison(std::span<float>(got));
    kv_dequantize_key_row(got.data(), row.data(), params.data(), d, 4);
    expect_bits(got, want, "public", d, 0);
    test::poison(std::span<float>(got));
    cpu::kv_dequantize_key_row4_scalar(got.data(), row.data(), params.data(), d);
    expect_bits(got, want, "scalar", d, 0);
#if defined(__x86_64__)
    if (cpu_has_avx2()) {
      test::poison(std::span<float>(got));
      cpu::kv_dequantize_key_row4_avx2(got.data(), row.data(), params.data(), d);
      expect_bits(got, want, "avx2", d, 0);
    }
#endif
  }
}

TEST(KvQuant, Int4ValueRowEveryPathMatchesReferenceOverOddGroups) {
  Rng rng(12);
  int cases = 0;
  for (int d : test::kOddSizes) {
    for (int gv = 1; gv <= d; ++gv) {
      if (d % gv != 0) continue;
      ++cases;
      const auto row = random_bytes(rng, (d + 1) / 2);
      const auto params = test::random_normal(rng, 2 * (d / gv), 3.0f);
      std::vector<float> want(d), got(d);
      ref::kv_dequantize_value_row(want.data(), row.data(), params.data(), d, gv, 4);
      test::poison(std::span<float>(got));
      kv_dequantize_value_row(got.data(), row.data(), params.data(), d, gv, 4);
      expect_bits(got, want, "public", d, gv);
      test::poison(std::span<float>(got));
      cpu::kv_dequantize_value_row4_scalar(got.data(), row.data(), params.data(), d, gv);
      expect_bits(got, want, "scalar", d, gv);
#if defined(__x86_64__)
      if (cpu_has_avx2()) {
        test::poison(std::span<float>(got));
        cpu::kv_dequantize_value_row4_avx2(got.data(), row.data(), params.data(), d, gv);
        expect_bits(got, want, "avx2", d, gv);
      }
#endif
    }
  }
  EXPECT_GT(cases, 40);  // odd group sizes (3, 5, 15, 17, 43, ...) among them
}

TEST(KvQuant, Int4HandValues) {
  // Bytes 0x21, 0xf0: levels 1, 2, 0, 15 (low nibble first). Key params min {0, 1, 2, 3}, scale {1, 2, 0.5, 4}.
  const uint8_t row[] = {0x21, 0xf0};
  const float kp[] = {0, 1, 2, 3, 1, 2, 0.5f, 4};
  std::vector<float> k(4);
  kv_dequantize_key_row(k.data(), row, kp, 4, 4);
  EXPECT_EQ(k, (std::vector<float>{1, 5, 2, 63}));
  // Value groups of 1 (odd): {min, scale} = {10, 1}, {0, 2}, {−1, 1}, {0, 0.25}.
  const float vp[] = {10, 1, 0, 2, -1, 1, 0, 0.25f};
  std::vector<float> v(4);
  kv_dequantize_value_row(v.data(), row, vp, 4, 1, 4);
  EXPECT_EQ(v, (std::vector<float>{11, 4, -1, 3.75f}));
}

}  // namespace
}  // namespace tritter
