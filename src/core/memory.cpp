#include "core/memory.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tritter {

const char* mem_category_name(MemCategory c) {
  static constexpr const char* kNames[] = {"weights", "activations", "kv-cache", "gradients",
                                           "optimizer", "scratch", "data", "other"};
  return kNames[static_cast<int>(c)];
}

static void raise_peak(std::atomic<int64_t>& peak, int64_t value) {
  int64_t old = peak.load();
  while (value > old && !peak.compare_exchange_weak(old, value)) {
  }
}

void MemoryAccount::add(MemCategory c, int64_t bytes) {
  const int i = static_cast<int>(c);
  raise_peak(peak_[i], now_[i].fetch_add(bytes) + bytes);
  raise_peak(total_peak_, total_.fetch_add(bytes) + bytes);
}

void MemoryAccount::sub(MemCategory c, int64_t bytes) {
  now_[static_cast<int>(c)].fetch_sub(bytes);
  total_.fetch_sub(bytes);
}

std::string MemoryAccount::report() const {
  std::ostringstream out;
  for (int i = 0; i < kCount; ++i) {
    if (peak_[i].load() == 0) continue;
    out << "  " << mem_category_name(static_cast<MemCategory>(i)) << ": " << format_bytes(now_[i].load())
        << " in use, peak " << format_bytes(peak_[i].load()) << "\n";
  }
  out << "  tracked total: " << format_bytes(total_.load()) << " in use, peak " << format_bytes(total_peak_.load())
      << "\n";
  return out.str();
}

static int64_t read_kb_field(const char* path, const char* key) {
  std::ifstream in(path);
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      return std::stoll(line.substr(prefix.size())) * 1024;  // "VmRSS:   1234 kB"
    }
  }
  return 0;
}

ProcessMemory process_memory() {
  return {read_kb_field("/proc/self/status", "VmRSS"), read_kb_field("/proc/self/status", "VmHWM")};
}

SystemMemory system_memory() {
  return {read_kb_field("/proc/meminfo", "MemTotal"), read_kb_field("/proc/meminfo", "MemAvailable")};
}

void check_allocation(double bytes, const std::string& what) {
  const SystemMemory mem = system_memory();
  if (mem.total_bytes <= 0 || bytes <= static_cast<double>(mem.total_bytes)) return;  // unknown: let malloc decide
  throw_error("out of memory: ", what, " needs ", format_bytes(bytes), ", more than this machine's ",
              format_bytes(static_cast<double>(mem.total_bytes)), " of memory (",
              format_bytes(static_cast<double>(mem.available_bytes)), " available)");
}

static std::string format_scaled(double bytes, double base, const char* const* units) {
  int u = 0;
  double v = bytes;
  while (std::fabs(v) >= base && u < 4) {
    v /= base;
    ++u;
  }
  char buf[64];
  const int decimals = u == 0 ? 0 : (std::fabs(v) >= 100 ? 0 : (std::fabs(v) >= 10 ? 1 : 2));
  std::snprintf(buf, sizeof buf, "%.*f %s", decimals, v, units[u]);
  return buf;
}

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  return format_scaled(bytes, 1000.0, kUnits);
}

std::string format_bytes_binary(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  return format_scaled(bytes, 1024.0, kUnits);
}

int64_t parse_bytes(const std::string& text, const std::string& what) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw_error(what, ": '", text, "' is not a size; expected a number with an optional unit, e.g. 512M or 1.5G");
  }
  std::string unit;
  for (size_t i = pos; i < text.size(); ++i) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
  double scale = 1;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "K" || unit == "KB") scale = 1e3;
  else if (unit == "M" || unit == "MB") scale = 1e6;
  else if (unit == "G" || unit == "GB") scale = 1e9;
  else if (unit == "T" || unit == "TB") scale = 1e12;
  else if (unit == "KIB") scale = 1024.0;
  else if (unit == "MIB") scale = 1024.0 * 1024;
  else if (unit == "GIB") scale = 1024.0 * 1024 * 1024;
  else if (unit == "TIB") scale = 1024.0 * 1024 * 1024 * 1024;
  else throw_error(what, ": unknown unit '", text.substr(pos), "' in '", text, "'; expected K, M, G, T, KiB, MiB, GiB or TiB");
  if (!(value >= 0) || !std::isfinite(value)) throw_error(what, ": size '", text, "' must be a non-negative number");
  if (value * scale >= 9.2e18) throw_error(what, ": size '", text, "': found ", value * scale, " bytes, expected less than 9.2e18");
  return static_cast<int64_t>(std::llround(value * scale));
}

}  // namespace tritter
