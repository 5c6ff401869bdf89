// Dedup: exact keys ignore whitespace only; MinHash similarity tracks Jaccard within the binomial error
// sqrt(J(1-J)/P) of P = 256 independent permutations (tolerance 4 sigma per pair; over 40 pairs per similarity
// and size, the mean squared error in sigmas stays near 1, the binomial's); LSH joins
// near-duplicates and not unrelated files.
#include "data/dedup.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/util.h"
#include "text/unicode.h"

namespace tritter::data {
namespace {

std::string words(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) {
    s += 'w';
    s += std::to_string(i);
    s += i % 7 == 0 ? '\n' : ' ';
  }
  return s;
}

TEST(Dedup, ExactKeyFoldsWhitespaceOnly) {
  EXPECT_EQ(exact_key("def f():\n    return 1\n"), exact_key("  def   f():\n\treturn 1"));
  EXPECT_FALSE(exact_key("def f(): return 1") == exact_key("def f(): return 2"));
  EXPECT_FALSE(exact_key("ab") == exact_key("a b"));
  EXPECT_EQ(hash_hex(exact_key("x")).size(), 32u);
  EXPECT_EQ(fold_whitespace("  a \n\n b\t"), "a b");
  // The key is XXH3-128 of the folded text, at sizes around 4 and 16 KiB.
  for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(4095), size_t(4096), size_t(4097), size_t(16383), size_t(16384), size_t(16385), size_t(40000)}) {
    std::string t;
    for (size_t i = 0; i < n; ++i) t += " \tab\n\r x"[(i * 2654435761u >> 7) % 8];  // the 8 characters, not the terminating NUL
    const std::string folded = fold_whitespace(t);
    const XXH128_hash_t h = XXH3_128bits(folded.data(), folded.size());
    EXPECT_EQ(hash_hex(exact_key(t)), hash_hex(Hash128{h.low64, h.high64})) << n;
  }
}

TEST(Dedup, SimilarityTracksJaccard) {
  MinHasher h(MinHashConfig{});
  // A has 1000 words, B shares a run; 5-gram shingle Jaccard computed by hand: |A∩B| / |A∪B|.
  const std::string a = words(0, 1000);
  for (int shift : {0, 100, 300, 600}) {
    const std::string b = words(shift, 1000 + shift);
    const double shared = std::max(0, 1000 - shift - 4), total = 996.0 * 2 - shared;
    const double j = shared / total;
    const double sim = minhash_similarity(h.signature(a), h.signature(b));
    const double tol = 4.0 * std::sqrt(std::max(j * (1 - j), 1e-4) / 256.0);
    EXPECT_NEAR(sim, j, tol) << "shift " << shift;
  }
}

// The true shingle Jaccard of two word lists, by sets of joined 5-grams (BigCode's definition).
double shingle_jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  auto grams = [](const std::vector<std::string>& w) {
    std::set<std::string> s;
    for (size_t i = 0; i + 5 <= w.size(); ++i) s.insert(w[i] + ' ' + w[i + 1] + ' ' + w[i + 2] + ' ' + w[i + 3] + ' ' + w[i + 4]);
    return s;
  };
  const auto sa = grams(a), sb = grams(b);
  size_t both = 0;
  for (const auto& g : sa) both += sb.count(g);
  return double(both) / double(sa.size() + sb.size() - both);
}

std::string join(const std::vector<std::string>& w) {
  std::string s;
  for (const auto& x : w) s += x + (x.size() % 3 == 0 ? "\n" : " ");
  return s;
}

TEST(Dedup, EstimateWithinBinomialErrorAcrossSimilaritiesAndSizes) {
  MinHasher h(MinHashConfig{});
  Rng rng(2024);
  // Words from a vocabulary of 50 000, so short documents repeat few shingles; B replaces each word of A with
  // probability q, chosen so that the expected shingle Jaccard is J: (1-q)^5 = 2J/(1+J).
  auto word = [&] {
    std::string w(1, 'w');
    w += std::to_string(rng.next_u64() % 50000);
    return w;
  };
  const int kTrials = 40;
  for (const size_t len : {size_t(12), size_t(40), size_t(150), size_t(600), size_t(2000)}) {
    for (const double target : {0.95, 0.8, 0.6, 0.4, 0.2}) {
      const double q = 1.0 - std::pow(2 * target / (1 + target), 0.2);
      double sum_z = 0, sum_z2 = 0, max_z = 0;
      for (int t = 0; t < kTrials; ++t) {
        std::vector<std::string> a(len), b;
        for (auto& x : a) x = word();
        b = a;
        for (auto& x : b)
          if (double(rng.next_u64() >> 11) * 0x1.0p-53 < q) x = word();
        const double j = shingle_jaccard(a, b);
        const double sim = minhash_similarity(h.signature(join(a)), h.signature(join(b)));
        const double sigma = std::sqrt(std::max(j * (1 - j), 1e-3) / 256.0);
        const double z = (sim - j) / sigma;
        EXPECT_LE(std::abs(z), 4.0) << "len " << len << " J " << j << " estimate " << sim;
        sum_z += z;
        sum_z2 += z * z;
        max_z = std::max(max_z, std::abs(z));
      }
      const double mean_z = sum_z / kTrials, ms_z = sum_z2 / kTrials;
      std::printf("len %5zu  J~%.2f  mean error %+.2f sigma  mean squared %.2f sigma^2  max %.2f sigma\n", len, target,
                  mean_z, ms_z, max_z);
      EXPECT_LE(std::abs(mean_z), 4.0 / std::sqrt(double(kTrials))) << "bias, len " << len << " J " << target;
      EXPECT_LE(ms_z, 1.6) << "variance, len " << len << " J " << target;
    }
  }
}

TEST(Dedup, SignatureDeterministicAndSeeded) {
  MinHasher h(MinHashConfig{}), h2(MinHashConfig{});
  MinHashConfig other;
  other.seed = 43;
  MinHasher h3(other);
  const std::string a = words(0, 50);
  EXPECT_EQ(h.signature(a), h2.signature(a));
  EXPECT_NE(h.signature(a), h3.signature(a));
  EXPECT_DOUBLE_EQ(minhash_similarity(h.signature(a), h.signature(a)), 1.0);
}

TEST(Dedup, ShortTextsHaveNoSignature) {
  MinHasher h(MinHashConfig{});
  EXPECT_TRUE(h.signature("one two three four").empty());
  EXPECT_TRUE(h.band_hashes({}).empty());
  EXPECT_EQ(h.signature("one two three four five").size(), 256u);
}

TEST(Dedup, CaseAndPunctuationInsensitive) {
  MinHasher h(MinHashConfig{});
  EXPECT_EQ(h.signature("Hello, World! foo(bar) baz qux"), h.signature("hello world foo bar baz qux"));
}

TEST(Dedup, LshClustersNearDuplicates) {
  MinHasher h(MinHashConfig{});
  const std::string base = words(0, 2000);
  std::string edited = base;
  edited.replace(edited.find("w500 "), 5, "changed ");  // one word: Jaccard ~ 0.995
  const std::vector<std::string> docs = {base, words(5000, 7000), edited, words(9000, 11000), base + " tail words"};
  NearDupIndex index(25);
  for (size_t i = 0; i < docs.size(); ++i) index.add(uint32_t(i), h.band_hashes(h.signature(docs[i])));
  const auto root = index.clusters(uint32_t(docs.size()));
  EXPECT_EQ(root[0], 0u);
  EXPECT_EQ(root[1], 1u);
  EXPECT_EQ(root[2], 0u);
  EXPECT_EQ(root[3], 3u);
  EXPECT_EQ(root[4], 0u);
}

TEST(Dedup, BadConfigThrows) {
  MinHashConfig c;
  c.bands = 30;  // 30 x 10 > 256
  EXPECT_THROW(MinHasher{c}, Error);
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(unicode::is_valid_utf8("plain ascii"));
  EXPECT_TRUE(unicode::is_valid_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xC3"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(unicode::is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(unicode::is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(unicode::is_valid_utf8("abcdefgh\xFF"));
  // Around the 32- and 8-byte ASCII steps: the first non-ASCII byte at every offset of two blocks.
  for (size_t at = 0; at < 70; ++at) {
    std::string bad(70, 'a'), good(70, 'a');
    bad[at] = '\xFF';
    EXPECT_FALSE(unicode::is_valid_utf8(bad)) << at;
    if (at + 1 == good.size()) continue;
    good[at] = '\xC3', good[at + 1] = '\xA9';
    EXPECT_TRUE(unicode::is_valid_utf8(good)) << at;
    EXPECT_FALSE(unicode::is_valid_utf8(good.substr(0, at + 1))) << at;  // a sequence cut after its lead byte
  }
}

}  // namespace
}  // namespace tritter::data
