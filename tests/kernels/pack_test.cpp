// 2-bit interchange codes (original.md §4.3), the T16 and T20 kernel layouts: exhaustive codec tests, golden bytes
// from the spec, rejection of code 11 and of bytes that are no T20 code, and the load-time repacks.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/pack.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/ternary_matmul.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TEST(TernaryPack2Bit, GoldenBytesFromSpec) {
  struct Case {
    std::vector<int8_t> q;
    std::vector<uint8_t> bytes;
  };
  const std::vector<Case> cases = {
      {{-1, 0, 1, 0}, {0x64}}, {{1, 1, -1, -1}, {0x0A}}, {{0, 0, 0, 0}, {0x55}}, {{-1, 0, 1, 1, -1, 0}, {164, 84}},
      {{1}, {0x56}},  // tail padded with 01
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> out(c.bytes.size(), 0xEE);
    ternary_pack_2bit(out.data(), c.q.data(), static_cast<int64_t>(c.q.size()));
    EXPECT_EQ(out, c.bytes);
    std::vector<int8_t> back(c.q.size(), 99);
    ternary_unpack_2bit(back.data(), c.bytes.data(), static_cast<int64_t>(c.q.size()));
    EXPECT_EQ(back, c.q);
  }
}

TEST(TernaryPack2Bit, All81GroupsOfFourRoundTrip) {
  for (int g = 0; g < 81; ++g) {
    int8_t q[4];
    int v = g;
    uint8_t expect = 0;
    for (int j = 0; j < 4; ++j, v /= 3) {
      q[j] = static_cast<int8_t>(v % 3 - 1);
      expect |= static_cast<uint8_t>((v % 3) << (2 * j));
    }
    uint8_t byte = 0;
    ternary_pack_2bit(&byte, q, 4);
    ASSERT_EQ(byte, expect) << "group " << g;
    int8_t back[4];
    ternary_unpack_2bit(back, &byte, 4);
    for (int j = 0; j < 4; ++j) ASSERT_EQ(back[j], q[j]) << "group " << g;
  }
}

TEST(TernaryPack2Bit, All256ByteCodes) {
  int valid = 0;
  for (int b = 0; b < 256; ++b) {
    const uint8_t byte = static_cast<uint8_t>(b);
    bool has11 = false;
    for (int j = 0; j < 4; ++j) has11 |= ((b >> (2 * j)) & 3) == 3;
    int8_t q[4];
    if (has11) {
      try {
        ternary_unpack_2bit(q, &byte, 4);
        ADD_FAILURE() << "byte " << b << " accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("code 11"), std::string::npos) << e.what();
      }
      continue;
    }
    ++valid;
    ternary_unpack_2bit(q, &byte, 4);
    uint8_t again = 0;
    ternary_pack_2bit(&again, q, 4);
    EXPECT_EQ(again, byte);
  }
  EXPECT_EQ(valid, 81);
}

TEST(TernaryPack2Bit, RejectsNonTernary) {
  const int8_t q[3] = {0, 2, 1};
  uint8_t out = 0;
  try {
    ternary_pack_2bit(&out, q, 3);
    FAIL() << "accepted 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("element 1: found 2"), std::string::npos) << e.what();
  }
}

std::vector<int8_t> random_ternary(Rng& rng, int64_t n) {
  std::vector<int8_t> q(static_cast<size_t>(n));
  for (auto& v : q) v = static_cast<int8_t>(static_cast<int>(rng.next_u64() % 3) - 1);
  return q;
}

TEST(TernaryMatrixLayout, RoundTripOddShapesAndMatchesAt) {
  Rng rng(7);
  for (int rows : {1, 3, 16, 17, 33}) {
    for (int cols : test::kOddSizes) {
      const auto q = random_ternary(rng, int64_t{rows} * cols);
      std::vector<uint8_t> packed(ternary_matrix_bytes(rows, cols), 0xFF);
      ternary_matrix_pack(packed.data(), q.data(), rows, cols);
      const TernaryMatrix w{packed.data(), rows, cols, 1.0f};
      for (int o = 0; o < rows; ++o) {
        for (int i = 0; i < cols; ++i) ASSERT_EQ(ternary_matrix_at(w, o, i), q[o * cols + i]) << o << "," << i;
      }
      std::vector<int8_t> back(q.size(), 9);
      ternary_matrix_unpack(back.data(), packed.data(), rows, cols);
      ASSERT_EQ(back, q) << rows << "x" << cols;
      // Load-time repack from the interchange row packing gives the same bytes.
      std::vector<uint8_t> rows_packed(static_cast<size_t>(rows * ternary_packed_row_bytes(cols)));
      ternary_pack_rows(rows_packed.data(), q.data(), rows, cols);
      std::vector<uint8_t> repacked(packed.size(), 0xFF);
      ternary_matrix_from_rows(repacked.data(), rows_packed.data(), rows, cols);
      ASSERT_EQ(repacked, packed) << rows << "x" << cols;
    }
  }
}

TEST(TernaryMatrixLayout, GoldenTile) {
  // 1×5 matrix [+1, −1, 0, +1, −1]: tile byte 0 holds columns 0, 4 (and 8, 12 = padding 01):
  // col0 +1 → 10, col4 −1 → 00, pad 01, pad 01 → 0b01010010 = 0x52. Byte 1: col1 −1 → 00, col5 pad → 0x54.
  // Byte 2: col2 0 → 01 → 0x55. Byte 3: col3 +1 → 10 → 0x56. Rows 1..15 all padding: 0x55.
  const int8_t q[5] = {1, -1, 0, 1, -1};
  std::vector<uint8_t> packed(ternary_matrix_bytes(1, 5));
  ASSERT_EQ(packed.size(), 64u);
  ternary_matrix_pack(packed.data(), q, 1, 5);
  EXPECT_EQ(packed[0], 0x52);
  EXPECT_EQ(packed[1], 0x54);
  EXPECT_EQ(packed[2], 0x55);
  EXPECT_EQ(packed[3], 0x56);
  for (int b = 4; b < 64; ++b) EXPECT_EQ(packed[b], 0x55) << b;
  EXPECT_EQ(ternary_matrix_bytes(2560, 6912), size_t{160} * 432 * 64);
}

TEST(TernaryMatrixLayout, RejectsCode11) {
  std::vector<uint8_t> packed(64, 0x55);
  packed[5] = 0x57;  // row 1, byte c=1: column 1 gets code 11
  std::vector<int8_t> q(16 * 16);
  EXPECT_THROW(ternary_matrix_unpack(q.data(), packed.data(), 16, 16), Error);
  std::vector<uint8_t> rows_packed = {0x57};
  std::vector<uint8_t> out(64);
  EXPECT_THROW(ternary_matrix_from_rows(out.data(), rows_packed.data(), 1, 4), Error);
  // The T20 repack names the T16 byte, on its 80-column steps (16×80) and on the tiles after them (16×20).
  for (int cols : {80, 20}) {
    std::vector<uint8_t> t16(ternary_matrix_bytes(16, cols), 0x55);
    // The last tile's byte 61 (row 15): the field of the matrix's last 4 columns is 11.
    t16[t16.size() - 3] = static_cast<uint8_t>(0x55 | (3 << (2 * ((cols / 4 - 1) % 4))));
    std::vector<uint8_t> t20(ternary_matrix_bytes(16, cols, TernaryLayout::T20));
    test::expect_error([&] { ternary_matrix_to_t20(t20.data(), t16.data(), 16, cols); },
                       {"ternary_matrix_to_t20", ("byte " + std::to_string(t16.size() - 3)).c_str(), "code 11"});
  }
}

// ---- T20 (five codes per byte) ----

// The T20 bytes of a matrix, from its T16 packing, read back element by element, unpacked whole, and decoded band
// by band to T16 — by the portable decoder and by each SIMD one this CPU has — to exactly the T16 bytes.
TEST(TernaryMatrixT20, RoundTripOddShapesAndDecodesToT16) {
  Rng rng(8);
  std::vector<int> cols_list = test::kOddSizes;
  for (int c : {20, 40, 60, 61, 64, 79, 80, 81, 99, 100, 159, 160, 161, 319, 320, 321, 1041}) cols_list.push_back(c);
  Context probe;
  const KernelTier best = ternary_kernel_tier(probe);
  for (int rows : {1, 3, 16, 17, 33}) {
    for (int cols : cols_list) {
      const auto q = random_ternary(rng, int64_t{rows} * cols);
      std::vector<uint8_t> t16(ternary_matrix_bytes(rows, cols));
      ternary_matrix_pack(t16.data(), q.data(), rows, cols);
      std::vector<uint8_t> t20(ternary_matrix_bytes(rows, cols, TernaryLayout::T20), 0xAA);
      ternary_matrix_to_t20(t20.data(), t16.data(), rows, cols);
      ASSERT_EQ(ternary_t20_first_invalid(t20.data(), t20.size()), -1) << rows << "x" << cols;
      const TernaryMatrix w{t20.data(), rows, cols, 1.0f, TernaryLayout::T20};
      for (int o = 0; o < rows; ++o) {
        for (int i = 0; i < cols; ++i) ASSERT_EQ(ternary_matrix_at(w, o, i), q[o * cols + i]) << o << "," << i;
      }
      std::vector<int8_t> back(q.size(), 9);
      ternary_matrix_unpack(back.data(), w);
      ASSERT_EQ(back, q) << rows << "x" << cols;
      const int64_t band16 = (cols + 15) / 16 * 64, band20 = (cols + 19) / 20 * 64;
      for (int64_t rb = 0; rb * 16 < rows; ++rb) {
        const std::vector<uint8_t> want(t16.begin() + rb * band16, t16.begin() + (rb + 1) * band16);
        std::vector<uint8_t> got(static_cast<size_t>(band16), 0xAA);
        ternary_t20_band_to_t16(got.data(), t20.data() + rb * band20, cols);
        ASSERT_EQ(got, want) << "portable " << rows << "x" << cols << " band " << rb;
        if (best == KernelTier::Avx2 || best == KernelTier::Avx512Vnni) {
          std::fill(got.begin(), got.end(), 0xAA);
          cpu::t20_band_to_t16_avx2(got.data(), t20.data() + rb * band20, cols);
          ASSERT_EQ(got, want) << "avx2 " << rows << "x" << cols << " band " << rb;
        }
        if (best == KernelTier::Avx512Vnni) {
          std::fill(got.begin(), got.end(), 0xAA);
          cpu::t20_band_to_t16_avx512(got.data(), t20.data() + rb * band20, cols);
          ASSERT_EQ(got, want) << "avx512 " << rows << "x" << cols << " band " << rb;
        }
      }
    }
  }
}

TEST(TernaryMatrixT20, GoldenTile) {
  // 1×5 matrix [+1, −1, 0, +1, −1]. Byte 0 holds columns 0, 4, 8, 12, 16: codes 2, 0, 1, 1, 1 (padding is 1),
  // v = 2·81 + 0·27 + 9 + 3 + 1 = 175, q = ⌈175·256/243⌉ = 185. Byte 1: codes 0, 1, 1, 1, 1 → v = 40 → 43.
  // Byte 2: all 1 → v = 121 → 128. Byte 3: codes 2, 1, 1, 1, 1 → v = 202 → 213. Padding rows: 128.
  const int8_t q[5] = {1, -1, 0, 1, -1};
  std::vector<uint8_t> t16(ternary_matrix_bytes(1, 5)), t20(ternary_matrix_bytes(1, 5, TernaryLayout::T20));
  ASSERT_EQ(t20.size(), 64u);
  ternary_matrix_pack(t16.data(), q, 1, 5);
  ternary_matrix_to_t20(t20.data(), t16.data(), 1, 5);
  EXPECT_EQ(t20[0], 185);
  EXPECT_EQ(t20[1], 43);
  EXPECT_EQ(t20[2], 128);
  EXPECT_EQ(t20[3], 213);
  for (int b = 4; b < 64; ++b) EXPECT_EQ(t20[b], 128) << b;
  EXPECT_EQ(ternary_matrix_bytes(2560, 6912, TernaryLayout::T20), size_t{160} * 346 * 64);
  EXPECT_EQ(ternary_matrix_bytes(2560, 6912, TernaryLayout::T16), ternary_matrix_bytes(2560, 6912));
}

// Exactly the 243 bytes ⌈256·v/243⌉ are codes; the others are found wherever they sit.
TEST(TernaryMatrixT20, FindsEveryInvalidByte) {
  bool valid[256] = {};
  for (int v = 0; v < 243; ++v) valid[(256 * v + 242) / 243] = true;
  int invalid = 0;
  for (int b = 0; b < 256; ++b) {
    std::vector<uint8_t> bytes(70, 128);
    bytes[37] = static_cast<uint8_t>(b);
    EXPECT_EQ(ternary_t20_first_invalid(bytes.data(), bytes.size()), valid[b] ? -1 : 37) << b;
    invalid += valid[b] ? 0 : 1;
  }
  EXPECT_EQ(invalid, 13);
  // And every code's digits are its number's: decoding by ×3 steps inverts the encoding.
  for (int v = 0; v < 243; ++v) {
    const unsigned byte = (256 * v + 242) / 243;
    int x = 0;
    for (int k = 0; k < 5; ++k) x = 3 * x + ternary_t20_digit(byte, k);
    EXPECT_EQ(x, v);
  }
}

}  // namespace
}  // namespace tritter
