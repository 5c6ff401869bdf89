#include "infer/memory_manager.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace tritter {

MemoryManager::MemoryManager(int64_t budget_bytes, MemoryAccount& account) : budget_(budget_bytes), account_(account) {
  if (budget_bytes < 1) throw_error("memory budget: found ", budget_bytes, " bytes, expected at least 1");
}

void MemoryManager::require(int64_t bytes, const std::string& what) const {
  TRITTER_CHECK(bytes >= 0, what, ": ", bytes, " bytes");
  const int64_t used = in_use();
  if (used + bytes > budget_) throw Error(budget_shortfall(bytes, what, budget_, used));
}

std::string budget_shortfall(int64_t need, const std::string& what, int64_t budget, int64_t in_use) {
  return "memory budget: need " + format_bytes(static_cast<double>(need)) + " for " + what + ", budget " +
         format_bytes(static_cast<double>(budget)) + ", in use " + format_bytes(static_cast<double>(in_use)) +
         " (raise --memory-budget to at least " + format_bytes(static_cast<double>(in_use + need)) + ")";
}

Buffer MemoryManager::allocate(size_t bytes, MemCategory category, const std::string& what) {
  require(static_cast<int64_t>(bytes), what);
  return Buffer(bytes, category, &account_);
}

std::string MemoryManager::report() const {
  std::ostringstream s;
  const double peak = static_cast<double>(account_.total_peak());
  s << "budget " << format_bytes(static_cast<double>(budget_)) << ", peak " << format_bytes(peak) << " ("
    << std::lround(100.0 * peak / static_cast<double>(budget_)) << "%)";
  const char* sep = ": ";
  for (int i = 0; i < static_cast<int>(MemCategory::Count); ++i) {
    const auto c = static_cast<MemCategory>(i);
    if (account_.peak(c) == 0) continue;
    s << sep << mem_category_name(c) << " " << format_bytes(static_cast<double>(account_.peak(c)));
    sep = ", ";
  }
  return s.str();
}

UsableMemory usable_memory(int64_t ram_total_bytes, const OsReservation& os) {
  UsableMemory u;
  u.ram_total_bytes = ram_total_bytes;
  u.os = os;
  u.usable_bytes = std::max<int64_t>(0, ram_total_bytes - static_cast<int64_t>(os.gib * kGiB));
  return u;
}

int64_t resolve_memory_budget(int64_t requested, int64_t ram_total_bytes, int64_t ram_available_bytes,
                              const OsReservation& os) {
  if (requested < 0) throw_error("--memory-budget: found ", requested, " bytes, expected > 0 (or 0 for the safe budget)");
  const UsableMemory u = usable_memory(ram_total_bytes, os);
  if (requested == 0) {
    const HardwareProfile cpu = cpu_profile(CpuFeatures{}, ram_total_bytes, ram_available_bytes, 0.0);
    const auto safe = static_cast<int64_t>(safe_budget_gib(cpu, os) * kGiB);
    if (safe < 1) throw_error("memory budget: no safe budget on this machine (RAM ", format_bytes(static_cast<double>(ram_total_bytes)), ", available ", format_bytes(static_cast<double>(ram_available_bytes)), "); give --memory-budget");
    return safe;
  }
  if (requested > u.usable_bytes) {
    throw_error("--memory-budget: ", format_bytes(static_cast<double>(requested)), " exceeds the usable memory ",
                format_bytes(static_cast<double>(u.usable_bytes)), " (RAM ",
                format_bytes(static_cast<double>(ram_total_bytes)), " minus the ", os.desktop, " OS reservation of ",
                os.gib, " GiB)");
  }
  return requested;
}

}  // namespace tritter
