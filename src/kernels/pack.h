// Interchange 2-bit ternary codes (original.md §4.3, SPEC-009): −1 → 00, 0 → 01, +1 → 10, four weights per byte,
// LSB-first along the input dimension (byte = v0 | v1<<2 | v2<<4 | v3<<6, v0 the lowest index). Code 11 is invalid.
// Row-major (O, I) matrices pack each row to ceil(I/4) bytes (ternary_pack_rows). docs/formats.md has the bytes.
// The matrix kernels use their own interleaved layout (ternary_matmul.h); these are for files and interchange.
#pragma once
#include <cstdint>

namespace tritter {

// out (ceil(n/4)) u8 ← q (n) i8 in {−1, 0, +1}; the tail of the last byte is padded with code 01 (zero).
// Throws Error on a value outside {−1, 0, +1}.
void ternary_pack_2bit(uint8_t* out, const int8_t* q, int64_t n);
// q (n) i8 ← in (ceil(n/4)) u8. Throws Error on code 11 (also in the padding of the last byte).
void ternary_unpack_2bit(int8_t* q, const uint8_t* in, int64_t n);

// Row by row: out (rows, ceil(cols/4)) u8 ← q (rows, cols) i8; each row starts on a byte boundary.
inline int64_t ternary_packed_row_bytes(int64_t cols) { return (cols + 3) / 4; }
void ternary_pack_rows(uint8_t* out, const int8_t* q, int64_t rows, int64_t cols);
void ternary_unpack_rows(int8_t* q, const uint8_t* in, int64_t rows, int64_t cols);

}  // namespace tritter
