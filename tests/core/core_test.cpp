#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/buffer.h"
#include "core/context.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/rng.h"

namespace tritter {
namespace {

// The backend seam: buffers know their device; this build has only the CPU, and asking for another is an error
// that leaves the account untouched.
TEST(Buffer, KnowsItsDevice) {
  MemoryAccount account;
  Buffer b(64, MemCategory::Scratch, &account);
  EXPECT_EQ(b.device(), Device::Cpu);
  EXPECT_EQ(b.clone().device(), Device::Cpu);
  EXPECT_TRUE(device_available(Device::Cpu));
  EXPECT_FALSE(device_available(Device::Cuda));
  const int64_t before = account.total_in_use();
  try {
    Buffer g(64, MemCategory::Scratch, &account, Device::Cuda);
    FAIL() << "a cuda buffer in a CPU-only build";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'cuda' is not available"), std::string::npos) << e.what();
  }
  EXPECT_EQ(account.total_in_use(), before);
  Context ctx;
  EXPECT_EQ(ctx.device, Device::Cpu);
  EXPECT_EQ(ctx.stream, nullptr);
}

TEST(Buffer, AlignedZeroedAndAccounted) {
  MemoryAccount account;
  {
    Buffer b(1000, MemCategory::Weights, &account);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % Buffer::kAlignment, 0u);
    for (uint8_t v : b.as<uint8_t>()) ASSERT_EQ(v, 0);
    EXPECT_EQ(account.in_use(MemCategory::Weights), 1000);
    Buffer moved = std::move(b);
    EXPECT_EQ(account.in_use(MemCategory::Weights), 1000);
    Buffer copy = moved.clone();
    EXPECT_EQ(account.in_use(MemCategory::Weights), 2000);
  }
  EXPECT_EQ(account.in_use(MemCategory::Weights), 0);
  EXPECT_EQ(account.peak(MemCategory::Weights), 2000);
  EXPECT_EQ(account.total_peak(), 2000);
}

TEST(DType, NamesRoundTrip) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                  DType::U8, DType::Bool}) {
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  }
  EXPECT_FALSE(dtype_from_name("F8").has_value());
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({3, 0, 5}), 0);
  EXPECT_EQ(shape_str({1536, 512}), "[1536, 512]");
  EXPECT_THROW(shape_numel({-1}), Error);
  EXPECT_THROW(shape_numel({int64_t{1} << 40, int64_t{1} << 40}), Error);
}

TEST(Memory, FormatAndParseBytes) {
  EXPECT_EQ(format_bytes(1.45e9), "1.45 GB");
  EXPECT_EQ(format_bytes(261e6), "261 MB");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes_binary(1024.0 * 1024 * 3), "3.00 MiB");
  EXPECT_EQ(parse_bytes("512M", "--memory-budget"), 512000000);
  EXPECT_EQ(parse_bytes("1.5GiB", "x"), 1610612736);
  EXPECT_EQ(parse_bytes("100", "x"), 100);
  try {
    parse_bytes("12Q", "--memory-budget");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--memory-budget"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'Q'"), std::string::npos);
  }
  EXPECT_THROW(parse_bytes("abc", "x"), Error);
  EXPECT_THROW(parse_bytes("-5M", "x"), Error);
}

TEST(Memory, ProcessAndSystemAreReadable) {
  const ProcessMemory p = process_memory();
  EXPECT_GT(p.rss_bytes, 0);
  EXPECT_GE(p.peak_rss_bytes, p.rss_bytes);
  EXPECT_GT(system_memory().total_bytes, 0);
}

TEST(Rng, DeterministicAndResumable) {
  Rng a(42), b(42);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  const auto saved = a.state();
  const uint64_t next = a.next_u64();
  Rng c(7);
  c.set_state(saved);
  EXPECT_EQ(c.next_u64(), next);
}

TEST(Rng, NextBelowIsInRangeAndCoversAll) {
  Rng r(1);
  std::set<uint32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint32_t v = r.next_below(7);
    ASSERT_LT(v, 7u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7u);
}

TEST(Rng, NormalMoments) {
  // 20k draws: the sample mean has standard error 1/sqrt(20000) ≈ 0.007; allow 5 of them.
  Rng r(3);
  double sum = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double v = r.normal();
    sum += v;
    sq += v * v;
  }
  EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(sq / n, 1.0, 5 * std::sqrt(2.0 / n));
}

TEST(Error, CheckReportsValues) {
  try {
    int found = 3;
    TRITTER_CHECK(found == 4, "found ", found, ", expected 4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("found 3, expected 4"), std::string::npos);
  }
}

TEST(Context, KernelTierNames) {
  EXPECT_EQ(kernel_tier_from_name("ref"), KernelTier::Reference);
  EXPECT_THROW(kernel_tier_from_name("sse"), Error);
}

}  // namespace
}  // namespace tritter
