// ggml block codecs: half conversions on every f16 code, TQ2_0 on all 81 groups of four trits with golden byte
// positions, TQ1_0 on hand-encoded bytes, Q8_0 / Q4_0 / Q4_K / Q6_K on hand-made blocks decoded by the formula.
#include "kernels/block_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TEST(BlockQuant, HalfConversionsRoundTripEveryCode) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << h;
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie → even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie → even (up)
  EXPECT_EQ(f32_to_f16(70000.0f), 0x7c00);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
}

TEST(BlockQuant, Tq2_0PlacesElementsAsGgmlAndRoundTripsAll81Groups) {
  // Golden: element 128h + 32l + m in bits 2l of qs[32h + m], code w + 1; d last.
  std::vector<int8_t> q(256, 0);
  q[0] = 1;     // h0 l0 m0 → qs[0] bits 0-1 = 2
  q[33] = -1;   // h0 l1 m1 → qs[1] bits 2-3 = 0
  q[255] = 1;   // h1 l3 m31 → qs[63] bits 6-7 = 2
  std::vector<uint8_t> b(66);
  tq2_0_from_codes(b.data(), q.data(), 256, 0.5f);
  EXPECT_EQ(b[0], 0x56);   // 01 01 01 10
  EXPECT_EQ(b[1], 0x51);   // 01 01 00 01
  EXPECT_EQ(b[63], 0x95);  // 10 01 01 01
  EXPECT_EQ(b[2], 0x55);
  EXPECT_EQ(b[64] | (b[65] << 8), 0x3800);  // f16 0.5
  // All 81 groups of four trits, tiled over a block.
  std::vector<int8_t> all(512), back(512);
  for (int i = 0; i < 512; ++i) {
    const int g = (i / 4) % 81, k = i % 4;
    int v = g;
    for (int j = 0; j < k; ++j) v /= 3;
    all[i] = static_cast<int8_t>(v % 3 - 1);
  }
  std::vector<uint8_t> blocks(132);
  tq2_0_from_codes(blocks.data(), all.data(), 512, 0.25f);
  float d[2];
  tq2_0_to_codes(back.data(), d, blocks.data(), 512);
  EXPECT_EQ(back, all);
  EXPECT_EQ(d[0], 0.25f);
  std::vector<float> f(512);
  dequantize_tq2_0(f.data(), blocks.data(), 512);
  for (int i = 0; i < 512; ++i) ASSERT_EQ(f[i], 0.25f * all[i]) << i;
  blocks[7] = 0xff;  // code 3
  test::expect_error([&] { tq2_0_to_codes(back.data(), d, blocks.data(), 512); }, {"TQ2_0 block 0", "code 3"});
  all[3] = 2;
  test::expect_error([&] { tq2_0_from_codes(blocks.data(), all.data(), 512, 1.0f); }, {"element 3 is 2"});
}

TEST(BlockQuant, Tq1_0DecodesBase3AsGgml) {
  // Encode trits with ggml's rule: byte = ceil(v · 256 / 243), v = Σ t_n 3^(4−n) (the first trit most significant).
  std::vector<int8_t> want(256);
  for (int i = 0; i < 256; ++i) want[i] = static_cast<int8_t>((i * 7 + i / 5) % 3 - 1);
  std::vector<uint8_t> b(54, 0);
  auto enc = [&](int byte, const std::vector<int>& elems) {
    int v = 0;
    for (int e : elems) v = v * 3 + (want[e] + 1);
    for (size_t k = elems.size(); k < 5; ++k) v *= 3;  // qh: 4 trits, multiplied by 3 once more
    b[byte] = static_cast<uint8_t>((v * 256 + 242) / 243);
  };
  for (int m = 0; m < 32; ++m) enc(m, {m, 32 + m, 64 + m, 96 + m, 128 + m});
  for (int m = 0; m < 16; ++m) enc(32 + m, {160 + m, 176 + m, 192 + m, 208 + m, 224 + m});
  for (int m = 0; m < 4; ++m) enc(48 + m, {240 + m, 244 + m, 248 + m, 252 + m});
  b[52] = 0x00;
  b[53] = 0x3c;  // d = 1
  std::vector<int8_t> got(256);
  float d;
  tq1_0_to_codes(got.data(), &d, b.data(), 256);
  EXPECT_EQ(got, want);
  EXPECT_EQ(d, 1.0f);
}

TEST(BlockQuant, Q8_0AndQ4_0MatchTheirFormulas) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = std::sin(0.3f * i) * (i < 32 ? 1.0f : 8.0f);
  std::vector<uint8_t> b(68);
  quantize_q8_0(b.data(), x.data(), 64);
  std::vector<float> y(64);
  dequantize_q8_0(y.data(), b.data(), 64);
  for (int blk = 0; blk < 2; ++blk) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[blk * 32 + j]));
    const float d = f16_to_f32(f32_to_f16(amax / 127.0f));
    for (int j = 0; j < 32; ++j) {
      const int i = blk * 32 + j;
      EXPECT_EQ(y[i], static_cast<float>(static_cast<int8_t>(b[blk * 34 + 2 + j])) * d);
      EXPECT_LE(std::fabs(y[i] - x[i]), 0.51f * amax / 127.0f + 1e-3f * amax) << i;
    }
  }
  uint8_t q4[18] = {0x00, 0x40};  // d = 2
  for (int j = 0; j < 16; ++j) q4[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float z[32];
  dequantize_q4_0(z, q4, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(z[j], 2.0f * (j - 8));
    EXPECT_EQ(z[j + 16], 2.0f * (7 - j));
  }
}

TEST(BlockQuant, Q4_KAndQ6_KMatchGgmlsLayout) {
  // Q4_K: d = 1, dmin = 0.5; sub-block j has scale j+1 and min j (6-bit, j < 4 in the low bytes, j ≥ 4 split).
  std::vector<uint8_t> k4(144, 0);
  k4[0] = 0x00; k4[1] = 0x3c; k4[2] = 0x00; k4[3] = 0x38;
  uint8_t* s = k4.data() + 4;
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) { sc[j] = j + 1 + (j >= 4 ? 40 : 0); mn[j] = j + (j >= 4 ? 20 : 0); }
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4));
  }
  for (int i = 0; i < 128; ++i) k4[16 + i] = static_cast<uint8_t>((i % 16) | (((i * 3) % 16) << 4));
  std::vector<float> y(256);
  dequantize_q4_k(y.data(), k4.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int chunk = e / 64, within = e % 64, sub = 2 * chunk + within / 32, l = within % 32;
    const uint8_t byte = k4[16 + 32 * chunk + l];
    const int q = within < 32 ? (byte & 0xf) : (byte >> 4);
    ASSERT_EQ(y[e], 1.0f * sc[sub] * q - 0.5f * mn[sub]) << e;
  }
  // Q6_K: q = (4 low bits | 2 high bits << 4) − 32, times d · scale[16-element group].
  std::vector<uint8_t> k6(210, 0);
  for (int i = 0; i < 128; ++i) k6[i] = static_cast<uint8_t>((i * 5) & 0xff);
  for (int i = 0; i < 64; ++i) k6[128 + i] = static_cast<uint8_t>((i * 37) & 0xff);
  for (int i = 0; i < 16; ++i) k6[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(i - 8));
  k6[208] = 0x00; k6[209] = 0x3c;
  dequantize_q6_k(y.data(), k6.data(), 256);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    const uint8_t lo = k6[64 * h + l + (quarter & 1) * 32];
    const int low = quarter < 2 ? (lo & 0xf) : (lo >> 4);
    const int high = (k6[128 + 32 * h + l] >> (2 * quarter)) & 3;
    const int scale = static_cast<int8_t>(k6[192 + 8 * h + l / 16 + 2 * quarter]);
    ASSERT_EQ(y[e], 1.0f * scale * ((low | (high << 4)) - 32)) << e;
  }
}

}  // namespace
}  // namespace tritter
