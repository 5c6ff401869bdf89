#include "kernels/parallel.h"

#include <omp.h>

#include <algorithm>
#include <exception>
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

void set_default_threads(int threads) { omp_set_num_threads(std::max(1, threads)); }

}  // namespace tritter
