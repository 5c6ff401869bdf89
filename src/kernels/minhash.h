// The MinHash signature update of near-duplicate detection: for every shingle hash x and permutation p,
// h_p(x) = mix((x ^ b[p]) · a[p]) and sig[p] = min(sig[p], h_p(x)). Exact integer arithmetic (mod 2^32), so every
// tier equals the reference bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tritter {

// sig (n) ← min(sig, h_p(x)) over the m shingles; a, b (n) the permutations' multipliers and offsets. sig must
// not alias a or b. The fast path is compiled for AVX-512, AVX2 and the baseline, chosen at load time.
void minhash_update(uint32_t* sig, const uint32_t* a, const uint32_t* b, size_t n, const uint32_t* shingles,
                    size_t m);

namespace ref {
void minhash_update(uint32_t* sig, const uint32_t* a, const uint32_t* b, size_t n, const uint32_t* shingles,
                    size_t m);
}  // namespace ref

}  // namespace tritter
