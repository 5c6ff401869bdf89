// Internal: the 4-bit KV dequantizer bodies behind kernels/kv_quant.h (which picks one at run time); the tests
// call each against kernels/ref. A header of its own so that these declarations do not rebuild every SIMD file.
// 4-bit rows: element 2j in the low nibble of byte j, 2j + 1 in the high nibble.
#pragma once
#include <cstdint>

namespace tritter::cpu {

// out (d) = params[i] + level(row, i) · params[d + i].
void kv_dequantize_key_row4_scalar(float* out, const uint8_t* row, const float* params, int64_t d);
// out (d) = params[2g] + level(row, i) · params[2g + 1], g = i / gv; gv divides d.
void kv_dequantize_value_row4_scalar(float* out, const uint8_t* row, const float* params, int64_t d, int64_t gv);
// The same with AVX2 (x86-64 CPUs that have it; kv_quant_avx2.cpp).
void kv_dequantize_key_row4_avx2(float* out, const uint8_t* row, const float* params, int64_t d);
void kv_dequantize_value_row4_avx2(float* out, const uint8_t* row, const float* params, int64_t d, int64_t gv);

}  // namespace tritter::cpu
