// Kernels of near-duplicate detection.
//
// word_hashes: the words of a text (runs of ASCII letters, digits, '_' and bytes >= 0x80, so UTF-8 sequences stay
// inside words) case-folded and hashed to 64 bits each. The fold sets bit 5 of every ASCII byte (letters become
// lower case, digits are unchanged, '_' becomes 0x7F), which is one-to-one on case-insensitive words. A word's hash
// reads its folded bytes as little-endian 8-byte chunks (the last one zero-padded; no word byte is zero, so the
// chunks determine the word): h = φ, then per chunk h = (h ^ c)·K, h ^= h >> 31. Each step is one-to-one, so words
// of up to 8 bytes never collide. These are not finished hashes: the shingle hash built from them ends in a full
// 64-bit mixer. The fast path finds the words from a 64-bit word-byte mask per 64 bytes (SSE2, AVX2 where the CPU
// has it) and takes each word's bytes straight from the text; ref:: classifies byte by byte. Both return the same
// hashes.
//
// minhash_update: the k-permutation MinHash update, h_p(x) = mix((x ^ b[p]) · a[p]) and sig[p] = min(sig[p],
// h_p(x)). Exact integer arithmetic (mod 2^32), so every tier equals the reference bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tritter {

// Writes one hash per word of text to out, in text order, and returns the count; out must hold
// word_hashes_capacity(text.size()) values (a word takes a byte and the separator after it).
size_t word_hashes(std::string_view text, uint64_t* out);
constexpr size_t word_hashes_capacity(size_t text_bytes) { return text_bytes / 2 + 1; }
// The same with the word-byte masks of one tier, for the tests: 0 scalar, 1 SSE2, 2 AVX2 (a tier the CPU lacks
// falls back to the best one below it).
size_t word_hashes_tier(std::string_view text, uint64_t* out, int tier);

// sig (n) ← min(sig, h_p(x)) over the m shingles; a, b (n) the permutations' multipliers and offsets. sig must
// not alias a or b. The fast path is compiled for AVX-512, AVX2 and the baseline, chosen at load time.
void minhash_update(uint32_t* sig, const uint32_t* a, const uint32_t* b, size_t n, const uint32_t* shingles,
                    size_t m);

namespace ref {
void word_hashes(std::string_view text, std::vector<uint64_t>& out);
void minhash_update(uint32_t* sig, const uint32_t* a, const uint32_t* b, size_t n, const uint32_t* shingles,
                    size_t m);
}  // namespace ref

}  // namespace tritter
