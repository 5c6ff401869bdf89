// Bodies of kernels/bench.h: STREAM-like bandwidth, int8 MAC peak probes (ISA-specific parts compiled by pragma
// for their ISA and called only after the CPU check), a best-of timer and a random code filler.
#include "kernels/bench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "core/rng.h"

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
    double sum = 0.0;
    t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : sum)
    for (size_t i = 0; i < n; ++i) sum += pa[i] * pb[i];
    t = now() - t0;
    if (sum == 42.0) r.read_gbs += 0;  // keeps the reduction live
    r.read_gbs = std::max(r.read_gbs, 16.0 * static_cast<double>(n) / t / 1e9);
  }
  return r;
}

double time_best(const std::function<void()>& fn, double min_seconds, int batches) {
  fn();  // warm caches and pages
  double best = 1e30;
  const double per_batch = min_seconds / batches;
  for (int b = 0; b < batches; ++b) {
    int calls = 0;
    const double t0 = now();
    double t = 0;
    do {
      fn();
      ++calls;
      t = now() - t0;
    } while (t < per_batch);
    best = std::min(best, t / calls);
  }
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

}  // namespace tritter::kbench

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2")
#include <immintrin.h>

namespace tritter::kbench {

namespace {
constexpr int64_t kIters = 1 << 22;

double vnni_probe_thread() {
  __m512i acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
  for (int64_t it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) {
      acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
      __asm__ volatile("" : "+v"(acc[k]));
    }
  }
  int64_t s = 0;
  alignas(64) int32_t lanes[16];
  for (int k = 0; k < 12; ++k) {
    _mm512_store_si512(lanes, acc[k]);
    for (int32_t v : lanes) s += v;
  }
  return static_cast<double>(s);
}

double avx2_probe_thread() {
  __m256i acc[10];
  for (int k = 0; k < 10; ++k) acc[k] = _mm256_set1_epi16(static_cast<int16_t>(k));
  const __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2);
  for (int64_t it = 0; it < kIters; ++it) {
#pragma GCC unroll 10
    for (int k = 0; k < 10; ++k) {
      __m256i p = _mm256_maddubs_epi16(a, b);
      __asm__ volatile("" : "+x"(p));
      acc[k] = _mm256_add_epi16(acc[k], p);
    }
  }
  int64_t s = 0;
  alignas(32) int16_t lanes[16];
  for (int k = 0; k < 10; ++k) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[k]);
    for (int16_t v : lanes) s += v;
  }
  return static_cast<double>(s);
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

double peak_vnni_gmacs(int threads, int reps) { return probe(threads, reps, vnni_probe_thread, 12.0 * 64 * kIters); }
double peak_avx2_gmacs(int threads, int reps) { return probe(threads, reps, avx2_probe_thread, 10.0 * 32 * kIters); }

}  // namespace tritter::kbench
#pragma GCC pop_options
#else
namespace tritter::kbench {
double peak_vnni_gmacs(int, int) { return 0; }
double peak_avx2_gmacs(int, int) { return 0; }
}  // namespace tritter::kbench
#endif
