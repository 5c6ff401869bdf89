// What the CPU can do, read once at run time (cpuid on x86). Kernels choose their path from this, never from
// compile-time flags, so one release binary runs everywhere.
#pragma once
#include <string>

namespace tritter {

struct CpuFeatures {
  bool sse4_1 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx_vnni = false;
  bool neon = false;
  int logical_cores = 1;
  std::string model_name;  // "AMD EPYC ..." from /proc/cpuinfo, "" when unknown
};

CpuFeatures detect_cpu();
// The best SIMD level the kernels can use here: "avx512-vnni", "avx2", "neon" or "scalar".
std::string best_simd_level(const CpuFeatures& cpu);

}  // namespace tritter
