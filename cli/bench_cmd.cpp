// `tritter bench`: the parent of the benchmark subcommands (others attach `bench model`, `bench train` through
// bench_command()), and `tritter bench kernels`: the ternary kernels on the BitNet-2B matrix shapes, GEMV and
// GEMM, per ISA and thread count, next to limits measured in the same run (STREAM-like triad, int8 MAC peak) and
// an in-run llama.cpp-TQ2_0-style baseline. Speed is reported as ratios from one run (the machine is shared).
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/bench.h"
#include "kernels/pack.h"
#include "kernels/quantize.h"
#include "kernels/ternary_matmul.h"
#include "kernels/tq2_baseline.h"

namespace tritter::cli {

CLI::App& bench_command(CLI::App& app) {
  try {
    return *app.get_subcommand("bench");
  } catch (const CLI::OptionNotFound&) {
    CLI::App* bench = app.add_subcommand("bench", "Benchmarks: kernels (and model/train where built)");
    bench->require_subcommand(1);
    return *bench;
  }
}

namespace {

struct BenchKernelsOptions {
  double min_time = 0.3;   // seconds per configuration
  int dram_mib = 256;      // DRAM-resident GEMV matrix size
  int stream_mib = 128;    // each of the three STREAM arrays
  std::string threads_list = "1,2";
  bool quick = false;
};

std::vector<int> parse_int_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    try {
      out.push_back(std::stoi(item));
    } catch (...) {
      throw_error("--threads-list: '", item, "': expected a comma-separated list of thread counts");
    }
    if (out.back() <= 0) throw_error("--threads-list: found ", out.back(), ", expected counts >= 1");
  }
  return out;
}

struct Activations {
  std::vector<int8_t> xq;
  std::vector<float> scale;
};

Activations make_activations(int64_t N, int64_t I, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(N * I));
  for (auto& v : x) v = rng.normal();
  Activations a;
  a.xq.resize(x.size());
  a.scale.resize(static_cast<size_t>(N));
  quantize_activations(a.xq.data(), a.scale.data(), x.data(), N, I);
  return a;
}

struct Row {
  std::string shape, kernel;
  int64_t N;
  int threads;
  double seconds, gmacs;
};

void print_row(const Row& r, double peak, double baseline_gmacs) {
  std::printf("%-10s %4lld %3d  %-12s %10.1f %9.1f %6.1f%%", r.shape.c_str(), static_cast<long long>(r.N),
              r.threads, r.kernel.c_str(), r.seconds * 1e6, r.gmacs, 100.0 * r.gmacs / peak);
  if (baseline_gmacs > 0) std::printf(" %7.2fx", r.gmacs / baseline_gmacs);
  std::printf("\n");
  std::fflush(stdout);
}

void run_bench_kernels(const GlobalOptions& global, const BenchKernelsOptions& opt) {
  auto ctx = make_context(global);
  const std::vector<int> thread_counts = parse_int_list(opt.threads_list);
  Context& c = *ctx;
  const KernelTier requested = c.kernels;
  const KernelTier best = ternary_kernel_tier(c);
  const bool has_vnni = best == KernelTier::Avx512Vnni;
  const bool has_avx2 = has_vnni || best == KernelTier::Avx2;
  std::vector<KernelTier> tiers;
  if (requested != KernelTier::Auto) {
    tiers.push_back(requested);
  } else {
    if (has_vnni) tiers.push_back(KernelTier::Avx512Vnni);
    if (has_avx2) tiers.push_back(KernelTier::Avx2);
    tiers.push_back(KernelTier::Scalar);
  }
  std::printf("tritter bench kernels: CPU '%s', %d logical cores, best SIMD %s\n", c.cpu.model_name.c_str(),
              c.cpu.logical_cores, best_simd_level(c.cpu).c_str());

  // Machine limits, measured now.
  std::vector<kbench::StreamResult> stream;
  std::vector<double> peak;
  for (int t : thread_counts) {
    stream.push_back(kbench::measure_stream(t, static_cast<size_t>(opt.stream_mib) << 20, 5));
    const double pv = has_vnni ? kbench::peak_vnni_gmacs(t, 3) : 0.0;
    const double pa = has_avx2 ? kbench::peak_avx2_gmacs(t, 3) : 0.0;
    peak.push_back(std::max({pv, pa, 1.0}));
    std::printf("limits, %d thread(s): STREAM triad %.1f GB/s, read %.1f GB/s; int8 MAC peak: vpdpbusd %.0f GMAC/s, "
                "vpmaddubsw+vpaddw %.0f GMAC/s\n", t, stream.back().triad_gbs, stream.back().read_gbs, pv, pa);
  }

  struct Shape {
    int64_t O, I;
  };
  std::vector<Shape> shapes = {{2560, 2560}, {6912, 2560}, {2560, 6912}};
  if (opt.quick) shapes.resize(1);
  std::printf("\ncache-resident matrices (O x I), GMAC/s = O·I·N / time (for N = 1: G ternary weights/s);\n"
              "%% of the int8 MAC peak above; 'vs tq2' = ratio to the llama.cpp-TQ2_0-style kernel, same config\n");
  std::printf("%-10s %4s %3s  %-12s %10s %9s %7s %8s\n", "shape", "N", "thr", "kernel", "time_us", "GMAC/s",
              "%peak", "vs tq2");
  for (const Shape& s : shapes) {
    std::vector<uint8_t> packed(ternary_matrix_bytes(s.O, s.I));
    kbench::fill_random_codes(packed.data(), packed.size(), 1);
    const TernaryMatrix w{packed.data(), s.O, s.I, 1.0f};
    std::vector<baseline::Tq2Block> tq2;
    if (has_avx2) {
      std::vector<int8_t> q(static_cast<size_t>(s.O * s.I));
      ternary_matrix_unpack(q.data(), packed.data(), s.O, s.I);
      tq2 = baseline::tq2_pack(q.data(), s.O, s.I);
    }
    const std::string name = std::to_string(s.O) + "x" + std::to_string(s.I);
    for (int64_t N : {int64_t{1}, int64_t{128}}) {
      const Activations act = make_activations(N, s.I, 2);
      std::vector<float> y(static_cast<size_t>(N * s.O));
      const auto q8k = has_avx2 ? baseline::q8k_from_int8(act.xq.data(), act.scale.data(), N, s.I)
                                : std::vector<baseline::Q8KBlock>{};
      for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
        const int t = thread_counts[ti];
        const double macs = static_cast<double>(s.O) * s.I * N;
        double base = 0;
        if (has_avx2) {
          const double sec = kbench::time_best(
              [&] { baseline::tq2_gemm_avx2(y.data(), tq2.data(), q8k.data(), s.O, s.I, N, t); }, opt.min_time);
          base = macs / sec / 1e9;
          print_row({name, "tq2-baseline", N, t, sec, base}, peak[ti], 0);
        }
        for (KernelTier tier : tiers) {
          if (tier == KernelTier::Scalar && N > 1) continue;  // minutes at N = 128; the GEMV shows the tier
          c.kernels = tier;
          c.threads = t;
          const double sec = kbench::time_best(
              [&] { ternary_matmul(c, y.data(), act.xq.data(), act.scale.data(), w, N); },
              tier == KernelTier::Scalar ? opt.min_time / 3 : opt.min_time);
          print_row({name, kernel_tier_name(tier), N, t, sec, macs / sec / 1e9}, peak[ti], base);
        }
      }
    }
  }

  // DRAM-resident GEMV: a matrix many times the L3, read once per call.
  const int64_t I = 8192;
  const int64_t O = std::max<int64_t>(16, (int64_t{opt.dram_mib} << 20) / (I / 4) / 16 * 16);
  std::vector<uint8_t> big(ternary_matrix_bytes(O, I));
  kbench::fill_random_codes(big.data(), big.size(), 3);
  const TernaryMatrix wb{big.data(), O, I, 1.0f};
  const Activations act = make_activations(1, I, 4);
  std::vector<float> y(static_cast<size_t>(O));
  std::printf("\nDRAM-resident GEMV: %lld x %lld (%.0f MiB packed), share of the bandwidth measured above\n",
              static_cast<long long>(O), static_cast<long long>(I), static_cast<double>(big.size()) / (1 << 20));
  std::printf("%-12s %3s %10s %9s %8s %9s %9s\n", "kernel", "thr", "time_us", "GB/s", "Gw/s", "%triad", "%read");
  for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
    for (KernelTier tier : tiers) {
      if (tier == KernelTier::Scalar) continue;
      c.kernels = tier;
      c.threads = thread_counts[ti];
      const double sec = kbench::time_best([&] { ternary_matmul(c, y.data(), act.xq.data(), act.scale.data(), wb, 1); },
                                           std::max(opt.min_time, 0.5));
      const double gbs = static_cast<double>(big.size()) / sec / 1e9;
      std::printf("%-12s %3d %10.1f %9.1f %8.1f %8.1f%% %8.1f%%\n", kernel_tier_name(tier), thread_counts[ti],
                  sec * 1e6, gbs, static_cast<double>(O) * I / sec / 1e9, 100 * gbs / stream[ti].triad_gbs,
                  100 * gbs / stream[ti].read_gbs);
    }
  }
  c.kernels = requested;
}

}  // namespace

void add_bench_command(CLI::App& app, GlobalOptions& global) {
  CLI::App& bench = bench_command(app);
  auto opt = std::make_shared<BenchKernelsOptions>();
  CLI::App* k = bench.add_subcommand("kernels", "Ternary GEMV/GEMM throughput vs memory bandwidth and int8 peak");
  k->add_option("--min-time", opt->min_time, "Seconds spent per configuration")->capture_default_str();
  k->add_option("--dram-mib", opt->dram_mib, "Size of the DRAM-resident GEMV matrix in MiB")->capture_default_str()
      ->check(CLI::Range(16, 8192));
  k->add_option("--stream-mib", opt->stream_mib, "Size of each STREAM array in MiB (several times the L3)")
      ->capture_default_str()->check(CLI::Range(1, 8192));
  k->add_option("--threads-list", opt->threads_list, "Thread counts to run, comma-separated")->capture_default_str();
  k->add_flag("--quick", opt->quick, "Only the 2560x2560 shape");
  k->callback([&global, opt] { run_bench_kernels(global, *opt); });
}

}  // namespace tritter::cli
