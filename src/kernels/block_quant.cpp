#include "kernels/block_quant.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace tritter {

namespace {
uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xff);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void check_blocks(int64_t n, int64_t block, const char* what) {
  if (n < 0 || n % block != 0) throw_error(what, ": ", n, " elements, expected a multiple of ", block);
}
}  // namespace

float f16_to_f32(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(man), -24);  // subnormal (or zero): exact
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (ax < 0x38800000u) {  // below the smallest normal half: a subnormal, round to nearest even in units of 2^-24
    const float v = std::bit_cast<float>(ax) * 16777216.0f;  // exact scaling by 2^24
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(v)));
  }
  uint32_t h = ((ax >> 13) - (112u << 10));
  const uint32_t rest = ax & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carries into the exponent correctly
  return static_cast<uint16_t>(sign | h);
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const uint32_t r = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(r >> 16);
}

void dequantize_q8_0(float* out, const uint8_t* b, int64_t n) {
  check_blocks(n, kQ8_0Block, "Q8_0");
  for (int64_t i = 0; i < n / kQ8_0Block; ++i, b += kQ8_0Bytes) {
    const float d = f16_to_f32(rd16(b));
    for (int j = 0; j < 32; ++j) *out++ = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
  }
}

void quantize_q8_0(uint8_t* b, const float* x, int64_t n) {
  check_blocks(n, kQ8_0Block, "Q8_0");
  for (int64_t i = 0; i < n / kQ8_0Block; ++i, b += kQ8_0Bytes, x += kQ8_0Block) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr16(b, f32_to_f16(d));
    for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
  }
}

void dequantize_q4_0(float* out, const uint8_t* b, int64_t n) {
  check_blocks(n, kQ4_0Block, "Q4_0");
  for (int64_t i = 0; i < n / kQ4_0Block; ++i, b += kQ4_0Bytes, out += kQ4_0Block) {
    const float d = f16_to_f32(rd16(b));
    for (int j = 0; j < 16; ++j) {
      out[j] = static_cast<float>((b[2 + j] & 0x0f) - 8) * d;
      out[j + 16] = static_cast<float>((b[2 + j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_k(float* out, const uint8_t* b, int64_t n) {
  check_blocks(n, kQkK, "Q4_K");
  for (int64_t i = 0; i < n / kQkK; ++i, b += kQ4_KBytes) {
    const float d = f16_to_f32(rd16(b)), dmin = f16_to_f32(rd16(b + 2));
    const uint8_t* s = b + 4;  // 12 bytes: 8 six-bit scales and 8 six-bit mins
    const uint8_t* q = b + 16;
    auto scale_min = [&](int j, int& sc, int& m) {
      if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
      } else {
        sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
      }
    };
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
      int sc, m;
      scale_min(is, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      scale_min(is + 1, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *out++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *out++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q6_k(float* out, const uint8_t* b, int64_t n) {
  check_blocks(n, kQkK, "Q6_K");
  for (int64_t i = 0; i < n / kQkK; ++i, b += kQ6_KBytes) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = f16_to_f32(rd16(b + 208));
    for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, out += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void tq2_0_to_codes(int8_t* codes, float* d, const uint8_t* b, int64_t n) {
  check_blocks(n, kQkK, "TQ2_0");
  for (int64_t i = 0; i < n / kQkK; ++i, b += kTq2_0Bytes, codes += kQkK) {
    d[i] = f16_to_f32(rd16(b + 64));
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 4; ++l) {
        for (int m = 0; m < 32; ++m) {
          const int q = (b[32 * h + m] >> (2 * l)) & 3;
          if (q == 3) throw_error("TQ2_0 block ", i, " element ", 128 * h + 32 * l + m, ": code 3, expected 0..2");
          codes[128 * h + 32 * l + m] = static_cast<int8_t>(q - 1);
        }
      }
    }
  }
}

void tq2_0_from_codes(uint8_t* b, const int8_t* codes, int64_t n, float d) {
  check_blocks(n, kQkK, "TQ2_0");
  for (int64_t i = 0; i < n / kQkK; ++i, b += kTq2_0Bytes, codes += kQkK) {
    std::memset(b, 0, 64);
    for (int e = 0; e < 256; ++e) {
      const int w = codes[e];
      if (w < -1 || w > 1) throw_error("TQ2_0: element ", i * kQkK + e, " is ", w, ", expected −1, 0 or +1");
      const int h = e / 128, l = (e % 128) / 32, m = e % 32;
      b[32 * h + m] = static_cast<uint8_t>(b[32 * h + m] | ((w + 1) << (2 * l)));
    }
    wr16(b + 64, f32_to_f16(d));
  }
}

void dequantize_tq2_0(float* out, const uint8_t* b, int64_t n) {
  check_blocks(n, kQkK, "TQ2_0");
  for (int64_t i = 0; i < n / kQkK; ++i, b += kTq2_0Bytes) {
    const float d = f16_to_f32(rd16(b + 64));
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) *out++ = static_cast<float>(((b[32 * h + m] >> (2 * l)) & 3) - 1) * d;
  }
}

void tq1_0_to_codes(int8_t* codes, float* d, const uint8_t* b, int64_t n) {
  check_blocks(n, kQkK, "TQ1_0");
  static const uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  auto trit = [](uint8_t byte, int k) {
    const uint8_t q = static_cast<uint8_t>(byte * kPow3[k]);
    return static_cast<int8_t>(((static_cast<uint16_t>(q) * 3) >> 8) - 1);
  };
  for (int64_t i = 0; i < n / kQkK; ++i, b += kTq1_0Bytes) {
    d[i] = f16_to_f32(rd16(b + 52));
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 32; ++m) *codes++ = trit(b[m], k);
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 16; ++m) *codes++ = trit(b[32 + m], k);
    for (int k = 0; k < 4; ++k)
      for (int m = 0; m < 4; ++m) *codes++ = trit(b[48 + m], k);
  }
}

void dequantize_tq1_0(float* out, const uint8_t* b, int64_t n) {
  check_blocks(n, kQkK, "TQ1_0");
  int8_t codes[kQkK];
  float d;
  for (int64_t i = 0; i < n / kQkK; ++i, b += kTq1_0Bytes) {
    tq1_0_to_codes(codes, &d, b, kQkK);
    for (int e = 0; e < kQkK; ++e) *out++ = static_cast<float>(codes[e]) * d;
  }
}

}  // namespace tritter
