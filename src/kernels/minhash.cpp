#include "kernels/minhash.h"

#include <bit>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tritter {

namespace {

constexpr uint64_t kPhi = 0x9E3779B97F4A7C15ull;

// Sets bit 5 of every byte below 0x80 (see minhash.h: the case fold).
inline uint64_t fold8(uint64_t c) { return c | ((~c & 0x8080808080808080ull) >> 2); }
inline uint64_t mix_chunk(uint64_t h, uint64_t c) {
  h = (h ^ c) * 0x9FB21C651E98DF25ull;
  return h ^ (h >> 31);
}
inline uint64_t load8(const uint8_t* p, size_t n) {  // n <= 8 bytes, little-endian, zero-padded
  uint64_t c = 0;
  std::memcpy(&c, p, n);
  if constexpr (std::endian::native == std::endian::big) c = __builtin_bswap64(c);
  return c;
}

constexpr bool word_byte(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

// The hash of the word p[0, len), len >= 1; bytes up to `end` may be read (and are masked off). Only the last
// chunk of a text needs the short copy.
__attribute__((always_inline)) inline uint64_t hash_word(const uint8_t* p, size_t len, const uint8_t* end) {
  uint64_t h = kPhi;
  for (; len > 8; p += 8, len -= 8) h = mix_chunk(h, fold8(load8(p, 8)));
  const uint64_t c = end - p >= 8 ? load8(p, 8) : load8(p, size_t(end - p));
  return mix_chunk(h, fold8(c) & (~0ull >> (64 - 8 * len)));
}

// Bit b of the result: p[b] is a word byte (64 bytes).
uint64_t word_mask_scalar(const uint8_t* p) {
  uint64_t m = 0;
  for (int b = 0; b < 64; ++b) m |= uint64_t(word_byte(p[b])) << b;
  return m;
}

#if defined(__SSE2__)
// Letters: (b | 0x20) - 'a' < 26 unsigned, digits: b - '0' < 10 unsigned (signed compares after adding 0x80),
// '_' by equality, bytes >= 0x80 by the sign.
inline uint64_t word_mask16(__m128i b) {
  const __m128i lower = _mm_or_si128(b, _mm_set1_epi8(0x20));
  const __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(lower, _mm_set1_epi8(128 - 'a')), _mm_set1_epi8(char(0x80 + 26)));
  const __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(b, _mm_set1_epi8(128 - '0')), _mm_set1_epi8(char(0x80 + 10)));
  const __m128i other = _mm_or_si128(_mm_cmpeq_epi8(b, _mm_set1_epi8('_')), _mm_cmplt_epi8(b, _mm_setzero_si128()));
  return uint64_t(uint32_t(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), other))));
}
inline uint64_t word_mask_sse2(const uint8_t* p) {
  const auto* v = reinterpret_cast<const __m128i*>(p);
  return word_mask16(_mm_loadu_si128(v)) | word_mask16(_mm_loadu_si128(v + 1)) << 16 |
         word_mask16(_mm_loadu_si128(v + 2)) << 32 | word_mask16(_mm_loadu_si128(v + 3)) << 48;
}

// The same tests 32 bytes a step (cmpgt with the operands swapped for cmplt).
__attribute__((target("avx2"))) inline uint64_t word_mask32(__m256i b) {
  const __m256i lower = _mm256_or_si256(b, _mm256_set1_epi8(0x20));
  const __m256i alpha =
      _mm256_cmpgt_epi8(_mm256_set1_epi8(char(0x80 + 26)), _mm256_add_epi8(lower, _mm256_set1_epi8(128 - 'a')));
  const __m256i digit =
      _mm256_cmpgt_epi8(_mm256_set1_epi8(char(0x80 + 10)), _mm256_add_epi8(b, _mm256_set1_epi8(128 - '0')));
  const __m256i other =
      _mm256_or_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi8('_')), _mm256_cmpgt_epi8(_mm256_setzero_si256(), b));
  return uint64_t(uint32_t(_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(alpha, digit), other))));
}
__attribute__((target("avx2"))) uint64_t word_mask_avx2(const uint8_t* p) {
  const auto* v = reinterpret_cast<const __m256i*>(p);
  return word_mask32(_mm256_loadu_si256(v)) | word_mask32(_mm256_loadu_si256(v + 1)) << 32;
}
#endif

// Words from the masks: bit b of m ^ (m << 1 | carry) marks a word's first byte or the byte after its last, in
// turn, so each word costs two bit pops and its own bytes' hashing.
template <uint64_t (*Mask)(const uint8_t*)>
size_t scan_words(std::string_view text, uint64_t* out) {
  uint64_t* const first = out;
  const auto* d = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const uint8_t* end = d + n;
  bool in_word = false;
  size_t start = 0;
  uint64_t carry = 0;
  for (size_t base = 0; base < n; base += 64) {
    uint64_t m;
    if (base + 64 <= n) {
      m = Mask(d + base);
    } else {
      uint8_t tail[64] = {};  // zeros are not word bytes: a word running to the end closes at n
      std::memcpy(tail, d + base, n - base);
      m = Mask(tail);
    }
    uint64_t t = m ^ (m << 1 | carry);
    carry = m >> 63;
    for (; t; t &= t - 1) {
      const size_t pos = base + size_t(std::countr_zero(t));
      if (in_word) *out++ = hash_word(d + start, pos - start, end);
      start = pos;
      in_word = !in_word;
    }
  }
  if (in_word) *out++ = hash_word(d + start, n - start, end);
  return size_t(out - first);
}

}  // namespace

size_t word_hashes_tier(std::string_view text, uint64_t* out, int tier) {
#if defined(__SSE2__)
  if (tier >= 2 && __builtin_cpu_supports("avx2")) return scan_words<word_mask_avx2>(text, out);
  if (tier >= 1) return scan_words<word_mask_sse2>(text, out);
#endif
  return scan_words<word_mask_scalar>(text, out);
}

size_t word_hashes(std::string_view text, uint64_t* out) { return word_hashes_tier(text, out, 2); }

// Plain C++ that the compiler vectorizes; target_clones builds AVX-512 and AVX2 copies next to the baseline one.
__attribute__((target_clones("avx512f", "avx2", "default"))) void minhash_update(uint32_t* __restrict sig,
                                                                                 const uint32_t* __restrict a,
                                                                                 const uint32_t* __restrict b, size_t n,
                                                                                 const uint32_t* shingles, size_t m) {
  for (size_t i = 0; i < m; ++i) {
    const uint32_t x = shingles[i];
    for (size_t p = 0; p < n; ++p) {
      uint32_t v = (x ^ b[p]) * a[p];
      v ^= v >> 16;
      sig[p] = v < sig[p] ? v : sig[p];
    }
  }
}

namespace ref {
void word_hashes(std::string_view text, std::vector<uint64_t>& out) {
  uint64_t h = kPhi, chunk = 0;
  size_t len = 0;
  auto close = [&] {
    if (len % 8 != 0) h = mix_chunk(h, chunk);
    out.push_back(h);
    h = kPhi;
    len = 0;
  };
  for (const char ch : text) {
    const uint8_t c = static_cast<uint8_t>(ch);
    if (!word_byte(c)) {
      if (len) close();
      continue;
    }
    if (len % 8 == 0) chunk = 0;
    chunk |= uint64_t(c < 0x80 ? c | 0x20 : c) << (8 * (len % 8));
    if (++len % 8 == 0) h = mix_chunk(h, chunk);
  }
  if (len) close();
}

void minhash_update(uint32_t* sig, const uint32_t* a, const uint32_t* b, size_t n, const uint32_t* shingles,
                    size_t m) {
  for (size_t p = 0; p < n; ++p) {
    for (size_t i = 0; i < m; ++i) {
      uint32_t v = (shingles[i] ^ b[p]) * a[p];
      v ^= v >> 16;
      if (v < sig[p]) sig[p] = v;
    }
  }
}
}  // namespace ref

}  // namespace tritter
