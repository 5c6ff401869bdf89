// The kernels' chunked parallel loop (run_chunks): every chunk runs exactly once on 1..4 threads, from nested and
// from concurrent callers.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "kernels/parallel_chunks.h"

namespace tritter {
namespace {

struct Counts {
  std::vector<std::atomic<int>> hits;
  explicit Counts(int64_t n) : hits(static_cast<size_t>(n)) {}
};

void count_chunk(void* arg, int64_t i, int64_t total) {
  auto* c = static_cast<Counts*>(arg);
  ASSERT_EQ(static_cast<int64_t>(c->hits.size()), total);
  c->hits[static_cast<size_t>(i)].fetch_add(1);
}

TEST(RunChunks, EveryChunkExactlyOnce) {
  for (int threads : {1, 2, 3, 4}) {
    for (int64_t chunks : {1, 2, 3, 7, 64, 1000}) {
      for (int rep = 0; rep < 50; ++rep) {
        Counts c(chunks);
        run_chunks(threads, chunks, count_chunk, &c);
        for (int64_t i = 0; i < chunks; ++i) {
          ASSERT_EQ(c.hits[static_cast<size_t>(i)].load(), 1) << "threads " << threads << " chunks " << chunks
                                                               << " chunk " << i;
        }
      }
    }
  }
}

struct Nested {
  std::atomic<int64_t> inner_total{0};
};

void nested_chunk(void* arg, int64_t, int64_t) {
  auto* n = static_cast<Nested*>(arg);
  Counts c(5);
  run_chunks(2, 5, count_chunk, &c);  // inside a parallel region: runs inline on this thread
  for (auto& h : c.hits) n->inner_total += h.load();
}

TEST(RunChunks, NestedAndConcurrentCallers) {
  Nested n;
  run_chunks(2, 8, nested_chunk, &n);
  EXPECT_EQ(n.inner_total.load(), 8 * 5);
  std::vector<std::thread> callers;
  std::atomic<int64_t> total{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&total] {
      for (int rep = 0; rep < 200; ++rep) {
        Counts c(9);
        run_chunks(2, 9, count_chunk, &c);
        for (auto& h : c.hits) total += h.load();
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 200 * 9);
}

}  // namespace
}  // namespace tritter
