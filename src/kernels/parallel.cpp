#include "kernels/parallel.h"
#include "kernels/parallel_chunks.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tritter {

void parallel_for(int threads, int64_t n, const std::function<void(int64_t, int)>& fn) {
  if (n <= 0) return;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  // No more threads than items: a worker with nothing to do still has to wake and reach the region's barrier.
  const int team = static_cast<int>(std::min<int64_t>(threads > 0 ? threads : omp_get_max_threads(), n));
#pragma omp parallel for num_threads(team) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      fn(i, omp_get_thread_num());
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

void parallel_ranges(int threads, int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  const int team = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(std::max(1, threads), n)));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(team));
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    try {
      fn(n * t / nt, n * (t + 1) / nt, t);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int default_thread_count() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  const bool have_mask = sched_getaffinity(0, sizeof(mask), &mask) == 0;
  const int logical = std::max(1, have_mask ? CPU_COUNT(&mask) : static_cast<int>(std::thread::hardware_concurrency()));
  std::set<std::pair<int, int>> cores;  // (physical_package_id, core_id)
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (have_mask && !CPU_ISSET(cpu, &mask)) continue;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core(dir + "core_id"), package(dir + "physical_package_id");
    int c = -1, p = 0;
    if (!(core >> c)) {
      if (have_mask) return logical;  // an allowed CPU without topology (a container's /sys): trust the mask
      break;
    }
    package >> p;
    cores.insert({p, c});
  }
  return cores.empty() ? logical : std::min(static_cast<int>(cores.size()), logical);
}

void set_default_threads(int threads) { omp_set_num_threads(std::max(1, threads)); }

// Chunks claimed from an atomic counter inside one OpenMP region: the threads are libgomp's (the engine's other
// ops run on them too; a second set of workers measured far worse, see parallel_chunks.h), and a thread that
// arrives late finds the chunks already taken by the others.
void run_chunks(int threads, int64_t chunks, ChunkFn fn, void* arg) {
  if (chunks <= 0) return;
  const int team = static_cast<int>(std::min<int64_t>(std::max(threads, 1), chunks));
  if (team <= 1 || omp_in_parallel()) {
    for (int64_t i = 0; i < chunks; ++i) fn(arg, i, chunks);
    return;
  }
  std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(team)
  for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) fn(arg, i, chunks);
}

}  // namespace tritter
