// Portable T16 matmul body (the "scalar" tier): plain C++ over the tile layout, 16 rows per pass, for CPUs without
// AVX2 and as a second, independently written check of the layout. Same results as the reference, bit for bit.
// A T20 matrix is decoded band by band into T16 first.
#include <algorithm>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/ref/ref.h"

namespace tritter::cpu {

void t16_matmul_scalar(const T16Args& a, int64_t rb_begin, int64_t rb_end) {
  const TernaryMatrix& w = *a.w;
  const int64_t I = w.cols, O = w.rows, ncb = (I + 15) / 16;
  const bool t20 = w.layout == TernaryLayout::T20;
  std::vector<uint8_t> decoded(t20 ? static_cast<size_t>(ncb * kTernaryTileBytes) : 0);
  for (int64_t rb = rb_begin; rb < rb_end; ++rb) {
    const uint8_t* band = w.data + rb * ncb * kTernaryTileBytes;
    if (t20) {
      ternary_t20_band_to_t16(decoded.data(), w.data + rb * ((I + 19) / 20) * kTernaryTileBytes, I);
      band = decoded.data();
    }
    const int rows = static_cast<int>(std::min<int64_t>(16, O - rb * 16));
    for (int64_t n = 0; n < a.N; ++n) {
      int32_t acc[16] = {};
      const int8_t* xrow = a.xq + n * I;
      for (int64_t cb = 0; cb < ncb; ++cb) {
        const uint8_t* tile = band + cb * kTernaryTileBytes;
        const int8_t* x = xrow + cb * 16;
        const int lim = static_cast<int>(std::min<int64_t>(16, I - cb * 16));
        if (lim == 16) {
          for (int r = 0; r < 16; ++r) {
            int32_t s = 0;
            for (int c = 0; c < 4; ++c) {
              const unsigned byte = tile[4 * r + c];
              for (int j = 0; j < 4; ++j) s += (static_cast<int>((byte >> (2 * j)) & 3) - 1) * x[4 * j + c];
            }
            acc[r] += s;
          }
        } else {
          for (int r = 0; r < 16; ++r) {
            for (int col = 0; col < lim; ++col) {
              const unsigned byte = tile[4 * r + (col & 3)];
              acc[r] += (static_cast<int>((byte >> (2 * (col >> 2))) & 3) - 1) * x[col];
            }
          }
        }
      }
      if (a.acc != nullptr) {
        for (int r = 0; r < rows; ++r) a.acc[n * O + rb * 16 + r] = acc[r];
      } else {
        for (int r = 0; r < rows; ++r) {
          a.y[n * O + rb * 16 + r] = ref::ternary_epilogue(acc[r], a.x_scale[n], w.sigma);
        }
      }
    }
  }
}

}  // namespace tritter::cpu
