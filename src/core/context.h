// Context: what every long-running function needs and nothing global holds — thread count, memory accounting,
// the random generator, the log, the backend (device, stream) and the CPU kernel tier. Created by the CLI (or a
// test) and passed by reference.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/cpu.h"
#include "core/device.h"
#include "core/memory.h"
#include "core/rng.h"

namespace tritter {

enum class LogLevel { Quiet = 0, Info = 1, Verbose = 2, Debug = 3 };

// Which kernel implementation runs: Auto picks the best the CPU has; Reference runs the plain scalar kernels
// of kernels/ref (to bisect a mismatch); the others force one SIMD level (tests and per-ISA benchmarks).
enum class KernelTier { Auto, Reference, Scalar, Avx2, Avx512Vnni };
const char* kernel_tier_name(KernelTier t);
KernelTier kernel_tier_from_name(const std::string& name);  // throws Error listing the valid names

struct Context {
  int threads = 1;
  KernelTier kernels = KernelTier::Auto;  // the CPU backend's tier
  // The backend the ops run on and, for a GPU backend, its stream (e.g. a cudaStream_t; null on the CPU). The
  // buffers the ops read and write must live on `device` (Buffer::device()).
  Device device = Device::Cpu;
  void* stream = nullptr;
  LogLevel log_level = LogLevel::Info;
  MemoryAccount memory;
  Rng rng{0};
  CpuFeatures cpu = detect_cpu();

  // printf-style messages to stderr, shown when `level` <= log_level.
  void log(LogLevel level, const char* fmt, ...) const __attribute__((format(printf, 3, 4)));
};

}  // namespace tritter
