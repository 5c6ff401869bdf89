// KV cache codecs (kv_quant.h): the loops the cache ran inline, unchanged in arithmetic (the cache's bytes stay
// the same bit for bit), and the 4-bit dequantizers' scalar bodies (cpu/kv_dequant.h; AVX2 in cpu/kv_quant_avx2.cpp);
// kernels/ref/ref_kv_quant.cpp is the element-at-a-time reference.
#include "kernels/kv_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/kv_dequant.h"
#include "kernels/ref/ref.h"

namespace tritter {

namespace {
inline int levels_of(int bits) { return bits == 8 ? 255 : 15; }

inline int quant_level(float x, float mn, float scale, int levels) {
  const float r = std::nearbyint((x - mn) / scale);
  return static_cast<int>(std::min(std::max(r, 0.0f), static_cast<float>(levels)));
}

inline int get_level(const uint8_t* row, int64_t i, int bits) {
  if (bits == 8) return row[i];
  return (i & 1) ? row[i / 2] >> 4 : row[i / 2] & 0x0f;
}

// q (d) levels → row bytes: one per level, or two levels per byte (low nibble first).
inline void put_row(uint8_t* row, const int* q, int64_t d, int bits) {
  if (bits == 8) {
    for (int64_t i = 0; i < d; ++i) row[i] = static_cast<uint8_t>(q[i]);
  } else {
    for (int64_t i = 0; i < d; i += 2) row[i / 2] = static_cast<uint8_t>(q[i] | (q[i + 1] << 4));
  }
}
constexpr int64_t kMaxRow = 4096;  // head dims above this take the chunked path below
}  // namespace

void kv_minmax_params(const float* x, int64_t n, int64_t stride, int levels, float* mn_out, float* scale_out) {
  float mn = x[0], mx = x[0];
  for (int64_t i = 1; i < n; ++i) {
    mn = std::min(mn, x[i * stride]);
    mx = std::max(mx, x[i * stride]);
  }
  float scale = (mx - mn) / static_cast<float>(levels);
  if (!(scale > 0.0f) || !std::isfinite(scale)) scale = 1.0f;
  *mn_out = mn;
  *scale_out = scale;
}

void kv_quantize_key_group(uint8_t* data, size_t row_bytes, float* params, const float* x, int64_t G, int64_t d,
                           int bits) {
  const int levels = levels_of(bits);
  for (int64_t ch = 0; ch < d; ++ch) kv_minmax_params(x + ch, G, d, levels, &params[ch], &params[d + ch]);
  int q[kMaxRow];
  for (int64_t t = 0; t < G; ++t) {
    for (int64_t c0 = 0; c0 < d; c0 += kMaxRow) {  // kMaxRow is even, so nibble pairs never straddle chunks
      const int64_t n = std::min(kMaxRow, d - c0);
      for (int64_t i = 0; i < n; ++i) {
        q[i] = quant_level(x[t * d + c0 + i], params[c0 + i], params[d + c0 + i], levels);
      }
      put_row(data + t * row_bytes + (bits == 8 ? c0 : c0 / 2), q, n, bits);
    }
  }
}

// The dequantizers run once per cached position per step, so they stream: bits and the group fixed outside the
// inner loops, whole bytes for 4 bits (two levels each). Every path computes a + level·s per value as a multiply
// and an add (the baseline ISA has no FMA and the AVX2 path does not use it): the reference's bits.
namespace {
bool have_avx2() {
#if defined(__x86_64__)
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
#else
  return false;
#endif
}
}  // namespace

void cpu::kv_dequantize_key_row4_scalar(float* out, const uint8_t* row, const float* params, int64_t d) {
  const float* sc = params + d;
  for (int64_t j = 0; j < d / 2; ++j) {
    const int b = row[j];
    out[2 * j] = params[2 * j] + static_cast<float>(b & 0x0f) * sc[2 * j];
    out[2 * j + 1] = params[2 * j + 1] + static_cast<float>(b >> 4) * sc[2 * j + 1];
  }
  if (d & 1) out[d - 1] = params[d - 1] + static_cast<float>(get_level(row, d - 1, 4)) * sc[d - 1];
}

void cpu::kv_dequantize_value_row4_scalar(float* out, const uint8_t* row, const float* params, int64_t d,
                                          int64_t gv) {
  for (int64_t g = 0; g < d / gv; ++g) {
    const float a = params[2 * g], sc = params[2 * g + 1];
    int64_t i = g * gv;
    const int64_t end = i + gv;
    if (i & 1) {  // an odd group size starts every other group on a high nibble
      out[i] = a + static_cast<float>(get_level(row, i, 4)) * sc;
      ++i;
    }
    for (; i + 2 <= end; i += 2) {
      const int b = row[i / 2];
      out[i] = a + static_cast<float>(b & 0x0f) * sc;
      out[i + 1] = a + static_cast<float>(b >> 4) * sc;
    }
    if (i < end) out[i] = a + static_cast<float>(get_level(row, i, 4)) * sc;
  }
}

void kv_dequantize_key_row(float* out, const uint8_t* row, const float* params, int64_t d, int bits) {
  if (bits == 8) {
    for (int64_t i = 0; i < d; ++i) out[i] = params[i] + static_cast<float>(row[i]) * params[d + i];
    return;
  }
#if defined(__x86_64__)
  if (have_avx2()) return cpu::kv_dequantize_key_row4_avx2(out, row, params, d);
#endif
  cpu::kv_dequantize_key_row4_scalar(out, row, params, d);
}

void kv_quantize_value_row(uint8_t* row, float* params, const float* x, int64_t d, int64_t gv, int bits) {
  const int levels = levels_of(bits);
  int q[kMaxRow];
  for (int64_t g = 0; g < d / gv; ++g) {
    kv_minmax_params(x + g * gv, gv, 1, levels, &params[2 * g], &params[2 * g + 1]);
  }
  for (int64_t c0 = 0; c0 < d; c0 += kMaxRow) {
    const int64_t n = std::min(kMaxRow, d - c0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t g = (c0 + i) / gv;
      q[i] = quant_level(x[c0 + i], params[2 * g], params[2 * g + 1], levels);
    }
    put_row(row + (bits == 8 ? c0 : c0 / 2), q, n, bits);
  }
}

void kv_dequantize_value_row(float* out, const uint8_t* row, const float* params, int64_t d, int64_t gv, int bits) {
  if (d % gv != 0) return ref::kv_dequantize_value_row(out, row, params, d, gv, bits);  // no cache has this layout
  if (bits == 8) {
    for (int64_t g = 0; g < d / gv; ++g) {
      const float a = params[2 * g], sc = params[2 * g + 1];
      const uint8_t* r = row + g * gv;
      float* o = out + g * gv;
      for (int64_t i = 0; i < gv; ++i) o[i] = a + static_cast<float>(r[i]) * sc;
    }
    return;
  }
#if defined(__x86_64__)
  if (have_avx2()) return cpu::kv_dequantize_value_row4_avx2(out, row, params, d, gv);
#endif
  cpu::kv_dequantize_value_row4_scalar(out, row, params, d, gv);
}

#if defined(__clang__) && __clang_major__ < 15
// Clang before 15 has no _Float16 on x86-64 (without AVX512-FP16): the reference's conversion, the same bits.
void kv_f16_encode(uint16_t* out, const float* x, int64_t n) { ref::kv_f16_encode(out, x, n); }
void kv_f16_decode(float* out, const uint16_t* in, int64_t n) { ref::kv_f16_decode(out, in, n); }
#else
namespace {
// F16C (cpu/f16_f16c.cpp) when the CPU has it: without it each cast below is a library call per value.
bool have_f16c() {
#if defined(__x86_64__)
  static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return yes;
#else
  return false;
#endif
}
}  // namespace

void kv_f16_encode(uint16_t* out, const float* x, int64_t n) {
#if defined(__x86_64__)
  if (have_f16c()) return cpu::kv_f16_encode_f16c(out, x, n);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const _Float16 h = static_cast<_Float16>(x[i]);
    std::memcpy(out + i, &h, sizeof h);
  }
}

void kv_f16_decode(float* out, const uint16_t* in, int64_t n) {
#if defined(__x86_64__)
  if (have_f16c()) return cpu::kv_f16_decode_f16c(out, in, n);
#endif
  for (int64_t i = 0; i < n; ++i) {
    _Float16 h;
    std::memcpy(&h, in + i, sizeof h);
    out[i] = static_cast<float>(h);
  }
}
#endif

}  // namespace tritter
