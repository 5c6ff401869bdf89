#include "kernels/parallel.h"
#include "kernels/parallel_chunks.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tritter {

void parallel_for(int threads, int64_t n, const std::function<void(int64_t, int)>& fn) {
  if (n <= 0) return;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  const int team = threads > 0 ? threads : omp_get_max_threads();
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

// ---- Kernel chunk team (see parallel.h) ----
namespace {

// claim word: generation (24 bits) | workers allowed (8) | chunks (16) | next chunk (16). One word, so a worker
// that wakes late can only take a chunk of the job that is live now (a compare-exchange on the whole word).
constexpr uint64_t pack_claim(uint64_t gen, uint64_t workers, uint64_t total, uint64_t next) {
  return (gen << 40) | (workers << 32) | (total << 16) | next;
}
constexpr uint64_t claim_gen(uint64_t c) { return c >> 40; }
constexpr int claim_workers(uint64_t c) { return static_cast<int>((c >> 32) & 0xFF); }
constexpr int64_t claim_total(uint64_t c) { return static_cast<int64_t>((c >> 16) & 0xFFFF); }
constexpr int64_t claim_next(uint64_t c) { return static_cast<int64_t>(c & 0xFFFF); }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class ChunkTeam {
 public:
  ~ChunkTeam() {
    stop_.store(true);
    epoch_.fetch_add(1);
    epoch_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // Runs fn over [0, chunks) on the caller and up to threads − 1 workers; false when the team is busy (another
  // thread's job, or a call from inside a chunk), so the caller runs everything itself.
  bool run(int threads, int64_t chunks, ChunkFn fn, void* arg) {
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    const int want = std::min(threads - 1, kMaxWorkers);
    while (static_cast<int>(workers_.size()) < want) {
      const int id = static_cast<int>(workers_.size());
      workers_.emplace_back([this, id] { worker_loop(id); });
    }
    fn_ = fn;
    arg_ = arg;
    done_.store(0, std::memory_order_relaxed);
    gen_ = (gen_ + 1) & 0xFFFFFF;
    claim_.store(pack_claim(gen_, static_cast<uint64_t>(want), static_cast<uint64_t>(chunks), 0));
    epoch_.fetch_add(1);
    if (sleepers_.load() > 0) epoch_.notify_all();
    work();
    // What is left is at most one chunk per worker that claimed one; yield if it runs long (a worker that lost
    // its core to another process finishes sooner if this thread gives the core up).
    for (int spins = 0; done_.load(std::memory_order_acquire) < chunks; ++spins) {
      if (spins < 4096) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
    return true;
  }

 private:
  static constexpr int kMaxWorkers = 255;
  // Idle workers spin this many pauses (tens of µs: the gap between two matmuls of one token) before they sleep
  // on a futex, so a loaded machine does not lose a core to waiting.
  static constexpr int kSpinPauses = 2000;

  // Takes chunks of the live job until none is left. Worker id −1 is the caller.
  bool work(int id = -1) {
    bool any = false;
    uint64_t c = claim_.load(std::memory_order_acquire);
    while (claim_next(c) < claim_total(c) && id < claim_workers(c)) {
      if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      fn_(arg_, claim_next(c), claim_total(c));
      done_.fetch_add(1, std::memory_order_release);
      any = true;
      c = claim_.load(std::memory_order_acquire);
    }
    return any;
  }

  void worker_loop(int id) {
    while (!stop_.load(std::memory_order_relaxed)) {
      const uint32_t seen = epoch_.load();
      if (work(id)) continue;
      int spins = 0;
      while (epoch_.load(std::memory_order_relaxed) == seen && spins < kSpinPauses) {
        cpu_relax();
        ++spins;
      }
      if (epoch_.load() == seen) {
        sleepers_.fetch_add(1);
        epoch_.wait(seen);
        sleepers_.fetch_sub(1);
      }
    }
  }

  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<uint32_t> epoch_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  uint64_t gen_ = 0;
  ChunkFn fn_ = nullptr;
  void* arg_ = nullptr;
};

}  // namespace

void run_chunks(int threads, int64_t chunks, ChunkFn fn, void* arg) {
  if (chunks <= 0) return;
  if (threads > 1 && chunks > 1 && chunks <= 0xFFFF) {
    // The persistent workers are the point of the team (no start-up per matmul), so it lives for the process.
    static ChunkTeam team;
    if (team.run(threads, chunks, fn, arg)) return;
  }
  for (int64_t i = 0; i < chunks; ++i) fn(arg, i, chunks);
}

}  // namespace tritter
