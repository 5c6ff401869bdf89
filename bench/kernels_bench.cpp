// Google Benchmark for the ternary kernels: T16 GEMV/GEMM per tier on the BitNet-2B shapes next to the in-run
// llama.cpp-TQ2_0-style baseline, the transposed product, and the float ops. Counters: GMAC/s (= G ternary
// weights/s for N = 1). `tritter bench kernels` prints the same kernels against measured bandwidth and int8 peak.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/context.h"
#include "core/rng.h"
#include "kernels/bench.h"
#include "kernels/ops.h"
#include "kernels/pack.h"
#include "kernels/quantize.h"
#include "kernels/ternary_matmul.h"
#include "kernels/tq2_baseline.h"

namespace tritter {
namespace {

struct Fixture {
  std::vector<uint8_t> packed;
  std::vector<int8_t> xq;
  std::vector<float> scale;
  TernaryMatrix w{};
  Fixture(int64_t O, int64_t I, int64_t N) {
    packed.resize(ternary_matrix_bytes(O, I));
    kbench::fill_random_codes(packed.data(), packed.size(), 1);
    w = {packed.data(), O, I, 1.0f};
    Rng rng(2);
    std::vector<float> x(static_cast<size_t>(N * I));
    for (auto& v : x) v = rng.normal();
    xq.resize(x.size());
    scale.resize(static_cast<size_t>(N));
    quantize_activations(xq.data(), scale.data(), x.data(), N, I);
  }
};

void set_rate(benchmark::State& state, double macs) {
  state.counters["GMAC/s"] = benchmark::Counter(macs / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: tier (KernelTier as int), O, I, N, threads.
void BM_TernaryMatmul(benchmark::State& state) {
  Context ctx;
  ctx.kernels = static_cast<KernelTier>(state.range(0));
  ctx.threads = static_cast<int>(state.range(4));
  const int64_t O = state.range(1), I = state.range(2), N = state.range(3);
  try {
    ternary_kernel_tier(ctx);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  Fixture f(O, I, N);
  std::vector<float> y(static_cast<size_t>(N * O));
  for (auto _ : state) {
    ternary_matmul(ctx, y.data(), f.xq.data(), f.scale.data(), f.w, N);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(kernel_tier_name(ctx.kernels));
  set_rate(state, static_cast<double>(O) * I * N);
}

// Args: O, I, N, threads.
void BM_Tq2Baseline(benchmark::State& state) {
  Context probe;
  if (!probe.cpu.avx2) {
    state.SkipWithError("no AVX2");
    return;
  }
  const int64_t O = state.range(0), I = state.range(1), N = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  Fixture f(O, I, N);
  std::vector<int8_t> q(static_cast<size_t>(O * I));
  ternary_matrix_unpack(q.data(), f.packed.data(), O, I);
  const auto w = baseline::tq2_pack(q.data(), O, I);
  const auto x = baseline::q8k_from_int8(f.xq.data(), f.scale.data(), N, I);
  std::vector<float> y(static_cast<size_t>(N * O));
  for (auto _ : state) {
    baseline::tq2_gemm_avx2(y.data(), w.data(), x.data(), O, I, N, threads);
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, static_cast<double>(O) * I * N);
}

void BM_TernaryMatmulT(benchmark::State& state) {
  Context ctx;
  ctx.threads = static_cast<int>(state.range(3));
  const int64_t O = state.range(0), I = state.range(1), N = state.range(2);
  Fixture f(O, I, 1);
  Rng rng(3);
  std::vector<float> dy(static_cast<size_t>(N * O)), dx(static_cast<size_t>(N * I));
  for (auto& v : dy) v = rng.normal();
  for (auto _ : state) {
    ternary_matmul_t(ctx, dx.data(), dy.data(), f.w, N);
    benchmark::DoNotOptimize(dx.data());
  }
  set_rate(state, static_cast<double>(O) * I * N);
}

void shapes(benchmark::internal::Benchmark* b, bool with_tier) {
  const int64_t dims[3][2] = {{2560, 2560}, {6912, 2560}, {2560, 6912}};
  for (int tier : {static_cast<int>(KernelTier::Avx512Vnni), static_cast<int>(KernelTier::Avx2)}) {
    for (auto& d : dims) {
      for (int64_t N : {1, 128}) {
        for (int64_t t : {1, 2}) {
          if (with_tier) {
            b->Args({tier, d[0], d[1], N, t});
          } else {
            b->Args({d[0], d[1], N, t});
          }
        }
      }
    }
    if (!with_tier) break;
  }
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_TernaryMatmul)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, true); });
BENCHMARK(BM_Tq2Baseline)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, false); });
BENCHMARK(BM_TernaryMatmulT)->Args({2560, 2560, 128, 1})->Args({2560, 6912, 128, 2})->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_RmsnormQuantize(benchmark::State& state) {
  const int64_t N = state.range(0), n = state.range(1);
  Rng rng(4);
  std::vector<float> x(static_cast<size_t>(N * n)), g(static_cast<size_t>(n), 1.0f), scale(static_cast<size_t>(N));
  for (auto& v : x) v = rng.normal();
  std::vector<int8_t> xq(x.size());
  for (auto _ : state) {
    rmsnorm_quantize(xq.data(), scale.data(), x.data(), g.data(), N, n, 1e-5f);
    benchmark::DoNotOptimize(xq.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * N * n * 4);
}
BENCHMARK(BM_RmsnormQuantize)->Args({1, 2560})->Args({128, 2560});

void BM_SoftmaxRows(benchmark::State& state) {
  const int64_t rows = state.range(0), n = state.range(1);
  Rng rng(5);
  std::vector<float> x0(static_cast<size_t>(rows * n));
  for (auto& v : x0) v = rng.normal();
  std::vector<float> x = x0;
  for (auto _ : state) {
    softmax_rows(x.data(), rows, n);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * rows * n * 4);
}
BENCHMARK(BM_SoftmaxRows)->Args({20, 4096});

}  // namespace
}  // namespace tritter

namespace tritter {
namespace {

// Load-time repack interchange rows → T16 (what an engine pays per weight at model load), and int8 → T16.
void BM_TernaryMatrixFromRows(benchmark::State& state) {
  const int64_t O = state.range(0), I = state.range(1);
  std::vector<uint8_t> rows(static_cast<size_t>(O * ternary_packed_row_bytes(I)));
  kbench::fill_random_codes(rows.data(), rows.size(), 6);
  std::vector<uint8_t> out(ternary_matrix_bytes(O, I));
  for (auto _ : state) {
    ternary_matrix_from_rows(out.data(), rows.data(), O, I);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_TernaryMatrixFromRows)->Args({6912, 2560})->Unit(benchmark::kMillisecond);

void BM_TernaryMatrixPack(benchmark::State& state) {
  const int64_t O = state.range(0), I = state.range(1);
  std::vector<uint8_t> packed(ternary_matrix_bytes(O, I));
  kbench::fill_random_codes(packed.data(), packed.size(), 7);
  std::vector<int8_t> q(static_cast<size_t>(O * I));
  ternary_matrix_unpack(q.data(), packed.data(), O, I);
  for (auto _ : state) {
    ternary_matrix_pack(packed.data(), q.data(), O, I);
    benchmark::DoNotOptimize(packed.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * O * I);
}
BENCHMARK(BM_TernaryMatrixPack)->Args({6912, 2560})->Unit(benchmark::kMillisecond);

// The load-time change to the 1.6-bit layout and back (bytes: the T16 side).
void BM_TernaryMatrixToT20(benchmark::State& state) {
  const int64_t O = state.range(0), I = state.range(1);
  std::vector<uint8_t> t16(ternary_matrix_bytes(O, I)), t20(ternary_matrix_bytes(O, I, TernaryLayout::T20));
  kbench::fill_random_codes(t16.data(), t16.size(), 8);
  for (auto _ : state) {
    ternary_matrix_to_t20(t20.data(), t16.data(), O, I);
    benchmark::DoNotOptimize(t20.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(t16.size()));
}
BENCHMARK(BM_TernaryMatrixToT20)->Args({6912, 2560})->Unit(benchmark::kMillisecond);

void BM_TernaryMatrixFromT20(benchmark::State& state) {
  const int64_t O = state.range(0), I = state.range(1);
  std::vector<uint8_t> t16(ternary_matrix_bytes(O, I)), t20(ternary_matrix_bytes(O, I, TernaryLayout::T20));
  kbench::fill_random_t20_codes(t20.data(), t20.size(), 9);
  for (auto _ : state) {
    ternary_matrix_from_t20(t16.data(), t20.data(), O, I);
    benchmark::DoNotOptimize(t16.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(t16.size()));
}
BENCHMARK(BM_TernaryMatrixFromT20)->Args({6912, 2560})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tritter
