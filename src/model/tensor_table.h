// The one tensor table (DESIGN.md principle 3): every parameter tensor's checkpoint name (training-spec §2),
// shape and role, in checkpoint order, derived from the config in one place. Load, save, init, the optimizer,
// LoRA targeting, packing, streaming, the planner and error messages all iterate it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace tritter {

enum class TensorRole {
  Embedding,  // model.embed_tokens.weight (V, D), fp
  Norm,       // an RMSNorm gain, 1-D
  BitLinear,  // a *_proj.weight (O, I): ternary when quant
  LmHead,     // lm_head.weight (V, D), fp; absent when tied
};

struct TensorInfo {
  std::string name;   // "model.layers.3.mlp.up_proj.weight"
  Shape shape;        // (O, I) for linears, (n) for gains
  TensorRole role;
  int layer = -1;     // -1 for embedding, final norm and head
  std::string kind;   // the short name: "q_proj", "input_layernorm", "embed_tokens", "lm_head", "norm", ...
  int64_t offset = 0; // first element in the flat fp32 parameter buffer (checkpoint order)

  int64_t numel() const { return shape_numel(shape); }
  bool is_matrix() const { return shape.size() == 2; }  // weight decay applies to 2-D tensors only (spec §8)
};

// All parameter tensors of the model, in checkpoint order, with offsets into one flat buffer.
std::vector<TensorInfo> tensor_table(const TritterConfig& config);
// Only those of layer `layer` (for streaming and per-layer work), offsets as in the full table.
std::vector<TensorInfo> layer_tensors(const TritterConfig& config, int layer);
// Σ numel over the table: the model's actual parameter count.
int64_t parameter_count(const TritterConfig& config);
// Finds a tensor by name; nullptr when absent.
const TensorInfo* find_tensor(const std::vector<TensorInfo>& table, const std::string& name);

}  // namespace tritter
