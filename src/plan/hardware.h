// The GPU profiles, detection and the fit check (original.md §7.3, §11): which model runs where, in which mode, and
// what to change when it does not fit. Memory figures are GiB (the original's "GB" are GiB); bandwidths are
// decimal GB/s. Detection runs nvidia-smi when present and otherwise describes the CPU. The profile struct, the OS
// reservation and the safe-budget rule are core/hardware_profile.h (the streaming engine's budget uses them too).
// Non-goals: NVML or CUDA calls (no GPU library is linked), multi-GPU splitting.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/hardware_profile.h"
#include "plan/specs.h"

namespace tritter {

// The original's ten profiles (RTX 5080 ... H100) in its table order, then H200.
const std::vector<HardwareProfile>& gpu_profiles();
// Finds a GPU profile by key, case-insensitive, with or without "rtx"/"nvidia" and spaces or dashes
// ("5080", "RTX-5080", "a100-80gb"). "cpu" is not in this list (see cpu_profile). Throws listing the keys.
const HardwareProfile& find_gpu_profile(const std::string& key);
std::string gpu_profile_keys();  // "rtx5080, rtx3090ti, ..." for messages

// STREAM-style triad a[i] = b[i] + s·c[i] over three double arrays of `bytes_per_array`, `threads` OpenMP threads,
// best of `repeats`; counts 24 bytes per element (no write-allocate). Returns decimal GB/s.
double measure_memory_bandwidth_gbs(int threads, int64_t bytes_per_array = 64 << 20, int repeats = 3);

// nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader,nounits
struct GpuInfo {
  std::string name;
  int64_t memory_total_mib = 0;
  int64_t memory_used_mib = 0;
  std::string driver;
};
inline constexpr const char* kNvidiaSmiQuery =
    "nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader,nounits";
std::vector<GpuInfo> parse_nvidia_smi_csv(const std::string& text);  // throws on a malformed line
// The profile a detected GPU matches (by name, then memory for the A100s), or nullopt.
std::optional<HardwareProfile> match_gpu_profile(const GpuInfo& gpu);
// A profile for a detected GPU: the matched one, or one built from its memory (budget = memory − 2 GiB).
HardwareProfile profile_for_gpu(const GpuInfo& gpu);

struct Detection {
  bool nvidia_smi_ran = false;  // nvidia-smi was found and exited 0
  std::string note;             // what happened, in words ("nvidia-smi not found: no NVIDIA GPU detected")
  std::vector<GpuInfo> gpus;
};
Detection detect_gpus();  // runs kNvidiaSmiQuery through popen

// ---- The fit check --------------------------------------------------------------------------------------------

struct Suggestion {
  std::string change;  // "use an INT4 KV cache (--kv int4)"
  double total_gib = 0;
  bool fits = false;
};

struct FitCheck {
  std::string model_size;
  PlanMode mode = PlanMode::Infer;
  PlanOptions options;
  std::vector<MemoryItem> items;
  double total_gib = 0;
  double budget_gib = 0;
  double headroom_gib = 0;  // budget − total (negative when it does not fit)
  bool fits = false;
  std::vector<Suggestion> suggestions;  // when it does not fit; each is re-planned, the first fitting one first
};

// Plans `options` for `config` against `budget_gib` and, when it does not fit, tries the changes the original
// recommended (INT4 KV cache, a smaller context, layer streaming with the largest group that fits, QLoRA instead
// of full training, smaller rank or sequence) and reports each with its planned total.
// Streaming suggestions use `preferred_group` (the profile's layer_group_size) when it fits, else the largest
// group that does.
FitCheck check_fit(const TritterConfig& config, const PlanOptions& options, double budget_gib,
                   int64_t preferred_group = 4);

}  // namespace tritter
