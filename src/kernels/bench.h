// Machine-limit probes for `tritter bench kernels` and bench/kernels_bench.cpp: a STREAM-like triad and read-only
// sum for the DRAM bandwidth, and int8 MAC throughput probes (AVX-512 VNNI vpdpbusd, AVX2 vpmaddubsw+vpaddw) for
// the compute peak, so kernel figures can be reported as shares of limits measured in the same run.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace tritter::kbench {

struct StreamResult {
  double triad_gbs = 0;  // a[i] = b[i] + s·c[i]: 3 arrays of doubles, 24 bytes per element
  double read_gbs = 0;   // Σ a[i] + b[i] over the 64-bit words: 16 bytes read per element
  uint64_t checksum = 0; // keeps the read loop live
};
// Best of `reps` passes over arrays of `bytes_per_array` bytes each, on `threads` OpenMP threads.
StreamResult measure_stream(int threads, size_t bytes_per_array, int reps);

// The triad alone, for `tritter hw detect`: arrays of max(bytes_per_array / 8, 1024) doubles, first touched by the
// threads that stream them, best of `reps`; 24 bytes per element (no write-allocate). Decimal GB/s.
double measure_triad_gbs(int threads, size_t bytes_per_array, int reps);

// One read-only pass over `bytes` at p (a sum of its 64-bit words, each thread a contiguous share, like the bands of
// a ternary GEMV): the streaming-read roof of exactly the bytes a kernel reads. Returns the checksum (keep it live).
uint64_t read_pass(const uint8_t* p, size_t bytes, int threads);

// Int8 multiply-accumulates per second (G), best of `reps`, from independent dependency chains.
double peak_vnni_gmacs(int threads, int reps);   // zmm vpdpbusd: 64 MACs per instruction
double peak_avx2_gmacs(int threads, int reps);   // ymm vpmaddubsw + vpaddw: 32 MACs per pair

// Seconds of the fastest single call of fn over ≥ min_calls calls and ≥ min_seconds. The fastest call, not the
// mean: on a shared 2-core machine a time slice lost to another process (~10 ms) would swamp a 20 µs GEMV.
double time_best(const std::function<void()>& fn, double min_seconds, int min_calls = 5);

// The same for several functions measured in alternating bursts of ~burst_seconds, so that a noisy neighbour
// hits all of them alike and their ratios stay meaningful. Returns the fastest call of each.
std::vector<double> time_best_interleaved(const std::vector<std::function<void()>>& fns, double min_seconds,
                                          double burst_seconds = 0.02);

// Fills n bytes with random valid 2-bit code bytes (no code 11), for matrices too big to pack from int8.
void fill_random_codes(uint8_t* bytes, size_t n, uint64_t seed);
// The same for the T20 layout: random bytes among its 243 codes ⌈256·v/243⌉.
void fill_random_t20_codes(uint8_t* bytes, size_t n, uint64_t seed);

}  // namespace tritter::kbench
