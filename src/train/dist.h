// Communication between the processes of a data-parallel training run (docs/distributed.md): a small interface the
// trainer calls, a single-process implementation that does nothing, and an MPI one (train/dist_mpi.cpp, built only
// when CMake finds MPI and linked by the CLI alone, so the libraries and the installed package never need MPI).
// Every sum runs in rank order ((x₀ + x₁) + x₂ …) and every rank gets the same bits, so a run over N ranks equals
// the one-process run that sums its N workers' gradients in worker order. Non-goals: NCCL, overlapping with compute.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <functional>

namespace tritter::train {

// [lo, hi) of a flat range.
struct Range {
  int64_t lo = 0, hi = 0;
  int64_t size() const { return hi - lo; }
};
// Rank r's contiguous share of n items over `size` ranks: the first n % size ranks get one more (the trainer's
// batch rows, ZeRO-1's optimizer shard and the planner's optimizer term all use this one function).
Range shard_range(int64_t n, int rank, int size);

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // data (n), in place: every rank ends with Σ_r data_r summed in rank order, identical bits on every rank.
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // data (n): on rank r, data[shard_range(n, r, size)] becomes the rank-order sum; the rest is left unspecified.
  virtual void reduce_scatter_sum(float* data, int64_t n) = 0;
  // data (n): every rank's data[shard_range(n, r, size)] is copied to every rank.
  virtual void allgather(float* data, int64_t n) = 0;
  // Elements [r.lo, r.hi) of a vector of n floats that the ranks hold in shards (shard: this rank's
  // shard_range(n, rank, size)), streamed to rank 0 in order as pieces of at most kDistChunkFloats: rank 0's
  // sink sees them all, the other ranks send theirs (sink unused). Every rank makes the same calls in the same order.
  virtual void gather_range_to_root(const float* shard, int64_t n, Range r,
                                    const std::function<void(const float*, int64_t)>& sink) = 0;
  // A running value continued in rank order, s = f(s) on rank 0, then 1, …: the result on every rank. A sum of
  // squares over sharded data computed this way has the bits of the one-process sum over the whole vector.
  virtual double chain(const std::function<double(double)>& f) = 0;
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every process of the job (MPI_Abort); the single-process one does nothing and returns.
  virtual void abort(int code) = 0;
  // Wall seconds spent inside the calls above (waiting for a slower rank included).
  double comm_seconds() const { return seconds_; }
  // Bytes this rank sent (payload only).
  int64_t bytes_sent() const { return bytes_sent_; }

 protected:
  double seconds_ = 0;
  int64_t bytes_sent_ = 0;
};

// Floats per MPI transfer; a rank's reduce-scatter receive scratch is size · min(chunk, largest shard) floats.
constexpr int64_t kDistChunkFloats = int64_t{1} << 20;
// That scratch in bytes for a flat vector of n floats over `size` ranks (0 for one rank).
int64_t dist_scratch_bytes(int64_t n, int size);

// One process: size 1, every call a no-op (chain returns f(0)).
std::unique_ptr<Communicator> make_local_communicator();
// MPI_COMM_WORLD (MPI_Init on the first call, MPI_Finalize when destroyed). Throws Error when the build has no MPI.
std::unique_ptr<Communicator> make_mpi_communicator();
// Whether make_mpi_communicator can work in this build.
bool mpi_built();

}  // namespace tritter::train
