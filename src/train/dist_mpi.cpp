// The MPI communicator (see dist.h): MPI_COMM_WORLD through point-to-point transfers whose order and sums are
// fixed by this file (MPI's own reductions may sum in any order and, over more than two ranks, give ranks
// different bits). Transfers go in chunks of kChunk floats, so a rank's receive scratch is size·kChunk floats,
// not the whole gradient. Built into tritter_dist_mpi (the CLI links it); without MPI only the stubs below remain.
#include "train/dist.h"

#include <chrono>

#include "core/error.h"

#if TRITTER_HAVE_MPI
#include <mpi.h>

#include <vector>

namespace tritter::train {

namespace {

constexpr int64_t kChunk = kDistChunkFloats;  // floats per transfer: 4 MiB

class Timer {
 public:
  explicit Timer(double& acc) : acc_(acc), t0_(std::chrono::steady_clock::now()) {}
  ~Timer() { acc_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  double& acc_;
  std::chrono::steady_clock::time_point t0_;
};

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw_error("mpi: ", what, ": ", std::string(msg, static_cast<size_t>(len)));
  }
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      check(MPI_Init(nullptr, nullptr), "MPI_Init");
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override {
    if (owns_) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(float* data, int64_t n) override {
    reduce_scatter_sum(data, n);
    allgather(data, n);
  }

  void allreduce_sum(double* data, int64_t n) override {
    if (size_ == 1 || n == 0) return;
    Timer t(seconds_);
    std::vector<double> all(static_cast<size_t>(n * size_));
    check(MPI_Allgather(data, static_cast<int>(n), MPI_DOUBLE, all.data(), static_cast<int>(n), MPI_DOUBLE,
                        MPI_COMM_WORLD), "MPI_Allgather");
    bytes_sent_ += n * 8 * (size_ - 1);
    for (int64_t i = 0; i < n; ++i) {
      double s = all[static_cast<size_t>(i)];
      for (int r = 1; r < size_; ++r) s += all[static_cast<size_t>(r * n + i)];
      data[i] = s;
    }
  }

  // Chunk k of every shard: each rank sends peer j its piece of j's shard and receives the size−1 pieces of its
  // own, then sums the size contributions in rank order (its own in place among them).
  void reduce_scatter_sum(float* data, int64_t n) override {
    if (size_ == 1 || n == 0) return;
    Timer t(seconds_);
    const Range mine = shard_range(n, rank_, size_);
    const int64_t longest = shard_range(n, 0, size_).size();
    recv_.resize(static_cast<size_t>(size_ * std::min(kChunk, longest)));
    std::vector<MPI_Request> req;
    for (int64_t k = 0; k < longest; k += kChunk) {
      req.clear();
      const int64_t mc = piece(mine, k);
      for (int j = 0; j < size_; ++j) {
        if (j == rank_) continue;
        const Range sj = shard_range(n, j, size_);
        const int64_t c = piece(sj, k);
        if (mc > 0) {
          req.emplace_back();
          check(MPI_Irecv(recv_.data() + static_cast<size_t>(j) * kChunkOr(longest), static_cast<int>(mc), MPI_FLOAT,
                          j, 1, MPI_COMM_WORLD, &req.back()), "MPI_Irecv");
        }
        if (c > 0) {
          req.emplace_back();
          check(MPI_Isend(data + sj.lo + k, static_cast<int>(c), MPI_FLOAT, j, 1, MPI_COMM_WORLD, &req.back()),
                "MPI_Isend");
          bytes_sent_ += c * 4;
        }
      }
      check(MPI_Waitall(static_cast<int>(req.size()), req.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
      float* out = data + mine.lo + k;
      const size_t stride = static_cast<size_t>(kChunkOr(longest));
      for (int64_t i = 0; i < mc; ++i) {
        float s = rank_ == 0 ? out[i] : recv_[static_cast<size_t>(i)];
        for (int r = 1; r < size_; ++r) s += r == rank_ ? out[i] : recv_[r * stride + static_cast<size_t>(i)];
        out[i] = s;
      }
    }
  }

  void allgather(float* data, int64_t n) override {
    if (size_ == 1 || n == 0) return;
    Timer t(seconds_);
    const Range mine = shard_range(n, rank_, size_);
    const int64_t longest = shard_range(n, 0, size_).size();
    std::vector<MPI_Request> req;
    for (int64_t k = 0; k < longest; k += kChunk) {
      req.clear();
      const int64_t mc = piece(mine, k);
      for (int j = 0; j < size_; ++j) {
        if (j == rank_) continue;
        const Range sj = shard_range(n, j, size_);
        const int64_t c = piece(sj, k);
        if (c > 0) {
          req.emplace_back();
          check(MPI_Irecv(data + sj.lo + k, static_cast<int>(c), MPI_FLOAT, j, 2, MPI_COMM_WORLD, &req.back()),
                "MPI_Irecv");
        }
        if (mc > 0) {
          req.emplace_back();
          check(MPI_Isend(data + mine.lo + k, static_cast<int>(mc), MPI_FLOAT, j, 2, MPI_COMM_WORLD, &req.back()),
                "MPI_Isend");
          bytes_sent_ += mc * 4;
        }
      }
      check(MPI_Waitall(static_cast<int>(req.size()), req.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    }
  }

  // Owner by owner in rank order, chunk by chunk: the same sequence on every rank, so the blocking sends and
  // receives pair up.
  void gather_range_to_root(const float* shard, int64_t n, Range r,
                            const std::function<void(const float*, int64_t)>& sink) override {
    Timer t(seconds_);
    for (int j = 0; j < size_; ++j) {
      const Range sj = shard_range(n, j, size_);
      const int64_t a = std::max(sj.lo, r.lo), b = std::min(sj.hi, r.hi);
      for (int64_t p = a; p < b; p += kChunk) {
        const int64_t c = std::min(kChunk, b - p);
        if (rank_ == 0 && j == 0) {
          sink(shard + (p - sj.lo), c);
        } else if (rank_ == 0) {
          piece_.resize(static_cast<size_t>(c));
          check(MPI_Recv(piece_.data(), static_cast<int>(c), MPI_FLOAT, j, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                "MPI_Recv");
          sink(piece_.data(), c);
        } else if (rank_ == j) {
          check(MPI_Send(shard + (p - sj.lo), static_cast<int>(c), MPI_FLOAT, 0, 3, MPI_COMM_WORLD), "MPI_Send");
          bytes_sent_ += c * 4;
        }
      }
    }
  }

  double chain(const std::function<double(double)>& f) override {
    Timer t(seconds_);
    double s = 0.0;
    if (rank_ > 0) check(MPI_Recv(&s, 1, MPI_DOUBLE, rank_ - 1, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    s = f(s);
    if (rank_ + 1 < size_) check(MPI_Send(&s, 1, MPI_DOUBLE, rank_ + 1, 4, MPI_COMM_WORLD), "MPI_Send");
    check(MPI_Bcast(&s, 1, MPI_DOUBLE, size_ - 1, MPI_COMM_WORLD), "MPI_Bcast");
    return s;
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    if (size_ == 1) return;
    Timer t(seconds_);
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kChunk * 4) {
      const int c = static_cast<int>(std::min(kChunk * 4, bytes - off));
      check(MPI_Bcast(p + off, c, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
  }

  void barrier() override {
    Timer t(seconds_);
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }

  void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

 private:
  static int64_t piece(const Range& r, int64_t k) { return std::max<int64_t>(0, std::min(kChunk, r.size() - k)); }
  static int64_t kChunkOr(int64_t longest) { return std::min(kChunk, longest); }

  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  std::vector<float> recv_;   // (size, min(kChunk, longest shard)): the pieces of this rank's shard
  std::vector<float> piece_;  // (≤ kChunk): rank 0's receive buffer of gather_range_to_root
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }
bool mpi_built() { return true; }

}  // namespace tritter::train

#else

namespace tritter::train {
std::unique_ptr<Communicator> make_mpi_communicator() {
  throw_error("mpi: this build of Tritter has no MPI: found no MPI at configure time, expected libopenmpi-dev "
              "(configure with -DTRITTER_MPI=ON)");
}
bool mpi_built() { return false; }
}  // namespace tritter::train

#endif
