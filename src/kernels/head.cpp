#include "kernels/head.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/nn.h"
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
  if (w.format == HeadFormat::I8) {
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
  if (ctx.kernels == KernelTier::Reference) return ref::lm_head_forward(logits, h, N, w, V, D, hq, hs);
  const KernelTier tier = ternary_kernel_tier(ctx);  // the resolved SIMD level (throws for an unsupported force)
  std::vector<int32_t> hsum(N, 0);
  if (w.format == HeadFormat::I8) {
    quantize_activations(ctx, hq, hs, h, N, D);
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

}  // namespace tritter
