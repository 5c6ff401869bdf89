#include "kernels/minhash.h"

namespace tritter {

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
