// A llama.cpp-TQ2_0-style ternary kernel, kept only as the in-run comparison for `tritter bench kernels` and
// bench/kernels_bench.cpp (never used by the model). It mirrors ggml's TQ2_0 × Q8_K AVX2 dot product
// (ggml_vec_dot_tq2_0_q8_K, b4748): 256-weight blocks of 64 code bytes + a per-block scale, Q8_K activations with
// 16-element bsums, one row × one token per dot, ggml's 16×16 row/column blocking for N > 1.
#pragma once
#include <cstdint>
#include <vector>

namespace tritter::baseline {

inline constexpr int kTq2Block = 256;
struct Tq2Block {
  uint8_t qs[64];  // byte m of half h holds elements 128h + m + 32n in bits 2n..2n+1, code = w + 1
  float d;         // llama.cpp stores f16; a float here only flatters the baseline
};
struct Q8KBlock {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

// w (O, I) i8 ternary → (O, I/256) blocks with d = 1. I must be a multiple of 256.
std::vector<Tq2Block> tq2_pack(const int8_t* w, int64_t O, int64_t I);
// x (N, I) i8 with per-token scale → (N, I/256) Q8_K blocks (d = 1/scale).
std::vector<Q8KBlock> q8k_from_int8(const int8_t* xq, const float* scale, int64_t N, int64_t I);
// y (N, O) f32 = Σ blocks d_w·d_x·dot. AVX2 (the caller checks the CPU), OpenMP over rows with `threads`.
void tq2_gemm_avx2(float* y, const Tq2Block* w, const Q8KBlock* x, int64_t O, int64_t I, int64_t N, int threads);

}  // namespace tritter::baseline
