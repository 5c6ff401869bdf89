// A hardware profile (memory, bandwidth, the profile's own budget cap), what the OS and desktop keep of the memory,
// and the safe-budget rule (original.md §7.3): the facts that the streaming engine's memory budget (infer/) and the
// planner (plan/) share. Memory figures are GiB; bandwidths are decimal GB/s. Non-goals: the GPU profile table,
// detection and the fit check (plan/hardware.h).
#pragma once
#include <cstdint>
#include <string>

#include "core/cpu.h"

namespace tritter {

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kMiB = 1024.0 * 1024.0;

struct HardwareProfile {
  std::string key;                  // "rtx5080", "h200", "cpu"
  std::string name;                 // "NVIDIA RTX 5080"
  double memory_gib = 0;            // VRAM (or RAM for "cpu")
  double bandwidth_gbs = 0;         // memory bandwidth, decimal GB/s (measured for "cpu")
  double default_budget_gib = 0;    // the profile's own cap on the budget
  int64_t layer_group_size = 4;     // layers per streamed group
  int64_t prefetch_mb = 512;
  bool verified = false;            // the original marked it tested on real hardware
  bool is_cpu = false;
  // The original's claims (largest size per mode), kept for comparison with the computed verdicts.
  std::string claimed_infer, claimed_qlora, claimed_train;
};

// The machine's CPU and RAM as a profile: memory = total RAM, bandwidth = `bandwidth_gbs` (measure it with
// plan/hardware.h measure_memory_bandwidth_gbs), default budget = available RAM.
HardwareProfile cpu_profile(const CpuFeatures& cpu, int64_t ram_total_bytes, int64_t ram_available_bytes,
                            double bandwidth_gbs);

// What the OS and desktop keep of the GPU's memory (original.md §7.3): windows[:N monitors] 0.5 + 0.3·(N−1),
// macos 0.8, wayland 0.5, x11 0.4, headless 0.1.
struct OsReservation {
  std::string desktop;  // "headless", "x11", "wayland", "macos", "windows:2"
  double gib = 0;
};
OsReservation os_reservation(const std::string& desktop);  // throws on an unknown name
// The original's safe-budget rule: available = memory − os − 0.3 (CUDA runtime; 0 for the CPU),
// u = available·0.9, budget = u − 1.0 if u > 1 else u·0.5, capped at the profile's default budget, ≥ 0.
double safe_budget_gib(const HardwareProfile& profile, const OsReservation& os);

}  // namespace tritter
