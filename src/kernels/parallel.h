// Thread teams for model code: the only way code outside kernels/ runs work in parallel (OpenMP stays in here).
// An exception thrown by a work item does not escape the team (that would terminate the process): the first one,
// in item order, is rethrown on the calling thread after every item has run or been skipped.
#pragma once
#include <cstdint>
#include <functional>

namespace tritter {

// fn(i, t) for i in [0, n) on thread t of the team, items handed out one at a time (for unequal items: tensors,
// documents, replicas; t indexes per-thread scratch). threads ≤ 0: OpenMP's default team size.
void parallel_for(int threads, int64_t n, const std::function<void(int64_t i, int t)>& fn);
// fn(lo, hi, t) once per thread t of a team of min(threads, n) (≥ 1), over equal contiguous ranges of [0, n).
void parallel_ranges(int threads, int64_t n, const std::function<void(int64_t lo, int64_t hi, int t)>& fn);

// The default worker count: the physical cores this process may run on (distinct (package, core) pairs of the
// CPUs in its affinity mask, from /sys topology), so SMT siblings do not fight over one core's SIMD units; the
// affinity mask's count where the topology cannot be read. Always ≥ 1.
int default_thread_count();

// The default team size of later parallel regions and dense products (OpenMP's, which OpenBLAS's OpenMP build
// follows): set once per process by the CLI from --threads.
void set_default_threads(int threads);

}  // namespace tritter
