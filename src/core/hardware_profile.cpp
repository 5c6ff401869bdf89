// Hardware profiles' shared part: the CPU profile, OS reservations and the safe-budget rule (original.md §7.3).
#include "core/hardware_profile.h"

#include <algorithm>
#include <cctype>
#include <exception>

#include "core/error.h"

namespace tritter {

HardwareProfile cpu_profile(const CpuFeatures& cpu, int64_t ram_total_bytes, int64_t ram_available_bytes,
                            double bandwidth_gbs) {
  HardwareProfile p;
  p.key = "cpu";
  p.name = (cpu.model_name.empty() ? std::string("CPU") : cpu.model_name) + " (" +
           std::to_string(cpu.logical_cores) + " logical cores, " + best_simd_level(cpu) + ")";
  p.memory_gib = static_cast<double>(ram_total_bytes) / kGiB;
  p.bandwidth_gbs = bandwidth_gbs;
  p.default_budget_gib = static_cast<double>(ram_available_bytes) / kGiB;
  p.layer_group_size = 4;
  p.prefetch_mb = 512;
  p.is_cpu = true;
  return p;
}

OsReservation os_reservation(const std::string& desktop) {
  std::string d = desktop;
  for (auto& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (d == "headless") return {"headless", 0.1};
  if (d == "x11") return {"x11", 0.4};
  if (d == "wayland") return {"wayland", 0.5};
  if (d == "macos") return {"macos", 0.8};
  if (d == "windows" || d.rfind("windows:", 0) == 0) {
    int64_t monitors = 1;
    if (d.size() > 8) {
      try {
        size_t pos = 0;
        monitors = std::stoll(d.substr(8), &pos);
        if (pos != d.size() - 8) monitors = 0;
      } catch (const std::exception&) {
        monitors = 0;
      }
      if (monitors < 1 || monitors > 16) {
        throw_error("desktop '", desktop, "': monitor count '", d.substr(8), "' is not valid; expected 1 to 16");
      }
    }
    return {"windows:" + std::to_string(monitors), 0.5 + 0.3 * static_cast<double>(monitors - 1)};
  }
  throw_error("desktop '", desktop, "' is unknown; expected headless, x11, wayland, macos, windows or windows:N");
}

double safe_budget_gib(const HardwareProfile& p, const OsReservation& os) {
  const double runtime = p.is_cpu ? 0.0 : 0.3;  // the CUDA context
  const double u = (p.memory_gib - os.gib - runtime) * 0.9;
  const double budget = u > 1.0 ? u - 1.0 : u * 0.5;
  return std::max(0.0, std::min(budget, p.default_budget_gib));
}

}  // namespace tritter
