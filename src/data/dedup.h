// Deduplication (issue 8 stage 5, spec/ecosystem.md §6.1): exact on xxHash3-128 of whitespace-folded content,
// then near-duplicates by MinHash-LSH as BigCode does for The Stack (word 5-gram shingles, 256 hashes,
// 25 bands x 10 rows ~ Jaccard 0.7, union-find). Memory per document: 16 bytes (exact) + 12 bytes per band.
// Non-goals: verifying candidate pairs by exact Jaccard (BigCode v2 does not either), cross-run indexes.
#pragma once
#include <cstdint>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tritter::data {

struct Hash128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Hash128&) const = default;
};
struct Hash128Hasher {
  size_t operator()(const Hash128& h) const { return size_t(h.lo ^ (h.hi * 0x9E3779B97F4A7C15ull)); }
};

// xxHash3-128 of the whitespace-folded text (the exact-dedup key and the record id).
Hash128 exact_key(std::string_view text);
std::string hash_hex(const Hash128& h);  // 32 hex digits, high half first

struct MinHashConfig {
  int num_perm = 256;
  int bands = 25;
  int rows = 10;  // bands * rows <= num_perm
  int ngram = 5;
  uint64_t seed = 42;
};

// One-permutation MinHash (Li, Owen and Zhang 2012) filled by rounds as in Dahlgaard, Knudsen and Thorup's fast
// similarity sketching (2017): in round r every shingle's hash picks one of num_perm slots and a 32-bit value, and
// a slot keeps the smallest (round, value) over all shingles and rounds; rounds stop once every slot is filled
// (later rounds cannot win a filled slot), which for a document of m shingles takes one round when m is large and
// about num_perm·ln(num_perm)/m rounds when it is small. A slot's winner is uniform over the union of two
// documents' shingles, so the two agree there with probability their Jaccard similarity, as with num_perm
// independent permutations, at one hash per shingle instead of num_perm.
class MinHasher {
 public:
  explicit MinHasher(const MinHashConfig& config);  // throws Error on inconsistent sizes
  // Signature (num_perm) over word n-gram shingles of the lower-cased text; empty if it has < ngram words.
  std::vector<uint32_t> signature(std::string_view text) const;
  // One 64-bit hash per band of the signature; empty for an empty signature.
  std::vector<uint64_t> band_hashes(const std::vector<uint32_t>& signature) const;
  const MinHashConfig& config() const { return config_; }

 private:
  MinHashConfig config_;
  uint64_t seed_ = 0, pow_k_ = 0;  // the shingle hash's seed; kPoly^ngram for the rolling shingle hash
};

// Estimated Jaccard similarity: the fraction of equal signature slots.
double minhash_similarity(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);

// The LSH index: documents sharing any band hash are joined (union-find); components are the clusters.
class NearDupIndex {
 public:
  explicit NearDupIndex(int bands) : bands_(bands) {}
  void add(uint32_t doc, const std::vector<uint64_t>& band_hashes);  // doc ids dense from 0
  // Component representative per doc id in [0, n_docs): the smallest doc id of its cluster.
  std::vector<uint32_t> clusters(uint32_t n_docs);
  size_t memory_bytes() const { return entries_.capacity() * sizeof(Entry); }

 private:
  struct Entry {
    uint64_t hash;
    uint32_t doc;
  };
  int bands_;
  std::vector<Entry> entries_;  // hash already mixed with the band index
};

}  // namespace tritter::data
