// Bodies of kernels/bench.h: STREAM-like bandwidth, int8 MAC peak probes (ISA-specific parts compiled by pragma
// for their ISA and called only after the CPU check), a best-of timer and a random code filler.
#include "kernels/bench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/target.h"

namespace tritter::kbench {

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

StreamResult measure_stream(int threads, size_t bytes_per_array, int reps) {
  const size_t n = bytes_per_array / sizeof(double);
  std::unique_ptr<double[]> a(new double[n]), b(new double[n]), c(new double[n]);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < n; ++i) {
    a[i] = 1.0;
    b[i] = 2.0;
    c[i] = 0.5;
  }
  StreamResult r;
  double* pa = a.get();
  const double* pb = b.get();
  const double* pc = c.get();
  for (int rep = 0; rep < reps; ++rep) {
    double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; ++i) pa[i] = pb[i] + 3.0 * pc[i];
    double t = now() - t0;
    r.triad_gbs = std::max(r.triad_gbs, 24.0 * static_cast<double>(n) / t / 1e9);
    // Read-only: an integer sum over the bits of two arrays (integer adds reassociate, so it vectorizes
    // without -ffast-math; a double reduction would be latency-bound, not bandwidth-bound).
    uint64_t sum = 0;
    const uint64_t* ua = reinterpret_cast<const uint64_t*>(pa);
    const uint64_t* ub = reinterpret_cast<const uint64_t*>(pb);
    t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : sum)
    for (size_t i = 0; i < n; ++i) sum += ua[i] + ub[i];
    t = now() - t0;
    r.checksum += sum;
    r.read_gbs = std::max(r.read_gbs, 16.0 * static_cast<double>(n) / t / 1e9);
  }
  return r;
}

double measure_triad_gbs(int threads, size_t bytes_per_array, int reps) {
  const int64_t n = std::max<int64_t>(static_cast<int64_t>(bytes_per_array / sizeof(double)), 1024);
  std::vector<double> a(n), b(n), c(n);
  threads = std::max(threads, 1);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {  // first touch by the threads that will stream the pages
    a[i] = 0.0;
    b[i] = 1.0;
    c[i] = 2.0;
  }
  double best = 1e30;
  const double s = 3.0;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    best = std::min(best, now() - t0);
  }
  TRITTER_CHECK(a[n - 1] == 7.0, "triad result ", a[n - 1]);
  return 24.0 * static_cast<double>(n) / std::max(best, 1e-9) / 1e9;
}

uint64_t read_pass(const uint8_t* p, size_t bytes, int threads) {
  const int64_t n = static_cast<int64_t>(bytes / sizeof(uint64_t));
  uint64_t sum = 0;
#pragma omp parallel for num_threads(std::max(threads, 1)) schedule(static) reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t v;
    std::memcpy(&v, p + 8 * i, 8);
    sum += v;
  }
  return sum;
}

double time_best(const std::function<void()>& fn, double min_seconds, int min_calls) {
  fn();  // warm caches and pages
  double best = 1e30;
  const double start = now();
  for (int calls = 0; calls < min_calls || now() - start < min_seconds; ++calls) {
    const double t0 = now();
    fn();
    best = std::min(best, now() - t0);
  }
  return best;
}

std::vector<double> time_best_interleaved(const std::vector<std::function<void()>>& fns, double min_seconds,
                                          double burst_seconds) {
  std::vector<double> best(fns.size(), 1e30);
  for (const auto& fn : fns) fn();  // warm
  const double start = now();
  do {
    for (size_t k = 0; k < fns.size(); ++k) {
      const double b0 = now();
      int calls = 0;
      do {
        const double t0 = now();
        fns[k]();
        best[k] = std::min(best[k], now() - t0);
        ++calls;
      } while (calls < 2 || now() - b0 < burst_seconds);
    }
  } while (now() - start < min_seconds);
  return best;
}

void fill_random_codes(uint8_t* bytes, size_t n, uint64_t seed) {
  uint8_t valid[81];
  for (int g = 0, v; g < 81; ++g) {
    v = g;
    uint8_t byte = 0;
    for (int j = 0; j < 4; ++j, v /= 3) byte |= static_cast<uint8_t>((v % 3) << (2 * j));
    valid[g] = byte;
  }
  Rng rng(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t r = rng.next_u64();
    for (int k = 0; k < 8; ++k, r >>= 8) bytes[i + k] = valid[(r & 0xFF) % 81];
  }
  for (; i < n; ++i) bytes[i] = valid[rng.next_below(81)];
}

void fill_random_t20_codes(uint8_t* bytes, size_t n, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>((256 * rng.next_below(243) + 242) / 243);
}

}  // namespace tritter::kbench

#if defined(__x86_64__)
#include <immintrin.h>

TRITTER_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni,avx2")

namespace tritter::kbench {

namespace {
constexpr int64_t kIters = 1 << 22;

// Inline asm so the accumulators stay in registers: 24 independent zmm vpdpbusd chains per iteration.
double vnni_probe_thread() {
  int64_t it = kIters;
  __asm__ volatile(
      "1:\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm12\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm13\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm14\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm15\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm16\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm17\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm18\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm19\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm20\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm21\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm22\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm23\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(it)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31", "cc");
  return 0.0;
}

// 6 independent vpmaddubsw → vpaddw pairs per step (the int16-accumulating TQ2_0 / I2_S inner loop), 2 steps.
double avx2_probe_thread() {
  int64_t it = kIters;
  __asm__ volatile(
      "1:\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm0\n\t"
      "vpaddw %%ymm0, %%ymm6, %%ymm6\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm1\n\t"
      "vpaddw %%ymm1, %%ymm7, %%ymm7\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm2\n\t"
      "vpaddw %%ymm2, %%ymm8, %%ymm8\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm3\n\t"
      "vpaddw %%ymm3, %%ymm9, %%ymm9\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm4\n\t"
      "vpaddw %%ymm4, %%ymm10, %%ymm10\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm5\n\t"
      "vpaddw %%ymm5, %%ymm11, %%ymm11\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm0\n\t"
      "vpaddw %%ymm0, %%ymm6, %%ymm6\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm1\n\t"
      "vpaddw %%ymm1, %%ymm7, %%ymm7\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm2\n\t"
      "vpaddw %%ymm2, %%ymm8, %%ymm8\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm3\n\t"
      "vpaddw %%ymm3, %%ymm9, %%ymm9\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm4\n\t"
      "vpaddw %%ymm4, %%ymm10, %%ymm10\n\t"
      "vpmaddubsw %%ymm14, %%ymm15, %%ymm5\n\t"
      "vpaddw %%ymm5, %%ymm11, %%ymm11\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(it)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm14", "xmm15", "cc");
  return 0.0;
}

double probe(int threads, int reps, double (*body)(), double macs_per_thread) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    volatile double sink = 0;
    const double t0 = now();
#pragma omp parallel num_threads(threads)
    { sink = sink + body(); }
    const double t = now() - t0;
    best = std::max(best, macs_per_thread * threads / t / 1e9);
  }
  return best;
}
}  // namespace

double peak_vnni_gmacs(int threads, int reps) { return probe(threads, reps, vnni_probe_thread, 24.0 * 64 * static_cast<double>(kIters)); }
double peak_avx2_gmacs(int threads, int reps) { return probe(threads, reps, avx2_probe_thread, 12.0 * 32 * static_cast<double>(kIters)); }

}  // namespace tritter::kbench
TRITTER_TARGET_END
#else
namespace tritter::kbench {
double peak_vnni_gmacs(int, int) { return 0; }
double peak_avx2_gmacs(int, int) { return 0; }
}  // namespace tritter::kbench
#endif
