// The single-process communicator and shard_range (see dist.h); the MPI communicator is in dist_mpi.cpp.
#include "train/dist.h"

#include <algorithm>

namespace tritter::train {

Range shard_range(int64_t n, int rank, int size) {
  const int64_t s = std::max(1, size), r = rank;
  const int64_t base = n / s, extra = n % s;
  const int64_t lo = r * base + std::min(r, extra);
  return {lo, lo + base + (r < extra ? 1 : 0)};
}

int64_t dist_scratch_bytes(int64_t n, int size) {
  if (size <= 1) return 0;
  return 4 * static_cast<int64_t>(size) * std::min(kDistChunkFloats, shard_range(n, 0, size).size());
}

namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void reduce_scatter_sum(float*, int64_t) override {}
  void allgather(float*, int64_t) override {}
  void gather_range_to_root(const float* shard, int64_t, Range r,
                            const std::function<void(const float*, int64_t)>& sink) override {
    if (r.size() > 0) sink(shard + r.lo, r.size());
  }
  double chain(const std::function<double(double)>& f) override { return f(0.0); }
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
  void abort(int) override {}
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

}  // namespace tritter::train
