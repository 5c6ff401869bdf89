// The MinHash update against its reference: integer arithmetic, so bit for bit, over odd lengths.
#include "kernels/minhash.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/rng.h"

namespace tritter {
namespace {

TEST(MinHashKernel, EqualsReferenceOverOddSizes) {
  Rng rng(5);
  auto u32 = [&] { return static_cast<uint32_t>(rng.next_u64()); };
  for (size_t n : {1, 2, 3, 15, 16, 17, 33, 127, 129}) {
    for (size_t m : {0, 1, 5, 64}) {
      std::vector<uint32_t> a(n), b(n), sh(m), sig(n), want(n);
      for (auto& x : a) x = u32() | 1u;
      for (auto& x : b) x = u32();
      for (auto& x : sh) x = u32();
      for (size_t p = 0; p < n; ++p) sig[p] = want[p] = p % 3 == 0 ? 0xFFFFFFFFu : u32();
      minhash_update(sig.data(), a.data(), b.data(), n, sh.data(), m);
      ref::minhash_update(want.data(), a.data(), b.data(), n, sh.data(), m);
      EXPECT_EQ(sig, want) << "n=" << n << " m=" << m;
    }
  }
}

}  // namespace
}  // namespace tritter
