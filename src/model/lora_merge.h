// Merging LoRA adapters into a full-precision checkpoint (docs/lora.md, "Merging is lossy"): every targeted
// BitLinear becomes W̃ + Σ weight·(α/r)·B A (W̃ = Wq/σ, the base's dequantized ternary weight; the update summed
// in double), every other tensor is the base's (an int8 head dequantized). The checkpoint (tritter-v1) is written
// atomically, one tensor in memory at a time. The report says what re-packing the result to ternary would do: the
// low-rank update is mostly far below the ternary step and rounds away, so adapters stay separate by default.
// Non-goals: writing a packed file (re-packing is `tritter pack` on the merged checkpoint).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/memory.h"

namespace tritter {

struct LoraMergeReport {
  int64_t adapters = 0;
  int64_t merged = 0;              // BitLinear matrices at least one adapter targets
  double requant_rel_mean = 0;     // rel-L2 error re-packing adds to the merged weights, mean over merged matrices
  double requant_rel_worst = 0;    //   and the worst of them,
  std::string worst_name;          //   in this tensor
  double update_lost_mean = 0;     // rel-L2 of the LoRA update that re-packing loses, mean over merged matrices
};

// Reads the base (packed file or checkpoint, open_lora_base), the adapters (DIR, weight) with load_lora_adapter,
// and writes the merged checkpoint to `out`. Errors from either reader name the file; `out` is untouched then.
LoraMergeReport merge_lora(const std::filesystem::path& base,
                           const std::vector<std::pair<std::filesystem::path, float>>& adapters,
                           const std::filesystem::path& out, MemoryAccount* account);

}  // namespace tritter
