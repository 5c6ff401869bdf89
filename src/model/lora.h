// LoRA adapters on the ternary base (docs/lora.md): the configuration (rank, α, dropout, targets, init), the
// adapter table (one A (r, I) and B (O, r) per targeted BitLinear, offsets into one flat fp32 buffer), PEFT's
// tensor names, the initial values, and opening a base model. Training (train/lora.h), inference
// (infer/lora_apply.h), the adapter files (model/peft.h) and merging (model/lora_merge.h) all use this one table.
// Non-goals: rsLoRA, DoRA, per-layer ranks, modules_to_save.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/memory.h"
#include "model/config.h"
#include "model/packed_model.h"
#include "model/projections.h"
#include "model/tensor_table.h"

namespace tritter {

// Stated bounds (docs/lora.md): a rank is at most kMaxLoraRank and at most min(out, in) of every targeted matrix
// (lora_table); an adapter value read from a file is finite and at most kLoraMaxAbs in magnitude (a trained adapter
// is orders of magnitude below; beyond it the delta overflows f32 activations).
inline constexpr int64_t kMaxLoraRank = 65536;
inline constexpr float kLoraMaxAbs = 1e4f;

struct LoraConfig {
  int64_t rank = 16;
  double alpha = 16.0;   // scaling α/r
  double dropout = 0.0;  // [0, 1)
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};  // BitLinear kinds (name suffixes)
  // "kaiming": A ~ U(±1/√I) — PEFT's kaiming_uniform_(a=√5) on A (r, I), fan_in = I (a fan_in of r would follow
  // from storing A transposed). "gaussian": A ~ N(0, 1/r). B = 0 either way.
  std::string init = "kaiming";

  float scale() const { return static_cast<float>(alpha / static_cast<double>(rank)); }
  bool targets_kind(const std::string& kind) const;
  bool targets_proj(Proj p) const { return targets_kind(proj_name(p)); }
  // Error naming the field: rank ≥ 1, alpha > 0 and finite, dropout in [0, 1), targets known and not empty, init.
  void validate() const;
};
// "q_proj,k_proj" → {"q_proj", "k_proj"}; also accepts "all" (every BitLinear kind) and "attn" (q, k, v, o).
std::vector<std::string> parse_lora_targets(const std::string& list);

// One adapter pair per targeted BitLinear of the base.
struct LoraTensor {
  std::string base_name;  // "model.layers.3.self_attn.q_proj.weight"
  std::string kind;       // "q_proj"
  int layer = 0;
  int64_t O = 0, I = 0;
  int64_t a_offset = 0;   // A (r, I) in the flat adapter buffer
  int64_t b_offset = 0;   // B (O, r), right after A
  Proj proj = Proj::Q;    // the projection `kind` names
};
// In tensor-table order (layer by layer, q k v o gate up down), only the kinds the config targets. A target the
// base lacks (gate_proj without a gated MLP) matches nothing, as in PEFT. Throws Error when the rank exceeds
// min(out, in) of a targeted matrix.
std::vector<LoraTensor> lora_table(const TritterConfig& config, const LoraConfig& lora);
int64_t lora_num_params(const std::vector<LoraTensor>& table, int64_t rank);
// PEFT's tensor name: "base_model.model." + base name without ".weight" + ".lora_A.weight" (which = 'A' or 'B').
std::string peft_tensor_name(const std::string& base_name, char which);
// The adapters as TensorInfo (PEFT names, 2-D shapes, offsets): AdamW's weight-decay table and the file writer's.
std::vector<TensorInfo> lora_tensor_infos(const std::vector<LoraTensor>& table, int64_t rank);
// A per cfg.init, B = 0 (deterministic in seed).
void lora_init(std::span<float> params, const std::vector<LoraTensor>& table, const LoraConfig& cfg, uint64_t seed);

// Opens a base model for LoRA: a tritter-packed-v1 file is mapped as is; a tritter-v1 checkpoint is packed in memory
// (its fp32 latent weights are dropped after packing).
PackedModel open_lora_base(const std::filesystem::path& path, MemoryAccount* account);

}  // namespace tritter
