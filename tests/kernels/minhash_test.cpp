// The MinHash kernels against their references: integer arithmetic, so bit for bit. The word hashes over every
// mask tier, on texts of every byte class with words that cross the 64-byte blocks, run to the end, or are
// longer than several 8-byte chunks.
#include "kernels/minhash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
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

TEST(WordHashes, EveryTierEqualsReference) {
  Rng rng(11);
  // Separators (with the bytes just outside each word class: '/', ':', '@', '[', '`', '{', 0x7F) and word bytes
  // (both ends of each class, '_', UTF-8 lead and continuation bytes, 0xFF).
  const std::string seps = " \t\n.,;(){}-+=@[`/:\x7F", wordb = "azAZmM09_5\x80\xC3\xA9\xFF";
  for (size_t len : {0, 1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 200, 1000, 4099}) {
    for (int rep = 0; rep < 8; ++rep) {
      std::string t;
      const int mode = rep % 4;  // 0: short words, 1: long words, 2: all word bytes, 3: all separators
      for (size_t i = 0; i < len; ++i) {
        const uint64_t r = rng.next_u64();
        const bool sep = mode == 3 || (mode == 0 && r % 5 == 0) || (mode == 1 && r % 37 == 0);
        t += sep ? seps[(r >> 8) % seps.size()] : wordb[(r >> 8) % wordb.size()];
      }
      std::vector<uint64_t> want;
      ref::word_hashes(t, want);
      for (int tier = 0; tier <= 2; ++tier) {
        std::vector<uint64_t> got(word_hashes_capacity(t.size()));
        got.resize(word_hashes_tier(t, got.data(), tier));
        EXPECT_EQ(got, want) << "len=" << len << " rep=" << rep << " tier=" << tier;
      }
    }
  }
}

std::vector<uint64_t> hashes(std::string_view t) {
  std::vector<uint64_t> out(word_hashes_capacity(t.size()));
  out.resize(word_hashes(t, out.data()));
  return out;
}

TEST(WordHashes, FoldCaseAndSplitOnSeparators) {
  std::vector<uint64_t> a, b, c;
  a = hashes("Hello, World_9 caf\xC3\xA9 x");
  b = hashes("hello world_9\ncaf\xC3\xA9\tX ");
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a, b);
  c = hashes("hello world-9 cafe x");  // '-' splits, 'e' is not 'é'
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0], a[0]);
  EXPECT_NE(c[1], a[1]);
  // Words of 8 and 9 bytes (one chunk and a padded second one), '_' kept, and a 26-byte word in four chunks.
  std::vector<uint64_t> d, e;
  d = hashes("abcdefgh abcdefghi abcdefgh_ ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  e = hashes("ABCDEFGH ABCDEFGHI ABCDEFGH_ abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(d, e);
  EXPECT_NE(d[0], d[1]);
  EXPECT_NE(d[0], d[2]);
}

TEST(WordHashes, ShortWordsNeverCollide) {
  // Every word of 1 to 3 bytes over 40 lower-case word bytes, and 100 000 random ones of 4 to 8 bytes.
  const std::string wordb = "abcdefghijklmnopqrstuvwxyz0123456789_\x80\xC3\xFF";
  std::set<std::string> words;
  for (char a : wordb) {
    words.insert(std::string(1, a));
    for (char b : wordb) {
      words.insert(std::string{a, b});
      for (char c : wordb) words.insert(std::string{a, b, c});
    }
  }
  Rng rng(3);
  while (words.size() < 170000) {
    std::string w(4 + rng.next_u64() % 5, 'a');
    for (auto& ch : w) ch = wordb[rng.next_u64() % wordb.size()];
    words.insert(w);
  }
  std::string text;
  for (const auto& w : words) text += w + ' ';
  const std::vector<uint64_t> h = hashes(text);
  ASSERT_EQ(h.size(), words.size());
  EXPECT_EQ(std::set<uint64_t>(h.begin(), h.end()).size(), words.size());
}

}  // namespace
}  // namespace tritter
