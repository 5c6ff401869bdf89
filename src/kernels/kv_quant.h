// The KV cache's element codecs (infer/kv_cache.h owns the storage layout and calls these): asymmetric b-bit
// quantization (bits = 8: levels 0..255, one byte per element; bits = 4: levels 0..15, element 2j in the low
// nibble of byte j and 2j+1 in the high nibble) with a {min, scale} per group, and f16. Keys are quantized per
// channel over a group of G tokens, values per token over groups of gv channels. Exact per-element arithmetic:
// every implementation (and kernels/ref) writes the same bytes. No Context: the cache has none, and the
// loops are memory-bound.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tritter {

// {min, scale} of n values x[0], x[stride], ...: scale = (max − min)/levels, 1 when that is 0 or not finite.
// x̂ = min + q·scale; |x − x̂| ≤ scale/2 up to float rounding.
void kv_minmax_params(const float* x, int64_t n, int64_t stride, int levels, float* mn, float* scale);
// One key group: x (G, d) f32 → params (2, d) = {min (d), scale (d)} per channel over the G tokens, and the levels
// of token t in data + t·row_bytes (d bytes for 8 bits, d/2 for 4). Every byte of the G rows is written.
void kv_quantize_key_group(uint8_t* data, size_t row_bytes, float* params, const float* x, int64_t G, int64_t d,
                           int bits);
// out (d) = params[i] + level(row, i) · params[d + i]: one token of a quantized key group.
void kv_dequantize_key_row(float* out, const uint8_t* row, const float* params, int64_t d, int bits);
// One value row: x (d) → params (d/gv, 2) = {min, scale} per channel group, and the levels in row.
void kv_quantize_value_row(uint8_t* row, float* params, const float* x, int64_t d, int64_t gv, int bits);
// out (d) = params[2g] + level(row, i) · params[2g + 1], g = i / gv.
void kv_dequantize_value_row(float* out, const uint8_t* row, const float* params, int64_t d, int64_t gv, int bits);
// IEEE binary16, round to nearest even (the compiler's _Float16 conversion); out, in are the raw 16-bit patterns.
void kv_f16_encode(uint16_t* out, const float* x, int64_t n);
void kv_f16_decode(float* out, const uint16_t* in, int64_t n);

}  // namespace tritter
