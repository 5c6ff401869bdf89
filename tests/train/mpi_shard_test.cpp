// The pieces of data-parallel training that need no second process (docs/distributed.md): shard_range, AdamW over
// shards against the whole update, the chained sum of squares against the one-pass norm, the single-process
// communicator, and the planner's ZeRO-1 term. The multi-process runs are tests/train/mpi_train_test.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/config.h"
#include "model/tensor_table.h"
#include "plan/specs.h"
#include "train/dist.h"
#include "train/optim.h"

namespace tritter::train {

TEST(MpiShard, ShardRangeCoversInOrderWithSizesWithinOne) {
  for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 257}) {
    for (int size : {1, 2, 3, 4, 7}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const Range s = shard_range(n, r, size);
        EXPECT_EQ(s.lo, next) << "n " << n << " size " << size << " rank " << r;
        EXPECT_TRUE(s.size() == n / size || s.size() == n / size + 1) << "n " << n << " rank " << r;
        EXPECT_GE(shard_range(n, 0, size).size(), s.size());  // rank 0 holds the largest shard (the planner's)
        next = s.hi;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(MpiShard, AdamWOverShardsEqualsTheWholeUpdateBitForBit) {
  const TritterConfig c = preset_config("test");
  const auto table = tensor_table(c);
  const int64_t P = table.back().offset + table.back().numel();
  Rng rng(7);
  std::vector<float> p0(static_cast<size_t>(P)), g(p0.size());
  for (auto& x : p0) x = rng.normal();
  for (auto& x : g) x = 0.01f * rng.normal();
  Context ctx;
  for (int size : {2, 3}) {
    std::vector<AdamW> shards;
    shards.reserve(static_cast<size_t>(size));
    for (int r = 0; r < size; ++r) {
      const Range s = shard_range(P, r, size);
      shards.emplace_back(P, ctx, AdamWParams{}, s.lo, s.hi);
      EXPECT_EQ(static_cast<int64_t>(shards.back().m().size()), s.size());
    }
    std::vector<float> ps = p0, pw2 = p0;
    AdamW whole2(P, ctx);
    for (int step = 0; step < 3; ++step) {
      whole2.step(pw2, g, table, 1e-3, 0.1);
      for (auto& a : shards) a.step(ps, g, table, 1e-3, 0.1);
    }
    ASSERT_EQ(std::memcmp(ps.data(), pw2.data(), ps.size() * sizeof(float)), 0) << size << " shards";
    for (int r = 0; r < size; ++r) {
      const Range s = shard_range(P, r, size);
      ASSERT_EQ(std::memcmp(shards[static_cast<size_t>(r)].v().data(), whole2.v().data() + s.lo,
                            static_cast<size_t>(s.size()) * sizeof(float)), 0);
    }
  }
}

TEST(MpiShard, ChainedSumOfSquaresHasTheBitsOfTheOnePassNorm) {
  Rng rng(3);
  std::vector<float> g(1000003);
  for (auto& x : g) x = rng.normal();
  const double whole = grad_global_norm(g);
  for (int size : {2, 3, 5}) {
    double s = 0;
    for (int r = 0; r < size; ++r) {
      const Range sh = shard_range(static_cast<int64_t>(g.size()), r, size);
      s = grad_sum_squares(std::span<const float>(g).subspan(static_cast<size_t>(sh.lo), static_cast<size_t>(sh.size())), s);
    }
    EXPECT_EQ(std::sqrt(s), whole) << size << " shards";
  }
  auto local = make_local_communicator();
  EXPECT_EQ(local->size(), 1);
  EXPECT_EQ(std::sqrt(local->chain([&](double s) { return grad_sum_squares(g, s); })), whole);
}

TEST(MpiShard, PlannerZero1TermIsRankZerosShard) {
  const TritterConfig c = preset_config("tiny");
  const int64_t P = parameter_count(c);
  PlanOptions o;
  o.mode = PlanMode::Train;
  o.context = 64;
  o.batch = 5;
  auto adam_bytes = [&](const std::vector<MemoryItem>& items) {
    int64_t b = 0;
    for (const auto& i : items) b += i.name.rfind("AdamW", 0) == 0 ? i.bytes : 0;
    return b;
  };
  EXPECT_EQ(adam_bytes(plan_memory(c, o)), 8 * P);
  for (int ranks : {2, 3, 4}) {
    o.ranks = ranks;
    EXPECT_EQ(adam_bytes(plan_memory(c, o)), 8 * shard_range(P, 0, ranks).size()) << ranks << " ranks";
  }
  o.zero1 = false;
  EXPECT_EQ(adam_bytes(plan_memory(c, o)), 8 * P);
  o.ranks = 6;  // more ranks than sequences
  EXPECT_THROW(plan_memory(c, o), Error);
}

}  // namespace tritter::train
