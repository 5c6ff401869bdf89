// Exact keys, MinHash signatures and the LSH union-find (see dedup.h). Shingle hashing differs from BigCode's
// byte-exact recipe (xxh32 of the joined 5-gram string): each word is hashed once (FNV-1a and a 64-bit
// finalizer) and five word hashes are mixed in order, which gives the same set semantics without building strings. The
// 256 "permutations" are bijections of the 32-bit shingle hash, h_i(x) = m((x ^ b_i) · a_i mod 2^32) with odd a_i and
// m(h) = h ^ (h >> 16), seeded from the config: 32-bit lanes, so the compiler vectorizes the min loop even at the SSE2
// baseline (BigCode's (a·x + b) mod (2^61 - 1) needs 64-bit multiplies; dedup_test checks the Jaccard estimate stays
// within its binomial error).
#include "data/dedup.h"

#include <algorithm>
#include <array>
#include <numeric>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "kernels/minhash.h"
#include "data/util.h"

namespace tritter::data {

Hash128 exact_key(std::string_view text) {
  // One-shot over a folded copy: a streamed fold through a small buffer was tried and cost more instructions
  // (the buffer check per byte outweighs the allocation).
  const std::string folded = fold_whitespace(text);
  const XXH128_hash_t h = XXH3_128bits(folded.data(), folded.size());
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
constexpr bool word_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}
}  // namespace

MinHasher::MinHasher(const MinHashConfig& config) : config_(config) {
  if (config.num_perm <= 0 || config.bands <= 0 || config.rows <= 0 || config.ngram <= 0 ||
      config.bands * config.rows > config.num_perm)
    throw_error("minhash config: bands x rows must fit in num_perm: found bands=", config.bands, " rows=", config.rows,
                " num_perm=", config.num_perm, ", expected bands*rows <= num_perm");
  uint64_t state = config.seed;
  a_.resize(size_t(config.num_perm));
  b_.resize(size_t(config.num_perm));
  for (int i = 0; i < config.num_perm; ++i) {
    a_[size_t(i)] = uint32_t(splitmix64(state)) | 1u;
    b_[size_t(i)] = uint32_t(splitmix64(state));
  }
}

std::vector<uint32_t> MinHasher::signature(std::string_view text) const {
  // Word hashes of the lower-cased text split on non-word characters: FNV-1a over the bytes as they stream
  // past (no per-word string), finished with the splitmix64 finalizer.
  std::vector<uint64_t> words;
  words.reserve(text.size() / 6);
  // kFold: a word byte lower-cased, 0 for a separator (one load instead of five compares a byte).
  static constexpr auto kFold = [] {
    std::array<uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c)
      if (word_char(static_cast<unsigned char>(c))) t[size_t(c)] = uint8_t(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return t;
  }();
  auto finish = [&words](uint64_t wh) {
    wh = (wh ^ (wh >> 30)) * 0xBF58476D1CE4E5B9ull;
    wh = (wh ^ (wh >> 27)) * 0x94D049BB133111EBull;
    words.push_back(wh ^ (wh >> 31));
  };
  uint64_t wh = 0;
  bool in_word = false;
  for (const char ch : text) {
    const uint8_t c = kFold[static_cast<unsigned char>(ch)];
    if (c != 0) {
      if (!in_word) wh = 0xcbf29ce484222325ull;
      in_word = true;
      wh = (wh ^ c) * 0x100000001b3ull;
    } else if (in_word) {
      in_word = false;
      finish(wh);
    }
  }
  if (in_word) finish(wh);
  const size_t k = size_t(config_.ngram);
  if (words.size() < k) return {};
  const size_t n = size_t(config_.num_perm);
  std::vector<uint32_t> sig(n, 0xFFFFFFFFu);
  std::vector<uint32_t> shingles;
  shingles.reserve(words.size() - k + 1);
  for (size_t i = 0; i + k <= words.size(); ++i) {
    uint64_t h = 0x243F6A8885A308D3ull;
    for (size_t j = 0; j < k; ++j) h = (h ^ words[i + j]) * 0x100000001B3ull + (h >> 29);
    h ^= h >> 32;
    shingles.push_back(uint32_t(h * 0x9E3779B97F4A7C15ull >> 32));
  }
  // Repeated shingles are left in: they cannot change a minimum, and the vectorized loop is cheaper than a sort.
  minhash_update(sig.data(), a_.data(), b_.data(), n, shingles.data(), shingles.size());
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
