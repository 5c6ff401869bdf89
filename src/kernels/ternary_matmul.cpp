// Public entry of the ternary matrix kernels: resolves ctx.kernels against the CPU, splits the 16-row bands of the
// T16 or T20 layout into contiguous chunks claimed by ctx.threads OpenMP threads (parallel_chunks.h) and calls the tier's
// body (cpu/matmul_*.cpp) or the reference.
#include "kernels/ternary_matmul.h"

#include <omp.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/parallel_chunks.h"
#include "kernels/ref/ref.h"

namespace tritter {

KernelTier ternary_kernel_tier(const Context& ctx) {
  const CpuFeatures& f = ctx.cpu;
  const bool vnni = f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
  const bool avx2 = f.avx2 && f.fma;
  switch (ctx.kernels) {
    case KernelTier::Auto: return vnni ? KernelTier::Avx512Vnni : avx2 ? KernelTier::Avx2 : KernelTier::Scalar;
    case KernelTier::Reference:
    case KernelTier::Scalar: return ctx.kernels;
    case KernelTier::Avx2:
      if (!avx2) throw_error("--kernels avx2: this CPU lacks AVX2/FMA: found '", best_simd_level(f), "', expected avx2");
      return ctx.kernels;
    case KernelTier::Avx512Vnni:
      if (!vnni) {
        throw_error("--kernels avx512-vnni: this CPU lacks AVX-512 VNNI (F, BW, VL, VNNI): found '",
                    best_simd_level(f), "', expected avx512-vnni");
      }
      return ctx.kernels;
  }
  return KernelTier::Scalar;
}

namespace {

void check_matrix(const TernaryMatrix& w, int64_t N, const char* where) {
  if (w.data == nullptr || w.rows <= 0 || w.cols <= 0 || N < 0) {
    throw_error(where, ": bad shape: found rows ", w.rows, ", cols ", w.cols, ", N ", N,
                ", expected a non-empty matrix and N >= 0");
  }
  if (w.cols >= (int64_t{1} << 23)) {
    throw_error(where, ": input dimension too large for exact int32 sums: found ", w.cols, ", expected < 2^23");
  }
}

// Bands per thread: contiguous ranges; one thread when the product is too small to amortize a fork. 2^21 MACs
// is 10-20 us on one VNNI thread for a cache-resident matrix; waking a sleeping worker costs 5-50 us (the most in a
// VM), so below it a second thread loses. Measured on the shipped model (D 384, products of 0.15-0.6 M MACs): at
// 2 threads, decode 1.3-2.5k tokens/s with the old 2^18, 3.3-4.6k with 2^21 (1 thread: 3.6-4.6k).
constexpr double kMinParallelMacs = double(1 << 21);

int band_threads(const Context& ctx, int64_t units, double work) {
  const int threads = static_cast<int>(std::min<int64_t>(std::max(ctx.threads, 1), units));
  return work < kMinParallelMacs ? 1 : std::max(threads, 1);
}

template <typename Body>
void omp_ranges(int threads, int64_t units, Body body) {
  if (threads <= 1) {
    body(int64_t{0}, units);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = units * t / nt, end = units * (t + 1) / nt;
    if (begin < end) body(begin, end);
  }
}

using T16Body = void (*)(const cpu::T16Args&, int64_t, int64_t);

T16Body t16_body(KernelTier tier) {
  switch (tier) {
    case KernelTier::Avx512Vnni: return cpu::t16_matmul_avx512vnni;
    case KernelTier::Avx2: return cpu::t16_matmul_avx2;
    default: return cpu::t16_matmul_scalar;
  }
}

struct T16Job {
  const cpu::T16Args* args;
  T16Body body;
  int64_t bands;
};

void t16_chunk(void* p, int64_t chunk, int64_t chunks) {
  const T16Job& job = *static_cast<const T16Job*>(p);
  const int64_t b = job.bands * chunk / chunks, e = job.bands * (chunk + 1) / chunks;
  if (b < e) job.body(*job.args, b, e);
}

// Bands go out in chunks (parallel_chunks.h): 4 per thread for a GEMV, so a thread that starts late costs at most
// a quarter of its share; 2 per thread for a GEMM, whose chunks each restage Σx.
void run_t16(const Context& ctx, KernelTier tier, const cpu::T16Args& a) {
  const int64_t nrb = (a.w->rows + kTernaryTileRows - 1) / kTernaryTileRows;
  const double work = static_cast<double>(a.w->rows) * static_cast<double>(a.w->cols) * static_cast<double>(a.N);
  const T16Body body = t16_body(tier);
  const int threads = band_threads(ctx, nrb, work);
  if (threads <= 1) return body(a, 0, nrb);
  T16Job job{&a, body, nrb};
  run_chunks(threads, std::min<int64_t>(nrb, int64_t{threads} * (a.N == 1 ? 4 : 2)), t16_chunk, &job);
}

}  // namespace

void ternary_matmul(const Context& ctx, float* y, const int8_t* xq, const float* x_scale, const TernaryMatrix& w,
                    int64_t N) {
  check_matrix(w, N, "ternary_matmul");
  const KernelTier tier = ternary_kernel_tier(ctx);
  if (N == 0) return;
  if (tier == KernelTier::Reference) return ref::ternary_matmul(y, xq, x_scale, w, N);
  run_t16(ctx, tier, cpu::T16Args{xq, &w, N, nullptr, y, x_scale});
}

void ternary_matmul_i32(const Context& ctx, int32_t* acc, const int8_t* xq, const TernaryMatrix& w, int64_t N) {
  check_matrix(w, N, "ternary_matmul_i32");
  const KernelTier tier = ternary_kernel_tier(ctx);
  if (N == 0) return;
  if (tier == KernelTier::Reference) return ref::ternary_matmul_i32(acc, xq, w, N);
  run_t16(ctx, tier, cpu::T16Args{xq, &w, N, acc, nullptr, nullptr});
}

void ternary_matmul_t(const Context& ctx, float* dx, const float* dy, const TernaryMatrix& w, int64_t N) {
  check_matrix(w, N, "ternary_matmul_t");
  if (w.layout != TernaryLayout::T16) {
    throw_error("ternary_matmul_t: a ", ternary_layout_name(w.layout), " (1.6-bit) matrix has no backward kernel: "
                "found layout t20, expected t16 (training and fine-tuning load their base in T16)");
  }
  const KernelTier tier = ternary_kernel_tier(ctx);
  if (N == 0) return;
  if (tier == KernelTier::Reference) return ref::ternary_matmul_t(dx, dy, w, N);
  const int64_t ncb = (w.cols + kTernaryTileCols - 1) / kTernaryTileCols;
  const double work = static_cast<double>(w.rows) * static_cast<double>(w.cols) * static_cast<double>(N);
  omp_ranges(band_threads(ctx, ncb, work), ncb,
                  [&](int64_t b, int64_t e) { cpu::ternary_matmul_t_cols(tier, dx, dy, w, N, b, e); });
}

}  // namespace tritter
