// Interchange 2-bit codes (original.md §4.3) and the T16 kernel layout (ternary_matmul.h): packing, unpacking and
// the load-time repack between them. Table-free bit twiddling; every invalid input is an Error.
#include "kernels/pack.h"

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

size_t ternary_matrix_bytes(int64_t rows, int64_t cols) {
  TRITTER_CHECK(rows >= 0 && cols >= 0, "rows ", rows, " cols ", cols);
  const int64_t nrb = (rows + kTernaryTileRows - 1) / kTernaryTileRows;
  const int64_t ncb = (cols + kTernaryTileCols - 1) / kTernaryTileCols;
  return static_cast<size_t>(nrb * ncb * kTernaryTileBytes);
}


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

}  // namespace tritter
