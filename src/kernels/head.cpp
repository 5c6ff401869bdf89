#include "kernels/head.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/nn.h"
#include "kernels/parallel.h"
#include "kernels/parallel_chunks.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"
#include "kernels/ternary_matmul.h"

namespace tritter {

namespace {

constexpr int64_t kRowBlock = 64;  // vocabulary rows per work item

// Bodies compiled once per ISA by the target wrappers below (always_inline takes the caller's target). Plain loops;
// the int8 one is the fallback without AVX2 (the SIMD ones are cpu/head_avx2.cpp and cpu/head_avx512vnni.cpp) and
// has their form: the weights' sign bit flipped (w ^ 0x80 = w + 128 as u8), 128·Σx subtracted.
__attribute__((always_inline)) inline void rows_i8_body(float* logits, const int8_t* hq, const float* hs,
                                                        const int32_t* hsum, int64_t N, const int8_t* w,
                                                        const float* row_scale, int64_t v0, int64_t v1, int64_t V,
                                                        int64_t D) {
  for (int64_t v = v0; v < v1; ++v) {
    const int8_t* wr = w + v * D;
    for (int64_t n = 0; n < N; ++n) {
      const int8_t* xr = hq + n * D;
      int32_t acc = 0;
      for (int64_t i = 0; i < D; ++i) acc += static_cast<int32_t>(static_cast<uint8_t>(wr[i] ^ 0x80)) * xr[i];
      logits[n * V + v] = static_cast<float>(acc - 128 * hsum[n]) * row_scale[v] / hs[n];
    }
  }
}

// I4 rows in the layout of head.h: per group the exact Σ q·x, times k_g, summed exactly over the row (head.h: below
// 2^31); the int8 head's epilogue.
__attribute__((always_inline)) inline void rows_i4_body(float* logits, const int8_t* hq, const float* hs, int64_t N,
                                                        const uint8_t* q4, const uint8_t* mult,
                                                        const float* row_scale, int64_t v0, int64_t v1, int64_t V,
                                                        int64_t D) {
  const int64_t G = head_i4_groups(D), row_bytes = head_i4_row_bytes(D);
  for (int64_t v = v0; v < v1; ++v) {
    const uint8_t* wr = q4 + v * row_bytes;
    const uint8_t* k = mult + v * G;
    for (int64_t n = 0; n < N; ++n) {
      const int8_t* xr = hq + n * D;
      int32_t acc = 0;
      for (int64_t g = 0; g < G; ++g) acc += static_cast<int32_t>(k[g]) * head_i4_group_dot(wr, xr, g, D);
      logits[n * V + v] = static_cast<float>(acc) * row_scale[v] / hs[n];
    }
  }
}

__attribute__((always_inline)) inline void rows_f32_body(float* logits, const float* h, int64_t N, const float* w,
                                                         int64_t v0, int64_t v1, int64_t V, int64_t D) {
  for (int64_t v = v0; v < v1; ++v) {
    const float* wr = w + v * D;
    for (int64_t n = 0; n < N; ++n) {
      const float* hr = h + n * D;
      float acc[16] = {};
      int64_t i = 0;
      for (; i + 16 <= D; i += 16) {
        for (int k = 0; k < 16; ++k) acc[k] += hr[i + k] * wr[i + k];
      }
      float tail = 0.0f;
      for (; i < D; ++i) tail += hr[i] * wr[i];
      for (int s = 8; s >= 1; s /= 2) {
        for (int k = 0; k < s; ++k) acc[k] += acc[k + s];
      }
      logits[n * V + v] = acc[0] + tail;
    }
  }
}

#define TRITTER_HEAD_I8(SUFFIX, TARGET)                                                                           \
  TARGET void rows_i8_##SUFFIX(float* l, const int8_t* hq, const float* hs, const int32_t* hsum, int64_t N,       \
                               const int8_t* w, const float* rs, int64_t v0, int64_t v1, int64_t V, int64_t D) {  \
    rows_i8_body(l, hq, hs, hsum, N, w, rs, v0, v1, V, D);                                                        \
  }
#define TRITTER_HEAD_F32(SUFFIX, TARGET)                                                                          \
  TARGET void rows_f32_##SUFFIX(float* l, const float* h, int64_t N, const float* w, int64_t v0, int64_t v1,      \
                                int64_t V, int64_t D) {                                                           \
    rows_f32_body(l, h, N, w, v0, v1, V, D);                                                                      \
  }
#define TRITTER_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,bmi2")))
// The int8 head's SIMD bodies are hand-written: GCC's code for this loop ran ~7 GMAC/s per core with AVX2 and
// ~38 with VNNI (a horizontal sum per row and token).
TRITTER_HEAD_I8(generic, )
void rows_i4_generic(float* l, const int8_t* hq, const float* hs, int64_t N, const uint8_t* q4, const uint8_t* k,
                     const float* rs, int64_t v0, int64_t v1, int64_t V, int64_t D) {
  rows_i4_body(l, hq, hs, N, q4, k, rs, v0, v1, V, D);
}
TRITTER_HEAD_F32(generic, )
TRITTER_HEAD_F32(avx2, __attribute__((target("avx2,fma,f16c,bmi2"))))
TRITTER_HEAD_F32(vnni, TRITTER_VNNI_TARGET)
#undef TRITTER_VNNI_TARGET
#undef TRITTER_HEAD_F32
#undef TRITTER_HEAD_I8

struct HeadJob {
  const HeadWeights* w;
  float* logits;
  const float* h;
  const int8_t* hq;
  const float* hs;
  const int32_t* hsum;
  int64_t N, V, D;
  KernelTier tier;
  int64_t blocks;
};

// Vocabulary rows of blocks [blocks·chunk/chunks, blocks·(chunk+1)/chunks) for every token.
void head_chunk(void* p, int64_t chunk, int64_t chunks) {
  const HeadJob& j = *static_cast<const HeadJob*>(p);
  const HeadWeights& w = *j.w;
  const int64_t v0 = std::min(j.V, j.blocks * chunk / chunks * kRowBlock);
  const int64_t v1 = std::min(j.V, j.blocks * (chunk + 1) / chunks * kRowBlock);
  if (v0 >= v1) return;
  if (w.format == HeadFormat::I4) {
    if (j.tier == KernelTier::Avx512Vnni) {
      cpu::head_i4_rows_avx512vnni(j.logits, j.hq, j.hs, j.N, w.q4, w.mult, w.row_scale, v0, v1, j.V, j.D);
    } else if (j.tier == KernelTier::Avx2) {
      cpu::head_i4_rows_avx2(j.logits, j.hq, j.hs, j.N, w.q4, w.mult, w.row_scale, v0, v1, j.V, j.D);
    } else {
      rows_i4_generic(j.logits, j.hq, j.hs, j.N, w.q4, w.mult, w.row_scale, v0, v1, j.V, j.D);
    }
  } else if (w.format == HeadFormat::I8) {
    if (j.tier == KernelTier::Avx512Vnni) {
      cpu::head_i8_rows_avx512vnni(j.logits, j.hq, j.hs, j.hsum, j.N, w.i8, w.row_scale, v0, v1, j.V, j.D);
    } else if (j.tier == KernelTier::Avx2) {
      cpu::head_i8_rows_avx2(j.logits, j.hq, j.hs, j.N, w.i8, w.row_scale, v0, v1, j.V, j.D);
    } else {
      rows_i8_generic(j.logits, j.hq, j.hs, j.hsum, j.N, w.i8, w.row_scale, v0, v1, j.V, j.D);
    }
  } else if (j.tier == KernelTier::Avx512Vnni) {
    rows_f32_vnni(j.logits, j.h, j.N, w.f32, v0, v1, j.V, j.D);
  } else if (j.tier == KernelTier::Avx2) {
    rows_f32_avx2(j.logits, j.h, j.N, w.f32, v0, v1, j.V, j.D);
  } else {
    rows_f32_generic(j.logits, j.h, j.N, w.f32, v0, v1, j.V, j.D);
  }
}

}  // namespace

void lm_head_forward(const Context& ctx, float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V,
                     int64_t D, int8_t* hq, float* hs) {
  if (w.cos_scale > 0.0f) {  // cosine head: the same product on ĥ, then the scale (the KNN exit does the same)
    std::vector<float> unit(static_cast<size_t>(N * D)), r(static_cast<size_t>(N));
    l2norm_rows_forward(ctx, unit.data(), r.data(), h, N, D);
    HeadWeights plain = w;
    plain.cos_scale = 0.0f;
    lm_head_forward(ctx, logits, unit.data(), N, plain, V, D, hq, hs);
    for (int64_t i = 0; i < N * V; ++i) logits[i] *= w.cos_scale;
    return;
  }
  if (w.format == HeadFormat::I4 && head_i4_groups(D) > kHeadI4MaxGroups) {
    throw_error("LM head: a 4-bit head needs hidden_size ≤ ", kHeadI4MaxGroups * kHeadI4Group, ", found ", D);
  }
  if (ctx.kernels == KernelTier::Reference) return ref::lm_head_forward(logits, h, N, w, V, D, hq, hs);
  const KernelTier tier = ternary_kernel_tier(ctx);  // the resolved SIMD level (throws for an unsupported force)
  std::vector<int32_t> hsum(N, 0);
  if (w.format != HeadFormat::F32) quantize_activations(ctx, hq, hs, h, N, D);
  if (w.format == HeadFormat::I8) {
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < D; ++i) hsum[n] += hq[n * D + i];
    }
  }
  HeadJob job{&w, logits, h, hq, hs, hsum.data(), N, V, D, tier, (V + kRowBlock - 1) / kRowBlock};
  // Blocks of rows go out in chunks claimed from a counter (parallel_chunks.h), 4 per thread: a thread that lost
  // its core to another process finds its share taken instead of holding the step up. Tiny heads: one thread.
  const int threads = static_cast<double>(N) * V * D < double(1 << 19) ? 1 : ctx.threads;
  run_chunks(threads, std::min<int64_t>(job.blocks, int64_t{std::max(threads, 1)} * 4), head_chunk, &job);
}

void head_i4_quantize_rows(uint8_t* q4, uint8_t* mult, float* row_scale, const float* w, int64_t V, int64_t D,
                           const char* where) {
  const int64_t G = head_i4_groups(D), row_bytes = head_i4_row_bytes(D);
  if (G > kHeadI4MaxGroups) {
    throw_error(where, ": a 4-bit head needs hidden_size ≤ ", kHeadI4MaxGroups * kHeadI4Group, ", found ", D);
  }
  // Plain comparisons and a float round-to-nearest-even instead of fmax/fmin/nearbyint, which are library calls on
  // the baseline ISA (they took two thirds of a 2B-shape head's quantization at load).
  parallel_for(0, V, [&](int64_t v, int) {
    const float* row = w + v * D;
    float amax[kHeadI4MaxGroups];
    float top = 0.0f;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c0 = g * kHeadI4Group, c1 = std::min(D, c0 + kHeadI4Group);
      float m = 0.0f;
      bool finite = true;
      for (int64_t d = c0; d < c1; ++d) {
        const float a = std::fabs(row[d]);
        finite = finite && a <= std::numeric_limits<float>::max();  // false for NaN and ±inf
        m = a > m ? a : m;
      }
      if (!finite) {
        for (int64_t d = c0; d < c1; ++d) {
          if (!std::isfinite(row[d])) throw_error(where, " row ", v, " column ", d, ": found ", row[d], ", expected a finite value");
        }
      }
      amax[g] = m;
      top = m > top ? m : top;
    }
    // r so the largest group's step k·r is max|w|/7 with k = 255; ⌈⌉ keeps every group's levels within ±7 (the
    // clamp below only meets the float rounding of a ratio at 7, never a value past 7.5).
    const float r = top > 0.0f ? top / (7.0f * 255.0f) : 1.0f;
    row_scale[v] = r;
    uint8_t* q = q4 + v * row_bytes;
    std::fill(q, q + row_bytes, uint8_t{0x88});
    for (int64_t g = 0; g < G; ++g) {
      const double need = static_cast<double>(amax[g]) / (7.0 * static_cast<double>(r));
      const int k = static_cast<int>(std::clamp(std::ceil(need), 1.0, 255.0));
      mult[v * G + g] = static_cast<uint8_t>(k);
      const float step = static_cast<float>(k) * r;
      for (int64_t j = 0; j < kHeadI4Group && g * kHeadI4Group + j < D; ++j) {
        float t = row[g * kHeadI4Group + j] / step;
        t = t > 7.0f ? 7.0f : (t < -7.0f ? -7.0f : t);         // clamping to integers commutes with rounding
        const float l = (t + 0x1.8p23f) - 0x1.8p23f;             // round to nearest even, as nearbyint (|t| ≤ 7)
        const auto nib = static_cast<uint8_t>(static_cast<int>(l) + 8);
        uint8_t& b = q[16 * g + (j & 15)];
        b = j < 16 ? static_cast<uint8_t>((b & 0xF0) | nib) : static_cast<uint8_t>((b & 0x0F) | (nib << 4));
      }
    }
  });
}

void head_row_values(const HeadWeights& w, int64_t v, int64_t D, float* out) {
  switch (w.format) {
    case HeadFormat::F32:
      std::copy(w.f32 + v * D, w.f32 + (v + 1) * D, out);
      return;
    case HeadFormat::I8:
      for (int64_t d = 0; d < D; ++d) out[d] = static_cast<float>(w.i8[v * D + d]) * w.row_scale[v];
      return;
    case HeadFormat::I4: {
      const int64_t G = head_i4_groups(D);
      const uint8_t* q = w.q4 + v * head_i4_row_bytes(D);
      for (int64_t d = 0; d < D; ++d) {
        out[d] = static_cast<float>(head_i4_level(q, d)) *
                 (static_cast<float>(w.mult[v * G + d / kHeadI4Group]) * w.row_scale[v]);
      }
      return;
    }
  }
}

HeadWeights head_rows_from(const HeadWeights& w, int64_t v0, int64_t D) {
  HeadWeights part = w;
  if (part.f32) part.f32 += v0 * D;
  if (part.i8) part.i8 += v0 * D;
  if (part.row_scale) part.row_scale += v0;
  if (part.q4) part.q4 += v0 * head_i4_row_bytes(D);
  if (part.mult) part.mult += v0 * head_i4_groups(D);
  return part;
}

}  // namespace tritter
