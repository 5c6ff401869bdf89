// ggml's block formats (docs/formats.md) as plain scalar codecs: the half-precision conversions, Q8_0 both ways,
// Q4_0 / Q4_K / Q6_K dequantization (embeddings and heads of other tools' files), and the ternary TQ2_0 (both
// ways) and TQ1_0 (read) blocks. Used once at load or export, never per token, so there is no SIMD tier: these
// are their own reference (tests/kernels/block_quant_test.cpp checks hand-written golden bytes). `n` counts
// elements and must be a multiple of the block (32 for Q8_0/Q4_0, 256 for the K and TQ types).
#pragma once
#include <cstdint>

namespace tritter {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even; overflow → ±inf
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even (NaN stays NaN)

inline constexpr int64_t kQ8_0Block = 32, kQ8_0Bytes = 34;    // {f16 d; i8 qs[32]}
inline constexpr int64_t kQ4_0Block = 32, kQ4_0Bytes = 18;    // {f16 d; u8 qs[16]}
inline constexpr int64_t kQkK = 256;                          // K-quant and TQ super-block
inline constexpr int64_t kQ4_KBytes = 144, kQ6_KBytes = 210;  // {f16 d, dmin; u8 scales[12]; u8 qs[128]} / {ql[128]; qh[64]; i8 sc[16]; f16 d}
inline constexpr int64_t kTq2_0Bytes = 66, kTq1_0Bytes = 54;  // {u8 qs[64]; f16 d} / {u8 qs[48]; u8 qh[4]; f16 d}

// out (n) ← blocks. ggml's dequantize_row_* element order.
void dequantize_q8_0(float* out, const uint8_t* blocks, int64_t n);
void dequantize_q4_0(float* out, const uint8_t* blocks, int64_t n);
void dequantize_q4_k(float* out, const uint8_t* blocks, int64_t n);
void dequantize_q6_k(float* out, const uint8_t* blocks, int64_t n);
void dequantize_tq2_0(float* out, const uint8_t* blocks, int64_t n);
void dequantize_tq1_0(float* out, const uint8_t* blocks, int64_t n);
// blocks (n/32 · 34 bytes) ← x (n): ggml's quantize_row_q8_0_ref (d = max|x|/127, q = round(x/d)).
void quantize_q8_0(uint8_t* blocks, const float* x, int64_t n);

// TQ2_0 with the codes apart from the scales: element 128h + 32l + m of a block sits in bits 2l..2l+1 of qs[32h+m]
// as w + 1. codes (n) i8 in {−1, 0, +1} ← blocks, d (n/256) ← each block's f16 scale. Throws Error on code 3.
void tq2_0_to_codes(int8_t* codes, float* d, const uint8_t* blocks, int64_t n);
// blocks ← codes (n) i8 in {−1, 0, +1} (Error otherwise), every block with scale d (stored as f16).
void tq2_0_from_codes(uint8_t* blocks, const int8_t* codes, int64_t n, float d);
// TQ1_0 → codes and per-block scales, as tq2_0_to_codes (base-3 digit 2 → +1; every byte value decodes).
void tq1_0_to_codes(int8_t* codes, float* d, const uint8_t* blocks, int64_t n);

}  // namespace tritter
