// `tritter bench`: the parent of the benchmark subcommands (others attach `bench model`, `bench train` through
// bench_command()), and `tritter bench kernels`: the ternary kernels on the BitNet-2B matrix shapes, GEMV and
// GEMM, per ISA and thread count, next to limits measured in the same run (STREAM-like triad, int8 MAC peak) and
// an in-run llama.cpp-TQ2_0-style baseline. Speed is reported as ratios from one run (the machine is shared).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/bench.h"
#include "kernels/head.h"
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
  int layers_mib = 128;    // each decode-layer stack (several times the L3)
  std::string threads_list = "1,2";
  bool quick = false;
};

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

struct KernelRow {
  std::string shape, kernel;
  int64_t N;
  size_t ti;  // index into the thread list
  double seconds, gmacs, baseline_gmacs;
};

struct DramRow {
  std::string kernel;
  size_t ti;
  double seconds, gbs, gws;
};

struct Limits {
  kbench::StreamResult stream;
  double vnni = 0, avx2 = 0;
  double peak() const { return std::max({vnni, avx2, 1.0}); }
};

// Bandwidth and int8 peak on `threads`; the best of this and `prev` (the machine is shared: the limits are
// measured before and after the kernels, and the best is what the kernels are compared with).
std::string fmt_gmacs(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f GMAC/s", v);
  return buf;
}

Limits measure_limits(int threads, int stream_mib, bool vnni, bool avx2, const Limits& prev) {
  Limits l = prev;
  const kbench::StreamResult s = kbench::measure_stream(threads, static_cast<size_t>(stream_mib) << 20, 5);
  l.stream.triad_gbs = std::max(l.stream.triad_gbs, s.triad_gbs);
  l.stream.read_gbs = std::max(l.stream.read_gbs, s.read_gbs);
  if (vnni) l.vnni = std::max(l.vnni, kbench::peak_vnni_gmacs(threads, 3));
  if (avx2) l.avx2 = std::max(l.avx2, kbench::peak_avx2_gmacs(threads, 3));
  return l;
}

// Decode as the engine runs it: a stack of whole layers (Q, K, V, O, Up, Gate, Down of a model shape), copies enough
// to fill layers_mib so that every call reads its matrix from DRAM, one GEMV/GEMM per matrix in layer order.
// Roof: a streaming read (read_pass) of the same bytes on the same threads, in the same sweeps as the kernels,
// so the share of the roof and the per-row ratios between N come from the same minutes.
struct LayerShape {
  std::string name;
  int64_t hidden, kv, ffn;
};

void run_decode_layers(Context& c, const BenchKernelsOptions& opt, const std::vector<int>& thread_counts) {
  std::vector<LayerShape> shapes = {{"700M-shape", 1536, 1536, 4096}, {"2B-shape", 2560, 640, 6912}};
  std::vector<int64_t> Ns = {1, 2, 4, 8, 16, 32, 64};
  if (opt.quick) {
    shapes.resize(1);
    Ns = {1, 2, 16};
  }
  std::printf("\ndecode layers, DRAM-resident: stacks of whole layers (Q, K, V, O, Up, Gate, Down), every matrix "
              "read from DRAM as in decoding,\none ternary_matmul per matrix with N tokens (--kernels %s); roof = a "
              "streaming read of the same bytes on the same threads, in the same sweeps;\ntime = layers × Σ of the "
              "fastest call per matrix of the layer; 'per row' = time per token relative to N = 1, 'x agg' = "
              "N·t(1)/t(N);\nlayout t16 (2 bits per weight) and t20 (1.6 bits) of the same layers in the same sweeps; "
              "'vs t16' = the t16 time over this row's\n",
              kernel_tier_name(ternary_kernel_tier(c)));
  std::printf("%-10s %-6s %6s %3s %4s %10s %8s %7s %8s %7s %7s\n", "shape", "layout", "MiB", "thr", "N", "time_ms",
              "GB/s", "%roof", "per row", "x agg", "vs t16");
  for (const LayerShape& s : shapes) {
    const std::vector<std::pair<int64_t, int64_t>> mats = {{s.hidden, s.hidden}, {s.kv, s.hidden},
                                                           {s.kv, s.hidden},     {s.hidden, s.hidden},
                                                           {s.ffn, s.hidden},    {s.ffn, s.hidden},
                                                           {s.hidden, s.ffn}};
    size_t layer_bytes = 0;
    for (const auto& [O, I] : mats) layer_bytes += ternary_matrix_bytes(O, I);
    const size_t layers = std::max<size_t>(1, ((size_t{static_cast<unsigned>(opt.layers_mib)} << 20) + layer_bytes - 1) /
                                                  layer_bytes);
    constexpr TernaryLayout kLayouts[] = {TernaryLayout::T16, TernaryLayout::T20};
    std::vector<uint8_t> stacks[2];
    std::vector<TernaryMatrix> ws;  // layers of t16, then the same layers in t20
    for (int li = 0; li < 2; ++li) {
      const TernaryLayout layout = kLayouts[li];
      size_t bytes = 0;
      for (const auto& [O, I] : mats) bytes += ternary_matrix_bytes(O, I, layout);
      stacks[li].resize(layers * bytes);
      if (layout == TernaryLayout::T16) kbench::fill_random_codes(stacks[li].data(), stacks[li].size(), 5);
      else kbench::fill_random_t20_codes(stacks[li].data(), stacks[li].size(), 5);
      for (size_t l = 0, off = 0; l < layers; ++l) {
        for (const auto& [O, I] : mats) {
          ws.push_back({stacks[li].data() + off, O, I, 1.0f, layout});
          off += ternary_matrix_bytes(O, I, layout);
        }
      }
    }
    const size_t per_layout = layers * mats.size();
    const Activations ah = make_activations(Ns.back(), s.hidden, 6), af = make_activations(Ns.back(), s.ffn, 7);
    std::vector<float> y(static_cast<size_t>(Ns.back() * std::max(s.hidden, s.ffn)));
    for (int t : thread_counts) {
      // Each call timed alone, the fastest per matrix of the layer kept (the machine is shared: a whole pass of
      // 20-2000 ms always loses time slices, a 50-5000 µs call often does not); a pass = Σ of those per layer.
      // Sweeps run through the whole stack (the roof's read, then each N), so every call finds its matrix in DRAM.
      uint64_t checksum = 0;
      const size_t nk = Ns.size() + 1;  // per layout: the read, then each N
      std::vector<double> best(2 * nk * mats.size(), 1e30);
      c.threads = t;
      const auto start = std::chrono::steady_clock::now();
      for (int round = 0;; ++round) {
        for (size_t k = 0; k < 2 * nk; ++k) {
          const size_t li = k / nk, kk = k % nk;
          for (size_t m = 0; m < per_layout; ++m) {
            const TernaryMatrix& w = ws[li * per_layout + m];
            const auto t0 = std::chrono::steady_clock::now();
            if (kk == 0) {
              checksum += kbench::read_pass(w.data, ternary_matrix_bytes(w.rows, w.cols, w.layout), t);
            } else {
              const Activations& a = w.cols == s.hidden ? ah : af;
              ternary_matmul(c, y.data(), a.xq.data(), a.scale.data(), w, Ns[kk - 1]);
            }
            const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            double& b = best[k * mats.size() + m % mats.size()];
            b = std::min(b, dt);
          }
        }
        const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (round >= 1 && spent > std::max(opt.min_time, 0.05) * 16) break;
      }
      std::vector<double> secs(2 * nk, 0.0);
      for (size_t k = 0; k < 2 * nk; ++k) {
        for (size_t m = 0; m < mats.size(); ++m) secs[k] += best[k * mats.size() + m] * static_cast<double>(layers);
      }
      for (size_t li = 0; li < 2; ++li) {
        const double* sl = secs.data() + li * nk;
        const double mib = static_cast<double>(stacks[li].size()) / (1 << 20);
        const double roof = static_cast<double>(stacks[li].size()) / sl[0] / 1e9;
        const char* lname = ternary_layout_name(kLayouts[li]);
        std::printf("%-10s %-6s %6.0f %3d %4s %10.3f %8.1f %7s %8s %7s %7s\n", s.name.c_str(), lname, mib, t, "read",
                    sl[0] * 1e3, roof, "100%", "", "", "");
        for (size_t k = 0; k < Ns.size(); ++k) {
          const double sec = sl[k + 1], gbs = static_cast<double>(stacks[li].size()) / sec / 1e9;
          std::printf("%-10s %-6s %6.0f %3d %4lld %10.3f %8.1f %6.1f%% %8.3f %7.2f %6.2fx\n", s.name.c_str(), lname,
                      mib, t, static_cast<long long>(Ns[k]), sec * 1e3, gbs, 100.0 * gbs / roof,
                      sec / static_cast<double>(Ns[k]) / sl[1], static_cast<double>(Ns[k]) * sl[1] / sec,
                      secs[k + 1] / sec);
        }
      }
      if (checksum == 1) std::printf(" ");  // keeps the read passes live
    }
  }
}

// The output head at decode (N = 1) in its two narrow formats, every SIMD tier, against a streaming read of the
// same bytes in the same sweeps: V = 128256 (Llama 3's vocabulary) at the 2B-shape's D = 2560, where the head is
// the largest single read of a token (the i8 head is 328 MB of the 2B-shape's 852). Random levels: the time does
// not depend on the values.
void run_decode_head(Context& c, const BenchKernelsOptions& opt, const std::vector<int>& thread_counts,
                     const std::vector<KernelTier>& tiers) {
  const int64_t V = opt.quick ? 32768 : 128256, D = 2560;
  std::vector<uint8_t> i8(static_cast<size_t>(V * D)), q4(static_cast<size_t>(V * head_i4_row_bytes(D))),
      mult(static_cast<size_t>(V * head_i4_groups(D)));
  kbench::fill_random_codes(i8.data(), i8.size(), 8);
  kbench::fill_random_codes(q4.data(), q4.size(), 9);
  for (uint8_t& b : q4) b = static_cast<uint8_t>(b | ((b & 0x0F) == 0 ? 0x01 : 0) | ((b & 0xF0) == 0 ? 0x10 : 0));
  Rng rng(10);
  for (uint8_t& k : mult) k = static_cast<uint8_t>(1 + rng.next_below(255));
  std::vector<float> row_scale(static_cast<size_t>(V), 1e-3f);
  HeadWeights h8, h4;
  h8.format = HeadFormat::I8;
  h8.i8 = reinterpret_cast<const int8_t*>(i8.data());
  h8.row_scale = row_scale.data();
  h4.format = HeadFormat::I4;
  h4.q4 = q4.data();
  h4.mult = mult.data();
  h4.row_scale = row_scale.data();
  const size_t bytes8 = i8.size() + row_scale.size() * 4, bytes4 = q4.size() + mult.size() + row_scale.size() * 4;
  std::vector<float> hidden(static_cast<size_t>(D)), logits(static_cast<size_t>(V)), hs(1);
  for (float& x : hidden) x = rng.uniform() - 0.5f;
  std::vector<int8_t> hq(static_cast<size_t>(D));
  std::printf("\nLM head at decode (N = 1), V %lld x D %lld, DRAM-resident; roof = a streaming read of the same "
              "bytes on the same threads, in the same sweeps\n", static_cast<long long>(V), static_cast<long long>(D));
  std::printf("%-6s %-12s %3s %8s %9s %8s %7s %10s\n", "head", "kernel", "thr", "MB", "time_ms", "GB/s", "%roof",
              "roof t/s");
  const KernelTier requested = c.kernels;
  for (int t : thread_counts) {
    c.threads = t;
    struct Case {
      const char* name;
      const HeadWeights* w;
      size_t bytes;
      KernelTier tier;
    };
    std::vector<Case> cases;
    for (KernelTier tier : tiers) {
      if (tier == KernelTier::Scalar) continue;
      cases.push_back({"i8", &h8, bytes8, tier});
      cases.push_back({"i4", &h4, bytes4, tier});
    }
    std::vector<std::function<void()>> fns;
    fns.push_back([&] { (void)kbench::read_pass(i8.data(), i8.size(), t); });
    fns.push_back([&] { (void)kbench::read_pass(q4.data(), q4.size(), t); });
    for (const Case& k : cases) {
      fns.push_back([&c, &k, &logits, &hidden, &hq, &hs, V, D] {
        c.kernels = k.tier;
        lm_head_forward(c, logits.data(), hidden.data(), 1, *k.w, V, D, hq.data(), hs.data());
      });
    }
    const std::vector<double> best = kbench::time_best_interleaved(fns, std::max(opt.min_time, 0.2) * 4);
    const double roof_gbs = std::max(static_cast<double>(i8.size()) / best[0], static_cast<double>(q4.size()) / best[1]) / 1e9;
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& k = cases[i];
      const double sec = best[i + 2], gbs = static_cast<double>(k.bytes) / sec / 1e9;
      std::printf("%-6s %-12s %3d %8.1f %9.2f %8.1f %6.1f%% %10.1f\n", k.name, kernel_tier_name(k.tier), t,
                  static_cast<double>(k.bytes) / 1e6, sec * 1e3, gbs, 100.0 * gbs / roof_gbs,
                  roof_gbs * 1e9 / static_cast<double>(k.bytes));
    }
  }
  c.kernels = requested;
}

void run_bench_kernels(const GlobalOptions& global, const BenchKernelsOptions& opt) {
  auto ctx = make_context(global);
  const std::vector<int> thread_counts = parse_count_list(opt.threads_list, "--threads-list", "thread counts");
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
  std::fflush(stdout);

  std::vector<Limits> limits(thread_counts.size());
  for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
    limits[ti] = measure_limits(thread_counts[ti], opt.stream_mib, has_vnni, has_avx2, limits[ti]);
  }

  // Cache-resident 2B shapes.
  struct Shape {
    int64_t O, I;
  };
  std::vector<Shape> shapes = {{2560, 2560}, {6912, 2560}, {2560, 6912}};
  if (opt.quick) shapes.resize(1);
  std::vector<KernelRow> rows;
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
      std::vector<float> y(static_cast<size_t>(N * s.O)), y_ref(y.size());
      const auto q8k = has_avx2 ? baseline::q8k_from_int8(act.xq.data(), act.scale.data(), N, s.I)
                                : std::vector<baseline::Q8KBlock>{};
      for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
        const int t = thread_counts[ti];
        const double macs = static_cast<double>(s.O) * static_cast<double>(s.I) * static_cast<double>(N);
        // The baseline and every tier in alternating bursts (the scalar tier apart: it is 50x slower).
        std::vector<std::function<void()>> fns;
        std::vector<std::string> names;
        std::vector<KernelTier> fn_tier;
        if (has_avx2) {
          fns.push_back([&, t] { baseline::tq2_gemm_avx2(y_ref.data(), tq2.data(), q8k.data(), s.O, s.I, N, t); });
          names.push_back("tq2-baseline");
          fn_tier.push_back(KernelTier::Auto);
        }
        for (KernelTier tier : tiers) {
          if (tier == KernelTier::Scalar) continue;
          fns.push_back([&, tier, t] {
            c.kernels = tier;
            c.threads = t;
            ternary_matmul(c, y.data(), act.xq.data(), act.scale.data(), w, N);
          });
          names.push_back(kernel_tier_name(tier));
          fn_tier.push_back(tier);
        }
        std::vector<double> secs = kbench::time_best_interleaved(fns, opt.min_time * static_cast<double>(fns.size()));
        if (N == 1 && std::find(tiers.begin(), tiers.end(), KernelTier::Scalar) != tiers.end()) {
          c.kernels = KernelTier::Scalar;
          c.threads = t;
          secs.push_back(kbench::time_best([&] { ternary_matmul(c, y.data(), act.xq.data(), act.scale.data(), w, N); },
                                           opt.min_time / 3));
          names.push_back("scalar");
          fn_tier.push_back(KernelTier::Scalar);
        }
        const double base = has_avx2 ? macs / secs[0] / 1e9 : 0.0;
        for (size_t k = 0; k < secs.size(); ++k) {
          rows.push_back({name, names[k], N, ti, secs[k], macs / secs[k] / 1e9, has_avx2 && k > 0 ? base : 0.0});
        }
        if (has_avx2) {  // same answer as the baseline (float sums in another order): a cheap sanity check
          for (size_t k = 0; k < y.size(); k += 97) {
            if (std::fabs(y[k] - y_ref[k]) > 1e-3f * (1.0f + std::fabs(y_ref[k]))) {
              throw_error("bench kernels: T16 result disagrees with the baseline at ", k, ": ", y[k], " vs ", y_ref[k]);
            }
          }
        }
      }
    }
  }

  // DRAM-resident GEMV: a matrix many times the L3, read once per call.
  const int64_t I = 8192;
  const int64_t O = std::max<int64_t>(16, (int64_t{opt.dram_mib} << 20) / (I / 4) / 16 * 16);
  std::vector<uint8_t> big(ternary_matrix_bytes(O, I)), big20(ternary_matrix_bytes(O, I, TernaryLayout::T20));
  kbench::fill_random_codes(big.data(), big.size(), 3);
  kbench::fill_random_t20_codes(big20.data(), big20.size(), 3);
  const TernaryMatrix wb{big.data(), O, I, 1.0f}, wb20{big20.data(), O, I, 1.0f, TernaryLayout::T20};
  const Activations act = make_activations(1, I, 4);
  std::vector<float> y(static_cast<size_t>(O));
  std::vector<DramRow> dram;
  for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
    for (KernelTier tier : tiers) {
      if (tier == KernelTier::Scalar) continue;
      c.kernels = tier;
      c.threads = thread_counts[ti];
      for (const TernaryMatrix* w : {&wb, &wb20}) {
        const double sec = kbench::time_best([&] { ternary_matmul(c, y.data(), act.xq.data(), act.scale.data(), *w, 1); },
                                             std::max(opt.min_time, 0.5));
        const size_t bytes = w->layout == TernaryLayout::T20 ? big20.size() : big.size();
        dram.push_back({std::string(kernel_tier_name(tier)) + " " + ternary_layout_name(w->layout), ti, sec,
                        static_cast<double>(bytes) / sec / 1e9,
                        static_cast<double>(O) * static_cast<double>(I) / sec / 1e9});
      }
    }
  }
  for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
    limits[ti] = measure_limits(thread_counts[ti], opt.stream_mib, has_vnni, has_avx2, limits[ti]);
  }
  c.kernels = requested;

  // An instruction the CPU lacks is "n/a", not a 0 that reads like a measurement.
  const std::string simd = best_simd_level(c.cpu);
  auto gmacs = [&](bool have, bool on_cpu, double v) {
    if (have) return fmt_gmacs(v);
    return std::string(on_cpu ? "n/a (not measured: --kernels " + global.kernels + ")" : "n/a (not on this CPU)");
  };
  for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
    const Limits& l = limits[ti];
    std::printf("limits, %d thread(s), best of before/after: STREAM triad %.1f GB/s, read %.1f GB/s; int8 MAC peak: "
                "vpdpbusd %s, vpmaddubsw+vpaddw %s\n", thread_counts[ti], l.stream.triad_gbs,
                l.stream.read_gbs, gmacs(has_vnni, simd == "avx512-vnni", l.vnni).c_str(),
                gmacs(has_avx2, simd == "avx512-vnni" || simd == "avx2", l.avx2).c_str());
  }
  const bool have_peak = has_vnni || has_avx2;
  std::printf("\ncache-resident matrices (O x I), fastest call; GMAC/s = O·I·N / time (for N = 1: G ternary "
              "weights/s);\n%%peak = share of the best int8 MAC peak above, capped at 100%% (\">100%%\": the kernel "
              "does fewer int8 MACs than O·I·N,\nas a ternary kernel may, so the peak is no bound); 'vs tq2' = ratio "
              "to the llama.cpp-TQ2_0-style kernel, same config\n");
  std::printf("%-10s %4s %3s  %-12s %10s %9s %7s %8s\n", "shape", "N", "thr", "kernel", "time_us", "GMAC/s",
              "%peak", "vs tq2");
  for (const KernelRow& r : rows) {
    const double share = 100.0 * r.gmacs / limits[r.ti].peak();
    char peak[16];
    if (!have_peak) std::snprintf(peak, sizeof peak, "n/a");
    else if (share > 100.0) std::snprintf(peak, sizeof peak, ">100%%");
    else std::snprintf(peak, sizeof peak, "%.1f%%", share);
    std::printf("%-10s %4lld %3d  %-12s %10.1f %9.1f %7s", r.shape.c_str(), static_cast<long long>(r.N),
                thread_counts[r.ti], r.kernel.c_str(), r.seconds * 1e6, r.gmacs, peak);
    if (r.baseline_gmacs > 0) std::printf(" %7.2fx", r.gmacs / r.baseline_gmacs);
    std::printf("\n");
  }
  std::printf("\nDRAM-resident GEMV: %lld x %lld (%.0f MiB packed in t16, %.0f MiB in t20), share of the bandwidth "
              "above; Gw/s = weights per second, the figure to compare between layouts\n",
              static_cast<long long>(O), static_cast<long long>(I), static_cast<double>(big.size()) / (1 << 20),
              static_cast<double>(big20.size()) / (1 << 20));
  std::printf("%-16s %3s %10s %9s %8s %9s %9s\n", "kernel", "thr", "time_us", "GB/s", "Gw/s", "%triad", "%read");
  for (const DramRow& r : dram) {
    std::printf("%-16s %3d %10.1f %9.1f %8.1f %8.1f%% %8.1f%%\n", r.kernel.c_str(), thread_counts[r.ti],
                r.seconds * 1e6, r.gbs, r.gws, 100 * r.gbs / limits[r.ti].stream.triad_gbs,
                100 * r.gbs / limits[r.ti].stream.read_gbs);
  }
  run_decode_layers(c, opt, thread_counts);
  run_decode_head(c, opt, thread_counts, tiers);
}

}  // namespace

void add_bench_batch_command(CLI::App& bench, GlobalOptions& global);  // bench_batch_cmd.cpp

void add_bench_command(CLI::App& app, GlobalOptions& global) {
  CLI::App& bench = bench_command(app);
  add_bench_batch_command(bench, global);
  auto opt = std::make_shared<BenchKernelsOptions>();
  CLI::App* k = bench.add_subcommand("kernels", "Ternary GEMV/GEMM throughput vs memory bandwidth and int8 peak");
  k->add_option("--min-time", opt->min_time, "Seconds spent per configuration")->capture_default_str();
  k->add_option("--dram-mib", opt->dram_mib, "Size of the DRAM-resident GEMV matrix in MiB")->capture_default_str()
      ->check(CLI::Range(16, 8192));
  k->add_option("--stream-mib", opt->stream_mib, "Size of each STREAM array in MiB (several times the L3)")
      ->capture_default_str()->check(CLI::Range(1, 8192));
  k->add_option("--layers-mib", opt->layers_mib, "Size of each decode-layer stack in MiB (several times the L3)")
      ->capture_default_str()->check(CLI::Range(1, 8192));
  k->add_option("--threads-list", opt->threads_list, "Thread counts to run, comma-separated")->capture_default_str();
  k->add_flag("--quick", opt->quick, "Only the 2560x2560 shape");
  k->callback([&global, opt] { run_bench_kernels(global, *opt); });
}

}  // namespace tritter::cli
