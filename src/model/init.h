// Random initialization (training-spec §8): N(0, init_std) for embeddings, q/k/v/up/gate and lm_head;
// N(0, init_std/√(2L)) for o_proj and down_proj; every gain 1. Each tensor draws from its own generator seeded
// from (seed, position in the tensor table), so one tensor can be produced alone (streaming writers) and the
// result does not depend on the thread count. Non-goals: the original's init, loading pretrained weights.
#pragma once
#include <cstdint>
#include <span>

#include "model/config.h"
#include "model/tensor_table.h"

namespace tritter {

// The standard deviation §8 gives the tensor; 0 for gains (which are set to 1).
double init_std_for(const TritterConfig& config, const TensorInfo& info);
// out (info.numel()) ← the initial values of tensor number `index` of the table.
void init_tensor(float* out, const TritterConfig& config, const TensorInfo& info, size_t index, uint64_t seed);
// params (parameter_count) ← every tensor, in table order (flat layout of tensor_table offsets).
void init_parameters(std::span<float> params, const TritterConfig& config, uint64_t seed);

}  // namespace tritter
