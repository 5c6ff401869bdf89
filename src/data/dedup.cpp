// Exact keys, MinHash signatures and the LSH union-find (see dedup.h). Shingle hashing differs from BigCode's
// byte-exact recipe (xxh32 of the joined 5-gram string, 256 permutations (a·x + b) mod (2^61 - 1)): each word is
// hashed once (kernels/minhash), a shingle's hash is a polynomial in its five word hashes mod 2^64 rolled from one
// shingle to the next (one multiply-add and one multiply-subtract), and one hash per shingle (MurmurHash3's 64-bit
// mixer) picks its slot among the 256 instead of 256 permutations (see dedup.h). The set semantics are BigCode's;
// dedup_test checks the Jaccard estimate against the true shingle Jaccard at several similarities and sizes.
#include "data/dedup.h"

#include <algorithm>
#include <array>
#include <memory>
#include <numeric>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "kernels/minhash.h"
#include "kernels/text_scan.h"
#include "data/util.h"

namespace tritter::data {

Hash128 exact_key(std::string_view text) {
  // One-shot over a folded copy in an uninitialised buffer (a streamed fold through a small buffer was tried and
  // cost more instructions: the buffer check per byte outweighs the allocation).
  const std::unique_ptr<char[]> folded(new char[text.size() + 1]);
  const size_t n = fold_whitespace_into(text, folded.get());
  const XXH128_hash_t h = XXH3_128bits(folded.get(), n);
  return {h.low64, h.high64};
}

std::string hash_hex(const Hash128& h) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[size_t(i)] = kHex[(h.hi >> (60 - 4 * i)) & 15];
    s[size_t(16 + i)] = kHex[(h.lo >> (60 - 4 * i)) & 15];
  }
  return s;
}

namespace {
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr uint64_t kPoly = 0x9E3779B97F4A7C15ull;  // odd: the rolling hash's base
}  // namespace

MinHasher::MinHasher(const MinHashConfig& config) : config_(config) {
  if (config.num_perm <= 0 || config.bands <= 0 || config.rows <= 0 || config.ngram <= 0 ||
      config.bands * config.rows > config.num_perm)
    throw_error("minhash config: bands x rows must fit in num_perm: found bands=", config.bands, " rows=", config.rows,
                " num_perm=", config.num_perm, ", expected bands*rows <= num_perm");
  uint64_t state = config.seed;
  seed_ = splitmix64(state);
  pow_k_ = 1;
  for (int j = 0; j < config.ngram; ++j) pow_k_ *= kPoly;
}

std::vector<uint32_t> MinHasher::signature(std::string_view text) const {
  // Uninitialised: only the written part of the buffer (a word per ~7 bytes of code) is touched. It holds the word
  // hashes, then in place the shingle hashes.
  const std::unique_ptr<uint64_t[]> buffer(new uint64_t[word_hashes_capacity(text.size())]);
  uint64_t* const hashes = buffer.get();
  const size_t words = word_hashes(text, hashes);
  const size_t k = size_t(config_.ngram);
  if (words < k) return {};
  const size_t n = size_t(config_.num_perm), shingles = words - k + 1;
  std::vector<uint32_t> sig(n, 0xFFFFFFFFu);
  std::vector<uint8_t> done(n, 0);  // filled in an earlier round
  // Round r gives shingle s the slot and value of mix(s + r·φ): slot from the high half, value the low half.
  auto slot_value = [n](uint64_t s, uint64_t round) {
    uint64_t x = s + round * 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 33)) * 0xFF51AFD7ED558CCDull;
    x = (x ^ (x >> 33)) * 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return std::pair<size_t, uint32_t>(size_t(((x >> 32) * n) >> 32), uint32_t(x));
  };
  // Round 0, rolled: h = sum_j hashes[i + j] * kPoly^(k - 1 - j) (mod 2^64) is shingle i; hashes[i] is not needed
  // once shingle i + 1 is rolled, so the shingle hash takes its place. Repeated shingles cannot change a minimum.
  uint64_t h = 0;
  for (size_t j = 0; j < k; ++j) h = h * kPoly + hashes[j];
  for (size_t i = 0; i < shingles; ++i) {
    const uint64_t s = h ^ seed_;
    if (i + 1 < shingles) h = h * kPoly - hashes[i] * pow_k_ + hashes[i + k];
    hashes[i] = s;
    const auto [slot, v] = slot_value(s, 0);
    sig[slot] = v < sig[slot] ? v : sig[slot];
    done[slot] = 1;
  }
  size_t filled = 0;
  for (const uint8_t d : done) filled += d;
  // Later rounds only fill slots still empty (their values rank after every earlier round's); a slot's value is
  // thus its minimum over (round, value) of all pairs, whichever round a document stops at. A round costs one
  // hash per shingle: the slots it fills are listed, not searched (a 5-word document takes ~1600 rounds).
  std::vector<uint32_t> won;
  for (uint64_t round = 1; filled < n; ++round) {
    for (size_t i = 0; i < shingles; ++i) {
      const auto [slot, v] = slot_value(hashes[i], round);
      if (done[slot] == 1) continue;
      if (done[slot] == 0) {
        done[slot] = 2;  // won in this round
        won.push_back(uint32_t(slot));
        sig[slot] = v;
      } else if (v < sig[slot]) {
        sig[slot] = v;
      }
    }
    for (const uint32_t slot : won) done[slot] = 1;
    filled += won.size();
    won.clear();
  }
  return sig;
}

std::vector<uint64_t> MinHasher::band_hashes(const std::vector<uint32_t>& signature) const {
  std::vector<uint64_t> out;
  if (signature.empty()) return out;
  const size_t r = size_t(config_.rows);
  for (int band = 0; band < config_.bands; ++band)
    out.push_back(XXH3_64bits_withSeed(signature.data() + size_t(band) * r, r * sizeof(uint32_t), uint64_t(band)));
  return out;
}

double minhash_similarity(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.empty() || a.size() != b.size()) return 0.0;
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return double(same) / double(a.size());
}

void NearDupIndex::add(uint32_t doc, const std::vector<uint64_t>& band_hashes) {
  TRITTER_CHECK(band_hashes.empty() || int(band_hashes.size()) == bands_, "band count ", band_hashes.size());
  for (size_t i = 0; i < band_hashes.size(); ++i)
    entries_.push_back({band_hashes[i] ^ (uint64_t(i) * 0x9E3779B97F4A7C15ull), doc});
}

std::vector<uint32_t> NearDupIndex::clusters(uint32_t n_docs) {
  std::vector<uint32_t> parent(n_docs);
  std::iota(parent.begin(), parent.end(), 0u);
  auto find = [&](uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.hash != b.hash ? a.hash < b.hash : a.doc < b.doc; });
  for (size_t i = 1; i < entries_.size(); ++i) {
    if (entries_[i].hash != entries_[i - 1].hash) continue;
    TRITTER_CHECK(entries_[i].doc < n_docs && entries_[i - 1].doc < n_docs, "doc id out of range");
    uint32_t x = find(entries_[i].doc), y = find(entries_[i - 1].doc);
    if (x != y) parent[std::max(x, y)] = std::min(x, y);  // the smallest id stays the root
  }
  for (uint32_t i = 0; i < n_docs; ++i) parent[i] = find(i);
  return parent;
}

}  // namespace tritter::data
