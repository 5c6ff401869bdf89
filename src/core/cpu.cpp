#include "core/cpu.h"

#include <fstream>
#include <thread>

namespace tritter {

CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.sse4_1 = __builtin_cpu_supports("sse4.1");
  f.avx = __builtin_cpu_supports("avx");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  f.avx_vnni = false;  // GCC 12 cannot query AVX-VNNI by name; the AVX2 path does not need it
  f.f16c = f.avx2;     // every AVX2 CPU has F16C
#elif defined(__aarch64__)
  f.neon = true;
#endif
  f.logical_cores = static_cast<int>(std::thread::hardware_concurrency());
  if (f.logical_cores <= 0) f.logical_cores = 1;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) f.model_name = line.substr(line.find_first_not_of(' ', colon + 1));
      break;
    }
  }
  return f;
}

std::string best_simd_level(const CpuFeatures& cpu) {
  if (cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512vnni) return "avx512-vnni";
  if (cpu.avx2 && cpu.fma) return "avx2";
  if (cpu.neon) return "neon";
  return "scalar";
}

}  // namespace tritter
