// Memory accounting: what the process holds (RSS and its peak, from the OS) and what Tritter's own buffers hold,
// by category. One MemoryAccount lives in the Context; Buffers report to it. No globals.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tritter {

enum class MemCategory : int { Weights = 0, Activations, KvCache, Gradients, Optimizer, Scratch, Data, Other, Count };
const char* mem_category_name(MemCategory c);

// Bytes currently held and the peak, per category and in total. Thread-safe.
class MemoryAccount {
 public:
  void add(MemCategory c, int64_t bytes);
  void sub(MemCategory c, int64_t bytes);
  int64_t in_use(MemCategory c) const { return now_[static_cast<int>(c)].load(); }
  int64_t peak(MemCategory c) const { return peak_[static_cast<int>(c)].load(); }
  int64_t total_in_use() const { return total_.load(); }
  int64_t total_peak() const { return total_peak_.load(); }
  std::string report() const;  // one line per non-empty category

 private:
  static constexpr int kCount = static_cast<int>(MemCategory::Count);
  std::array<std::atomic<int64_t>, kCount> now_{};
  std::array<std::atomic<int64_t>, kCount> peak_{};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> total_peak_{0};
};

// The process as the OS sees it (Linux /proc/self/status): resident set now and its high-water mark.
struct ProcessMemory {
  int64_t rss_bytes = 0;
  int64_t peak_rss_bytes = 0;
};
ProcessMemory process_memory();

// Total and available physical memory of the machine (/proc/meminfo), in bytes.
struct SystemMemory {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};
SystemMemory system_memory();

// Throws Error "out of memory: <what> needs X, more than this machine's Y of memory" when `bytes` exceeds the
// machine's physical memory: a planned allocation fails with the amount, not with std::bad_alloc or the OOM killer.
void check_allocation(double bytes, const std::string& what);

// "1.45 GB", "812 MB", "3.2 KB": decimal units, as the spec table prints them.
std::string format_bytes(double bytes);
// "1.35 GiB": binary units.
std::string format_bytes_binary(double bytes);
// Parses "512M", "1.5G", "2GiB", "1000000" (bytes). Throws Error naming `what` on a bad value.
int64_t parse_bytes(const std::string& text, const std::string& what);

}  // namespace tritter
