// The memory budget of layer streaming (issue 7; original.md §7.3, whose MemoryManager only kept books): a budget
// in bytes, every budgeted allocation checked against it BEFORE it is made, use and peak by category (weights
// buffers, KV cache, activations, scratch), and the budget resolved against what the machine can give (RAM minus
// the OS/desktop reservation of core/hardware_profile.h). Non-goals: a general allocator, GPU memory (the CUDA
// path will reuse the same checks), what is outside our Buffers (code, libraries, thread stacks: the fixed
// overhead that docs/streaming.md measures).
#pragma once
#include <cstdint>
#include <string>

#include "core/buffer.h"
#include "core/memory.h"
#include "core/hardware_profile.h"

namespace tritter {

class MemoryManager {
 public:
  // budget_bytes ≥ 1. Everything that reports to `account` counts as in use (the streamed weight source gives it
  // the Context's account, which nothing else of the run uses). `account` must outlive the manager.
  MemoryManager(int64_t budget_bytes, MemoryAccount& account);

  int64_t budget() const { return budget_; }
  int64_t in_use() const { return account_.total_in_use(); }
  int64_t available() const { return budget_ - in_use(); }

  // Throws Error, before anything is allocated, when in_use + bytes > budget:
  //   "memory budget: need 812 MB for layer group 3-4, budget 512 MB, in use 350 MB"
  void require(int64_t bytes, const std::string& what) const;
  // require(), then a zeroed Buffer of `bytes` reporting to the account.
  Buffer allocate(size_t bytes, MemCategory category, const std::string& what);

  // "budget 512 MB, peak 498 MB (97%): weights 182 MB, kv-cache 134 MB, ..." (peaks per category).
  std::string report() const;

 private:
  int64_t budget_;
  MemoryAccount& account_;
};

// The one wording of a budget shortfall (MemoryManager::require and the streaming planner):
// "memory budget: need 812 MB for layer group 3-4, budget 512 MB, in use 350 MB (raise --memory-budget to ...)".
std::string budget_shortfall(int64_t need, const std::string& what, int64_t budget, int64_t in_use);

// The memory a budget may claim on this machine: RAM total minus the OS/desktop reservation.
struct UsableMemory {
  int64_t ram_total_bytes = 0;
  OsReservation os;
  int64_t usable_bytes = 0;
};
UsableMemory usable_memory(int64_t ram_total_bytes, const OsReservation& os);

// The budget to run under. requested > 0: that many bytes, refused (Error with the numbers) when above the usable
// memory. requested == 0: the hardware profile's safe budget for this machine (safe_budget_gib of the cpu profile:
// 0.9·(RAM − OS) − 1 GiB, at most the available RAM).
int64_t resolve_memory_budget(int64_t requested, int64_t ram_total_bytes, int64_t ram_available_bytes,
                              const OsReservation& os);

}  // namespace tritter
