// The one list of a transformer layer's tensors. It generates the per-layer views every path binds (packed
// inference weights, the block's weights, training parameters and their gradients), the kind ↔ field map that
// loading, streaming and LoRA use, and the tensor table's rows (model/tensor_table.cpp): adding a tensor to a
// layer is one line here.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>

#include "model/config.h"
#include "model/projections.h"

namespace tritter {

// X(field, kind, checkpoint suffix, is_projection, present(c), rows(c), cols(c)) in checkpoint order; norms are
// 1-D (cols = 0). `c` is the TritterConfig.
#define TRITTER_LAYER_TENSORS(X)                                                                                 \
  X(input_norm, "input_layernorm", "input_layernorm.weight", false, true, c.hidden_size, 0)                    \
  X(q, "q_proj", "self_attn.q_proj.weight", true, true, c.q_dim(), c.hidden_size)                              \
  X(k, "k_proj", "self_attn.k_proj.weight", true, true, c.kv_dim(), c.hidden_size)                             \
  X(v, "v_proj", "self_attn.v_proj.weight", true, true, c.kv_dim(), c.hidden_size)                             \
  X(q_norm, "q_norm", "self_attn.q_norm.weight", false, c.qk_norm, c.head_dim, 0)                              \
  X(k_norm, "k_norm", "self_attn.k_norm.weight", false, c.qk_norm, c.head_dim, 0)                              \
  X(attn_sub_norm, "attn_sub_norm", "self_attn.attn_sub_norm.weight", false, c.sub_norm, c.q_dim(), 0)         \
  X(o, "o_proj", "self_attn.o_proj.weight", true, true, c.hidden_size, c.q_dim())                              \
  X(post_attn_norm, "post_attention_layernorm", "post_attention_layernorm.weight", false,                      \
    c.post_norm == PostNorm::Both, c.hidden_size, 0)                                                           \
  X(pre_ff_norm, "pre_feedforward_layernorm", "pre_feedforward_layernorm.weight", false, true, c.hidden_size, 0) \
  X(gate, "gate_proj", "mlp.gate_proj.weight", true, c.gated_mlp(), c.intermediate_size, c.hidden_size)        \
  X(up, "up_proj", "mlp.up_proj.weight", true, true, c.intermediate_size, c.hidden_size)                       \
  X(ffn_sub_norm, "ffn_sub_norm", "mlp.ffn_sub_norm.weight", false, c.sub_norm, c.intermediate_size, 0)        \
  X(down, "down_proj", "mlp.down_proj.weight", true, true, c.hidden_size, c.intermediate_size)                 \
  X(post_ff_norm, "post_feedforward_layernorm", "post_feedforward_layernorm.weight", false,                    \
    c.post_norm != PostNorm::None, c.hidden_size, 0)

// A layer's tensors as fields: NormT for the gains, ProjT for the projections. Absent tensors stay
// value-initialized (null pointers).
template <typename NormT, typename ProjT>
struct LayerSlots {
#define TRITTER_SLOT_FIELD(field, kind, suffix, is_proj, present, rows, cols) \
  std::conditional_t<is_proj, ProjT, NormT> field{};
  TRITTER_LAYER_TENSORS(TRITTER_SLOT_FIELD)
#undef TRITTER_SLOT_FIELD

  // The projections by index (Proj order).
  ProjT& proj(int p) {
    ProjT* all[kProjCount] = {&q, &k, &v, &o, &gate, &up, &down};
    return *all[p];
  }
  const ProjT& proj(int p) const { return const_cast<LayerSlots*>(this)->proj(p); }
  ProjT& proj(Proj p) { return proj(static_cast<int>(p)); }
  const ProjT& proj(Proj p) const { return proj(static_cast<int>(p)); }

  // The field for a table kind ("q_proj", "input_layernorm", ...): null when `kind` is of the other family or
  // unknown.
  ProjT* proj_slot(const std::string& kind) {
#define TRITTER_SLOT_PROJ(field, k, suffix, is_proj, present, rows, cols) \
  if constexpr (is_proj) {                                               \
    if (kind == k) return &field;                                        \
  }
    TRITTER_LAYER_TENSORS(TRITTER_SLOT_PROJ)
#undef TRITTER_SLOT_PROJ
    return nullptr;
  }
  NormT* norm_slot(const std::string& kind) {
#define TRITTER_SLOT_NORM(field, k, suffix, is_proj, present, rows, cols) \
  if constexpr (!is_proj) {                                              \
    if (kind == k) return &field;                                        \
  }
    TRITTER_LAYER_TENSORS(TRITTER_SLOT_NORM)
#undef TRITTER_SLOT_NORM
    return nullptr;
  }
};

}  // namespace tritter
