// Reference KV cache codecs: each element's level computed and stored on its own (a nibble set by masking), and
// f16 by bit manipulation from the IEEE 754 definition instead of the compiler's conversion.
#include <cmath>
#include <cstring>

#include "kernels/ref/ref.h"

namespace tritter::ref {

namespace {
int level(float x, float mn, float scale, int levels) {
  float r = std::nearbyint((x - mn) / scale);
  if (r < 0.0f) r = 0.0f;
  if (r > static_cast<float>(levels)) r = static_cast<float>(levels);
  return static_cast<int>(r);
}
void store(uint8_t* row, int64_t i, int q, int bits) {
  if (bits == 8) {
    row[i] = static_cast<uint8_t>(q);
  } else if (i % 2 == 0) {
    row[i / 2] = static_cast<uint8_t>((row[i / 2] & 0xf0) | q);
  } else {
    row[i / 2] = static_cast<uint8_t>((row[i / 2] & 0x0f) | (q << 4));
  }
}
int load(const uint8_t* row, int64_t i, int bits) {
  if (bits == 8) return row[i];
  return i % 2 == 0 ? row[i / 2] & 0x0f : row[i / 2] >> 4;
}
}  // namespace

void kv_minmax_params(const float* x, int64_t n, int64_t stride, int levels, float* mn, float* scale) {
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    if (x[i * stride] < lo) lo = x[i * stride];
    if (x[i * stride] > hi) hi = x[i * stride];
  }
  const float s = (hi - lo) / static_cast<float>(levels);
  *mn = lo;
  *scale = (s > 0.0f && std::isfinite(s)) ? s : 1.0f;
}

void kv_quantize_key_group(uint8_t* data, size_t row_bytes, float* params, const float* x, int64_t G, int64_t d,
                           int bits) {
  const int levels = bits == 8 ? 255 : 15;
  for (int64_t ch = 0; ch < d; ++ch) kv_minmax_params(x + ch, G, d, levels, &params[ch], &params[d + ch]);
  for (int64_t t = 0; t < G; ++t) {
    for (int64_t ch = 0; ch < d; ++ch) {
      store(data + t * row_bytes, ch, level(x[t * d + ch], params[ch], params[d + ch], levels), bits);
    }
  }
}

void kv_dequantize_key_row(float* out, const uint8_t* row, const float* params, int64_t d, int bits) {
  for (int64_t i = 0; i < d; ++i) out[i] = params[i] + static_cast<float>(load(row, i, bits)) * params[d + i];
}

void kv_quantize_value_row(uint8_t* row, float* params, const float* x, int64_t d, int64_t gv, int bits) {
  const int levels = bits == 8 ? 255 : 15;
  for (int64_t g = 0; g < d / gv; ++g) kv_minmax_params(x + g * gv, gv, 1, levels, &params[2 * g], &params[2 * g + 1]);
  for (int64_t i = 0; i < d; ++i) {
    const int64_t g = i / gv;
    store(row, i, level(x[i], params[2 * g], params[2 * g + 1], levels), bits);
  }
}

void kv_dequantize_value_row(float* out, const uint8_t* row, const float* params, int64_t d, int64_t gv, int bits) {
  for (int64_t i = 0; i < d; ++i) {
    const int64_t g = i / gv;
    out[i] = params[2 * g] + static_cast<float>(load(row, i, bits)) * params[2 * g + 1];
  }
}

void kv_f16_encode(uint16_t* out, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t f;
    std::memcpy(&f, x + i, sizeof f);
    const uint32_t sign = (f >> 16) & 0x8000u;
    const int32_t exp = static_cast<int32_t>((f >> 23) & 0xff);
    uint32_t mant = f & 0x7fffffu;
    uint32_t h;
    if (exp == 0xff) {  // inf / NaN (a quiet NaN keeps its top payload bits)
      h = sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u);
    } else {
      const int32_t e = exp - 127 + 15;  // the half exponent
      if (e >= 31) {
        h = sign | 0x7c00u;  // overflow → inf
      } else if (e <= 0) {  // subnormal half (or zero): shift the full significand right
        if (e < -10) {
          h = sign;
        } else {
          mant |= 0x800000u;
          const int shift = 14 - e;  // 24-bit significand → 10-bit subnormal field
          uint32_t v = mant >> shift;
          const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
          if (rem > half || (rem == half && (v & 1))) ++v;
          h = sign | v;
        }
      } else {
        uint32_t v = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
        const uint32_t rem = mant & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (v & 1))) ++v;  // a carry into the exponent is correct (→ inf too)
        h = sign | v;
      }
    }
    out[i] = static_cast<uint16_t>(h);
  }
}

void kv_f16_decode(float* out, const uint16_t* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t h = in[i];
    const double sign = (h & 0x8000u) ? -1.0 : 1.0;
    const int e = static_cast<int>((h >> 10) & 0x1f);
    const uint32_t m = h & 0x3ffu;
    double v;
    if (e == 0) {
      v = std::ldexp(static_cast<double>(m), -24);
    } else if (e == 31) {
      v = m ? std::nan("") : INFINITY;
    } else {
      v = std::ldexp(static_cast<double>(m | 0x400u), e - 25);
    }
    out[i] = static_cast<float>(sign * v);
  }
}

}  // namespace tritter::ref
