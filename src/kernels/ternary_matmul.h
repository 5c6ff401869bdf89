// Ternary matrix kernels: int8 activations × ternary weights (training-spec §4.2 integer form) in the kernel
// layout below, dispatched at run time over ctx.kernels (ref, scalar, AVX2 vpmaddubsw, AVX-512 VNNI vpdpbusd).
// Integer results equal kernels/ref bit for bit on every tier; the float epilogue is the same IEEE operations.
//
// Kernel layout ("T16", docs/formats.md): the (O, I) matrix is cut into 16×16 tiles; tile (rb, cb) covers rows
// 16rb..16rb+15 and columns 16cb..16cb+15 and is 64 bytes at offset (rb·ncb + cb)·64 (ncb = ceil(I/16)), so one
// band of 16 rows is contiguous. In a tile, byte b = 4r + c (r = row in tile 0..15, c = 0..3) holds the weights
// of row r at columns c, c+4, c+8, c+12 in bits 0-1, 2-3, 4-5, 6-7, with the interchange codes (−1 → 00,
// 0 → 01, +1 → 10). Padding rows and columns hold 01 (zero). Why: one 64-byte load, shifted by 0/2/4/6 and masked
// with 3, gives four vectors whose 32-bit lane r is 4 consecutive weights of row r — exactly what vpdpbusd with a
// broadcast group of 4 activations wants; 16 rows share each activation load (GEMV) and each unpacked tile is
// reused for several tokens (GEMM). Codes are used unsigned (w+1), and Σx is subtracted at the end.
//
// Second layout ("T20", 1.6 bits per weight, docs/formats.md): 16×20 tiles of 64 bytes, tile (rb, cb) at offset
// (rb·ncb + cb)·64 with ncb = ceil(I/20). Byte b = 4r + c holds the five codes u_k = w+1 of row r at columns
// c + 4k (k = 0..4) as one base-3 number v = Σ_k u_k·3^(4−k) (k = 0 the most significant digit), stored as
// q = ⌈256·v / 243⌉: q/256 is v/243 as an 8-bit fraction, so multiplying by 3 moves one digit into the integer
// part — digit k = ⌊3·p_k / 256⌋ with p_0 = q and p_{k+1} = 3·p_k mod 256. 243 of the 256 byte values are codes.
// Why: 20 % fewer bytes than T16 for a decode that reads every weight once per token, and the same lanes: p_k
// shifted nowhere is a vector whose 32-bit lane r holds row r's columns 4k..4k+3, as T16's unpacked tiles do, and
// because 3·p_k − p_{k+1} = 256·u_k, Σ u·x is (3·Σ p_k x_k − Σ p_{k+1} x_k) / 256 — two vpdpbusd on bytes that
// need only additions to form, with no digit ever extracted. Padding columns and rows hold digit 1 (zero).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/context.h"

namespace tritter {

inline constexpr int64_t kTernaryTileRows = 16;
inline constexpr int64_t kTernaryTileCols = 16;
inline constexpr int64_t kTernaryTileBytes = 64;
inline constexpr int64_t kT20TileCols = 20;

enum class TernaryLayout : uint8_t { T16, T20 };
const char* ternary_layout_name(TernaryLayout layout);  // "t16" | "t20"

// A non-owning view of a matrix in the kernel layout. sigma is σ = 1/β of training-spec §4.2 (W̃ = Wq / σ).
struct TernaryMatrix {
  const uint8_t* data;
  int64_t rows;  // O
  int64_t cols;  // I
  float sigma;
  TernaryLayout layout = TernaryLayout::T16;
};

size_t ternary_matrix_bytes(int64_t rows, int64_t cols);  // ceil(O/16)·ceil(I/16)·64
// T16 as above; T20: ceil(O/16)·ceil(I/20)·64.
size_t ternary_matrix_bytes(int64_t rows, int64_t cols, TernaryLayout layout);
// out (ternary_matrix_bytes) ← q (O, I) i8 in {−1, 0, +1} (Error otherwise). Writes every byte, padding included.
void ternary_matrix_pack(uint8_t* out, const int8_t* q, int64_t rows, int64_t cols);
// q (O, I) i8 ← packed. Throws Error on code 11.
void ternary_matrix_unpack(int8_t* q, const uint8_t* packed, int64_t rows, int64_t cols);
// Kernel layout ← interchange row packing (pack.h, ternary_pack_rows: (O, ceil(I/4)) u8), without an int8 copy.
// Throws Error on code 11. The engine's load-time repack.
void ternary_matrix_from_rows(uint8_t* out, const uint8_t* rows_packed, int64_t rows, int64_t cols);
// T20 ← T16 (the load-time change of layout): out holds ternary_matrix_bytes(rows, cols, T20).
void ternary_matrix_to_t20(uint8_t* out, const uint8_t* t16, int64_t rows, int64_t cols);
// T16 ← T20, band by band (what a file stores of a matrix run in T20).
void ternary_matrix_from_t20(uint8_t* out, const uint8_t* t20, int64_t rows, int64_t cols);
// q (O, I) i8 ← a matrix in either layout (T16: Throws Error on code 11).
void ternary_matrix_unpack(int8_t* q, const TernaryMatrix& w);
// One 16-row band of a T20 matrix (64·ceil(I/20) bytes) → the same rows in T16 (64·ceil(I/16) bytes): how the
// GEMM path runs a T20 matrix (decode a band into L1/L2, then the T16 body), where the decode costs a few % of the
// products of 64 tokens. Tiles first_tile.. only (the SIMD decoders write the ones before).
void ternary_t20_band_to_t16(uint8_t* out, const uint8_t* band, int64_t cols, int64_t first_tile = 0);
// Index of the first byte in bytes[0, n) that is not a T20 code (one of the 243 values ⌈256·v/243⌉), or −1.
int64_t ternary_t20_first_invalid(const uint8_t* bytes, size_t n);
// Digit k (0..4) of T20 byte q: ⌊3·p_k/256⌋ with p_0 = q, p_{j+1} = 3·p_j mod 256.
inline int ternary_t20_digit(unsigned q, int k) {
  for (int j = 0; j < k; ++j) q = (3 * q) & 255;
  return static_cast<int>((3 * q) >> 8);
}

// The weight at (o, i), −1/0/+1, straight from the layout (what the reference kernels read).
inline int ternary_matrix_at(const TernaryMatrix& w, int64_t o, int64_t i) {
  if (w.layout == TernaryLayout::T20) {
    const int64_t ncb = (w.cols + kT20TileCols - 1) / kT20TileCols;
    const int64_t c = i % kT20TileCols;
    const uint8_t byte = w.data[((o / kTernaryTileRows) * ncb + i / kT20TileCols) * kTernaryTileBytes +
                                4 * (o % kTernaryTileRows) + (c & 3)];
    return ternary_t20_digit(byte, static_cast<int>(c >> 2)) - 1;
  }
  const int64_t ncb = (w.cols + kTernaryTileCols - 1) / kTernaryTileCols;
  const int64_t c = i % kTernaryTileCols;
  const uint8_t byte = w.data[((o / kTernaryTileRows) * ncb + i / kTernaryTileCols) * kTernaryTileBytes +
                              4 * (o % kTernaryTileRows) + (c & 3)];
  return ((byte >> (2 * (c >> 2))) & 3) - 1;
}

// y (N, O) f32 = (xq · Wqᵀ)[n, o] / (x_scale[n] · σ): xq (N, I) i8 per-token quantized, x_scale (N).
// GEMV when N = 1, GEMM when N ≥ 2. Overwrites y; y must not alias the inputs. Threads: ctx.threads (OpenMP).
void ternary_matmul(const Context& ctx, float* y, const int8_t* xq, const float* x_scale, const TernaryMatrix& w,
                    int64_t N);
// acc (N, O) i32 = xq · Wqᵀ exactly (I < 2^23 so no int32 overflow). Overwrites acc.
void ternary_matmul_i32(const Context& ctx, int32_t* acc, const int8_t* xq, const TernaryMatrix& w, int64_t N);
// dx (N, I) f32 = dy (N, O) · Wq / σ (training backward, §4.2 dx = dy W̃), T16 only. Overwrites dx. Float sums in free order
// (the reference sums in double); see the test for the tolerance.
void ternary_matmul_t(const Context& ctx, float* dx, const float* dy, const TernaryMatrix& w, int64_t N);

// The SIMD level ctx.kernels resolves to on this CPU (Auto → the best available). Throws Error when a forced
// tier is not supported here. Exposed for tests, benchmarks and --verbose.
KernelTier ternary_kernel_tier(const Context& ctx);

}  // namespace tritter
