// Interchange 2-bit codes (original.md §4.3) and the T16 and T20 kernel layouts (ternary_matmul.h): packing,
// unpacking and the load-time repacks between them. Every invalid input is an Error.
#include "kernels/pack.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

namespace {

inline uint8_t code_of(int8_t v, const char* where, int64_t index) {
  if (v < -1 || v > 1) {
    throw_error(where, ": element ", index, ": found ", static_cast<int>(v), ", expected -1, 0 or +1");
  }
  return static_cast<uint8_t>(v + 1);
}

inline int8_t value_of(uint8_t code, const char* where, int64_t byte_index) {
  if (code == 3) {
    throw_error(where, ": byte ", byte_index, ": found code 11 (binary), expected 00, 01 or 10");
  }
  return static_cast<int8_t>(code) - 1;
}

// Any 2-bit lane equal to 11 in a byte.
inline bool has_code_11(uint8_t b) { return ((b & (b >> 1)) & 0x55) != 0; }

}  // namespace

void ternary_pack_2bit(uint8_t* out, const int8_t* q, int64_t n) {
  for (int64_t b = 0; b * 4 < n; ++b) {
    uint8_t byte = 0;
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j;
      const uint8_t code = i < n ? code_of(q[i], "ternary_pack_2bit", i) : 1;
      byte |= static_cast<uint8_t>(code << (2 * j));
    }
    out[b] = byte;
  }
}

void ternary_unpack_2bit(int8_t* q, const uint8_t* in, int64_t n) {
  for (int64_t b = 0; b * 4 < n; ++b) {
    if (has_code_11(in[b])) {
      for (int j = 0; j < 4; ++j) value_of((in[b] >> (2 * j)) & 3, "ternary_unpack_2bit", b);
    }
    for (int j = 0; j < 4 && 4 * b + j < n; ++j) q[4 * b + j] = static_cast<int8_t>(((in[b] >> (2 * j)) & 3) - 1);
  }
}

void ternary_pack_rows(uint8_t* out, const int8_t* q, int64_t rows, int64_t cols) {
  const int64_t rb = ternary_packed_row_bytes(cols);
  for (int64_t r = 0; r < rows; ++r) ternary_pack_2bit(out + r * rb, q + r * cols, cols);
}

void ternary_unpack_rows(int8_t* q, const uint8_t* in, int64_t rows, int64_t cols) {
  const int64_t rb = ternary_packed_row_bytes(cols);
  for (int64_t r = 0; r < rows; ++r) ternary_unpack_2bit(q + r * cols, in + r * rb, cols);
}

// ---- T16 kernel layout ----

size_t ternary_matrix_bytes(int64_t rows, int64_t cols) { return ternary_matrix_bytes(rows, cols, TernaryLayout::T16); }


namespace {

// spread[b]: byte c of the result holds the 2-bit field c of b in its low bits. A full 16-column row segment in
// interchange bytes in0..in3 (column 4k + c in field c of byte k) becomes the tile word
// spread[in0] | spread[in1] << 2 | spread[in2] << 4 | spread[in3] << 6 (column 4j + c in field j of byte c).
struct Spread {
  uint32_t v[256];
  constexpr Spread() : v() {
    for (uint32_t b = 0; b < 256; ++b) {
      for (uint32_t c = 0; c < 4; ++c) v[b] |= ((b >> (2 * c)) & 3u) << (8 * c);
    }
  }
};
constexpr Spread kSpread{};

// Fills the T16 layout. code_at(o, i) ∈ {0,1,2} serves padding-adjacent tiles element by element; segment(o, cb,
// in) writes the 4 validated interchange bytes of the full 16-column segment (o, cb), which are then spread.
template <typename CodeAt, typename Segment>
void fill_t16(uint8_t* out, int64_t rows, int64_t cols, CodeAt code_at, Segment segment) {
  const int64_t nrb = (rows + 15) / 16, ncb = (cols + 15) / 16, full_cb = cols / 16;
  for (int64_t rb = 0; rb < nrb; ++rb) {
    for (int64_t cb = 0; cb < ncb; ++cb) {
      uint8_t* tile = out + (rb * ncb + cb) * kTernaryTileBytes;
      for (int r = 0; r < 16; ++r) {
        const int64_t o = rb * 16 + r;
        if (o >= rows || cb >= full_cb) {
          for (int c = 0; c < 4; ++c) {
            uint8_t byte = 0;
            for (int j = 0; j < 4; ++j) {
              const int64_t i = cb * 16 + 4 * j + c;
              byte |= static_cast<uint8_t>(((o < rows && i < cols) ? code_at(o, i) : 1) << (2 * j));
            }
            tile[4 * r + c] = byte;
          }
          continue;
        }
        uint8_t in[4];
        segment(o, cb, in);
        const uint32_t word = kSpread.v[in[0]] | kSpread.v[in[1]] << 2 | kSpread.v[in[2]] << 4 | kSpread.v[in[3]] << 6;
        for (int c = 0; c < 4; ++c) tile[4 * r + c] = static_cast<uint8_t>(word >> (8 * c));
      }
    }
  }
}

}  // namespace

void ternary_matrix_pack(uint8_t* out, const int8_t* q, int64_t rows, int64_t cols) {
  auto code_at = [&](int64_t o, int64_t i) { return code_of(q[o * cols + i], "ternary_matrix_pack", o * cols + i); };
  fill_t16(out, rows, cols, code_at, [&](int64_t o, int64_t cb, uint8_t* in) {
    for (int k = 0; k < 4; ++k) {
      uint8_t byte = 0;
      for (int j = 0; j < 4; ++j) byte |= static_cast<uint8_t>(code_at(o, cb * 16 + 4 * k + j) << (2 * j));
      in[k] = byte;
    }
  });
}

void ternary_matrix_from_rows(uint8_t* out, const uint8_t* rows_packed, int64_t rows, int64_t cols) {
  const int64_t rb_bytes = ternary_packed_row_bytes(cols);
  auto code_at = [&](int64_t o, int64_t i) {
    const int64_t byte_index = o * rb_bytes + i / 4;
    const uint8_t code = (rows_packed[byte_index] >> (2 * (i % 4))) & 3;
    value_of(code, "ternary_matrix_from_rows", byte_index);
    return code;
  };
  fill_t16(out, rows, cols, code_at, [&](int64_t o, int64_t cb, uint8_t* in) {
    const int64_t at = o * rb_bytes + cb * 4;
    for (int k = 0; k < 4; ++k) {
      in[k] = rows_packed[at + k];
      if (has_code_11(in[k])) {
        for (int j = 0; j < 4; ++j) value_of((in[k] >> (2 * j)) & 3, "ternary_matrix_from_rows", at + k);
      }
    }
  });
}

void ternary_matrix_unpack(int8_t* q, const uint8_t* packed, int64_t rows, int64_t cols) {
  const int64_t ncb = (cols + 15) / 16;
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t i = 0; i < cols; ++i) {
      const int64_t c = i % 16;
      const int64_t byte_index = ((o / 16) * ncb + i / 16) * kTernaryTileBytes + 4 * (o % 16) + (c & 3);
      q[o * cols + i] = value_of((packed[byte_index] >> (2 * (c >> 2))) & 3, "ternary_matrix_unpack", byte_index);
    }
  }
}

// ---- T20 kernel layout (1.6 bits per weight) ----

const char* ternary_layout_name(TernaryLayout layout) { return layout == TernaryLayout::T20 ? "t20" : "t16"; }

size_t ternary_matrix_bytes(int64_t rows, int64_t cols, TernaryLayout layout) {
  TRITTER_CHECK(rows >= 0 && cols >= 0, "rows ", rows, " cols ", cols);
  const int64_t tile_cols = layout == TernaryLayout::T20 ? kT20TileCols : kTernaryTileCols;
  const int64_t nrb = (rows + kTernaryTileRows - 1) / kTernaryTileRows;
  const int64_t ncb = (cols + tile_cols - 1) / tile_cols;
  return static_cast<size_t>(nrb * ncb * kTernaryTileBytes);
}

namespace {

// encode[v] = ⌈256·v/243⌉ for the 243 base-3 numbers v of five digits; digits[q] the five digits of byte q (digit k
// in bits 2k..2k+1, as ternary_t20_digit extracts them) and valid[q] whether q is some encode[v].
struct T20Tables {
  uint8_t encode[243];
  uint16_t digits[256];
  bool valid[256];
  constexpr T20Tables() : encode(), digits(), valid() {
    for (unsigned q = 0; q < 256; ++q) {
      unsigned p = q;
      for (int k = 0; k < 5; ++k) {
        digits[q] = static_cast<uint16_t>(digits[q] | (((3 * p) >> 8) << (2 * k)));
        p = (3 * p) & 255;
      }
    }
    for (unsigned v = 0; v < 243; ++v) {
      encode[v] = static_cast<uint8_t>((256 * v + 242) / 243);
      valid[encode[v]] = true;
    }
  }
};
constexpr T20Tables kT20{};

// from5[x] for 10 bits x = five 2-bit codes (code k in bits 2k..2k+1, k = 0 the most significant digit): the T20
// byte of those codes, or 0x100 when one of them is 11.
struct T20FromFive {
  uint16_t v[1024];
  constexpr T20FromFive() : v() {
    for (unsigned x = 0; x < 1024; ++x) {
      unsigned n = 0;
      bool bad = false;
      for (int k = 0; k < 5; ++k) {
        const unsigned code = (x >> (2 * k)) & 3;
        bad = bad || code == 3;
        n = 3 * n + (code == 3 ? 0 : code);
      }
      v[x] = bad ? uint16_t{0x100} : kT20.encode[n];
    }
  }
};
constexpr T20FromFive kT20FromFive{};

// The digits of every code are those of its number (what makes ⌈256·v/243⌉ decodable by ×3 steps at all).
constexpr bool t20_tables_round_trip() {
  for (unsigned v = 0; v < 243; ++v) {
    unsigned d = kT20.digits[kT20.encode[v]], x = 0;
    for (int k = 0; k < 5; ++k) x = 3 * x + ((d >> (2 * k)) & 3);
    if (x != v) return false;
  }
  return true;
}
static_assert(t20_tables_round_trip());

}  // namespace

void ternary_matrix_to_t20(uint8_t* out, const uint8_t* t16, int64_t rows, int64_t cols) {
  const int64_t nrb = (rows + 15) / 16, ncb16 = (cols + 15) / 16, ncb20 = (cols + 19) / 20;
  // Steps of 5 T16 tiles = 4 T20 tiles (80 columns): byte b of the 5 T16 tiles is 20 codes in 40 bits, code g at
  // bits 2g, and T20 tile m's byte b is the table entry of bits 10m..10m+9.
  const int64_t steps = std::min(ncb16 / 5, ncb20 / 4);
  for (int64_t rb = 0; rb < nrb; ++rb) {
    const uint8_t* band = t16 + rb * ncb16 * kTernaryTileBytes;
    for (int64_t s = 0; s < steps; ++s) {
      const uint8_t* in = band + 5 * s * kTernaryTileBytes;
      uint8_t* tile = out + (rb * ncb20 + 4 * s) * kTernaryTileBytes;
      for (int b = 0; b < 64; ++b) {
        uint64_t word = 0;
        for (int j = 0; j < 5; ++j) word |= uint64_t{in[j * kTernaryTileBytes + b]} << (8 * j);
        for (int m = 0; m < 4; ++m) {
          const unsigned q = kT20FromFive.v[(word >> (10 * m)) & 1023];
          if (q > 255) {
            for (int j = 0; j < 5; ++j) {
              if (has_code_11(in[j * kTernaryTileBytes + b])) {
                value_of(3, "ternary_matrix_to_t20", (rb * ncb16 + 5 * s + j) * kTernaryTileBytes + b);
              }
            }
          }
          tile[m * kTernaryTileBytes + b] = static_cast<uint8_t>(q);
        }
      }
    }
    for (int64_t m = 4 * steps; m < ncb20; ++m) {
      uint8_t* tile = out + (rb * ncb20 + m) * kTernaryTileBytes;
      for (int b = 0; b < 64; ++b) {
        unsigned v = 0;
        for (int k = 0; k < 5; ++k) {
          const int64_t g = 5 * m + k;  // column group 4g..4g+3: field g%4 of T16 tile g/4
          unsigned code = 1;
          if (g < 4 * ncb16) {
            const int64_t at = (g / 4) * kTernaryTileBytes + b;
            code = (band[at] >> (2 * (g % 4))) & 3;
            if (code == 3) value_of(3, "ternary_matrix_to_t20", rb * ncb16 * kTernaryTileBytes + at);
          }
          v = 3 * v + code;
        }
        tile[b] = kT20.encode[v];
      }
    }
  }
}

void ternary_t20_band_to_t16(uint8_t* out, const uint8_t* band, int64_t cols, int64_t first_tile) {
  const int64_t ncb16 = (cols + 15) / 16, groups20 = 5 * ((cols + 19) / 20);
  // Steps of 4 T20 tiles = 5 T16 tiles, as ternary_matrix_to_t20 backwards: byte b of the 4 T20 tiles gives 20 codes
  // in 40 bits (tile m's five at bits 10m..), and T16 tile j's byte b is bits 8j..8j+7 of them.
  const int64_t steps = std::min(ncb16 / 5, groups20 / 20);
  int64_t j0 = first_tile;
  if (first_tile % 5 == 0) {
    for (int64_t s = first_tile / 5; s < steps; ++s) {
      const uint8_t* in = band + 4 * s * kTernaryTileBytes;
      uint8_t* tiles = out + 5 * s * kTernaryTileBytes;
      for (int b = 0; b < 64; ++b) {
        uint64_t word = 0;
        for (int m = 0; m < 4; ++m) word |= uint64_t{kT20.digits[in[m * kTernaryTileBytes + b]]} << (10 * m);
        for (int j = 0; j < 5; ++j) tiles[j * kTernaryTileBytes + b] = static_cast<uint8_t>(word >> (8 * j));
      }
    }
    j0 = std::max(first_tile, 5 * steps);
  }
  for (int64_t j = j0; j < ncb16; ++j) {
    uint8_t* tile = out + j * kTernaryTileBytes;
    for (int b = 0; b < 64; ++b) {
      unsigned byte = 0;
      for (int f = 0; f < 4; ++f) {
        const int64_t g = 4 * j + f;
        const unsigned code = g < groups20 ? (kT20.digits[band[(g / 5) * kTernaryTileBytes + b]] >> (2 * (g % 5))) & 3 : 1;
        byte |= code << (2 * f);
      }
      tile[b] = static_cast<uint8_t>(byte);
    }
  }
}

void ternary_matrix_from_t20(uint8_t* out, const uint8_t* t20, int64_t rows, int64_t cols) {
  const int64_t band16 = (cols + 15) / 16 * kTernaryTileBytes, band20 = (cols + 19) / 20 * kTernaryTileBytes;
  for (int64_t rb = 0; rb * kTernaryTileRows < rows; ++rb) {
    ternary_t20_band_to_t16(out + rb * band16, t20 + rb * band20, cols);
  }
}

int64_t ternary_t20_first_invalid(const uint8_t* bytes, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!kT20.valid[bytes[i]]) return static_cast<int64_t>(i);
  }
  return -1;
}

void ternary_matrix_unpack(int8_t* q, const TernaryMatrix& w) {
  if (w.layout == TernaryLayout::T16) return ternary_matrix_unpack(q, w.data, w.rows, w.cols);
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t i = 0; i < w.cols; ++i) q[o * w.cols + i] = static_cast<int8_t>(ternary_matrix_at(w, o, i));
  }
}

}  // namespace tritter
