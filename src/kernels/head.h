// The output head z = ĥ W_lmᵀ for f32, int8 (per-row absmax) or 4-bit (groups of 32) weights. At a 128k vocabulary
// it is a third of decode traffic; the int8 form quarters it: int8 activations (per-token absmax, as
// BitLinear) × int8 rows, exact int32 sums, one multiply per logit. Plain loops the compiler vectorizes, compiled per
// ISA (avx512-vnni: vpdpbusd; generic), and for the int8 head on AVX2 an intrinsic GEMM (cpu/head_avx2.cpp),
// chosen by ctx.kernels like the ternary kernels; a fixed summation order per logit,
// so results do not depend on the thread count (an FMA-capable clone may differ from another in the last bits).
// ctx.kernels == Reference runs kernels/ref (f32 sums in double; int8 and i4 bit-identical).
//
// The 4-bit head (I4) halves the int8 head's bytes again (4.28 bits per weight at D = 2560): each row is cut into
// groups of 32 columns; a group holds levels q ∈ [−7, 7] and a step k_g · r, with k_g ∈ [1, 255] one byte per
// group and r one float per row (the largest group of the row gets k = 255). Because the group step is an integer
// multiple of the row's, the whole logit stays an exact integer sum A = Σ_g k_g Σ_{i∈g} q_i x_i over the int8
// activations x, and the epilogue is the int8 head's: z = (float)A · r / hs. Every tier gives the same bits.
// Error against the f32 head z = Σ w_i h_i (derived in docs/kernels.md, asserted by tests/kernels/head_i4_test.cpp):
//   |ẑ − z| ≤ (1 + 32u)·Σ_i (s_g(i)/2)·|h_i| + ((0.5 + 128u)/hs)·Σ_i |ŵ_i| + 4u·|ẑ|,   s_g = k_g·r,  ŵ_i = q_i·s_g(i),
// the first term the weights' rounding, the second the activations', the last the float epilogue (u = 2^−24).
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/context.h"

namespace tritter {

enum class HeadFormat { F32, I8, I4 };

// The 4-bit head's layout. Row v has G = head_i4_groups(D) groups; group g is 16 bytes of q4 at v·16G + 16g, byte j
// holding column 32g + j in its low nibble and column 32g + 16 + j in its high one, each as q + 8 (padding
// columns past D hold 8, i.e. 0); mult (V, G) holds k_g.
inline constexpr int64_t kHeadI4Group = 32;
// A = Σ_g k_g Σ q·x stays below 2^31 for G ≤ 296 groups (255 · 7 · 127 · 32 · 296 < 2^31): D ≤ 9472.
inline constexpr int64_t kHeadI4MaxGroups = 296;
inline constexpr int64_t head_i4_groups(int64_t D) { return (D + kHeadI4Group - 1) / kHeadI4Group; }
inline constexpr int64_t head_i4_row_bytes(int64_t D) { return head_i4_groups(D) * (kHeadI4Group / 2); }
// The level q of column `col` of a 4-bit row (its nibble − 8), and Σ q·x over group g of the row (columns < D).
inline int head_i4_level(const uint8_t* row, int64_t col) {
  const uint8_t b = row[16 * (col / kHeadI4Group) + col % 16];
  return (col % kHeadI4Group < 16 ? b & 15 : b >> 4) - 8;
}
inline int32_t head_i4_group_dot(const uint8_t* row, const int8_t* x, int64_t g, int64_t D) {
  int32_t s = 0;
  for (int64_t i = g * kHeadI4Group; i < std::min(D, (g + 1) * kHeadI4Group); ++i) s += head_i4_level(row, i) * x[i];
  return s;
}

// Bytes of one stored head row (its weights and scales), and of `rows` rows read as one piece with each tensor's
// part 64-byte aligned (the streaming engine's head slots).
inline constexpr int64_t head_stored_row_bytes(HeadFormat f, int64_t D) {
  return f == HeadFormat::I8 ? D + 4 : f == HeadFormat::I4 ? head_i4_row_bytes(D) + head_i4_groups(D) + 4 : 4 * D;
}
inline constexpr int64_t head_piece_bytes(HeadFormat f, int64_t rows, int64_t D) {
  auto a64 = [](int64_t n) { return (n + 63) / 64 * 64; };
  if (f == HeadFormat::I8) return a64(rows * D) + a64(4 * rows);
  if (f == HeadFormat::I4) return a64(rows * head_i4_row_bytes(D)) + a64(rows * head_i4_groups(D)) + a64(4 * rows);
  return a64(4 * rows * D);
}

// The output head's weights as the kernel reads them (views; the model file owns the bytes).
struct HeadWeights {
  HeadFormat format = HeadFormat::F32;
  const float* f32 = nullptr;        // (V, D) — the lm_head, or the embedding when tied
  const int8_t* i8 = nullptr;        // (V, D) i8 — per-row absmax levels
  const float* row_scale = nullptr;  // (V): w[v, :] ≈ i8[v, :] · row_scale[v]; for I4 the row's r
  const uint8_t* q4 = nullptr;       // (V, head_i4_row_bytes(D)) — I4 levels (layout above)
  const uint8_t* mult = nullptr;     // (V, head_i4_groups(D)) — I4 group multipliers k_g ∈ [1, 255]
  // > 0: a cosine head (docs/embedding-prediction.md). The rows above are then the unit rows Ê of the embedding
  // table, the input rows are L2-normalized first (l2norm_rows_forward) and each logit is fl(cos_scale · ĥ·Ê_v).
  float cos_scale = 0.0f;
};

// logits (N, V) ← h (N, D) · Wᵀ. Threads: ctx.threads over vocabulary rows; deterministic for any thread count.
// hq (N, D) i8 and hs (N) are scratch for the int8 head (unused for f32). A cosine head (w.cos_scale > 0) runs
// the same kernels on the unit rows of h and scales the result.
void lm_head_forward(const Context& ctx, float* logits, const float* h, int64_t N, const HeadWeights& w, int64_t V,
                     int64_t D, int8_t* hq, float* hs);

// I4 weights of V rows of w (V, D) f32: r = max|w_row| / (7·255), k_g = ⌈max|w_group| / (7r)⌉, q = round(w / (k_g·r)).
// An all-zero row gets r = 1, k = 1, q = 0. Throws Error naming `where` and the row for a non-finite value or for
// D > 32·kHeadI4MaxGroups. Parallel over rows (deterministic).
void head_i4_quantize_rows(uint8_t* q4, uint8_t* mult, float* row_scale, const float* w, int64_t V, int64_t D,
                           const char* where);
// out (D) ← row v of the head as the kernel sees it (f32 values, i8 level · row_scale, i4 q · k_g · r).
void head_row_values(const HeadWeights& w, int64_t v, int64_t D, float* out);
// The same head from row v0 on (a view of rows [v0, V)).
HeadWeights head_rows_from(const HeadWeights& w, int64_t v0, int64_t D);

}  // namespace tritter
