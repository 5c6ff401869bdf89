// Depth up-scaling of a trained model (`tritter expand`, docs/training.md "Growing a model"): a new stack of N
// layers built from the L layers of a checkpoint, over the flat tensor-table buffer (weights or AdamW moments).
//   duplicate:  the stack repeated (layers 0 .. L−1, then copies of 0, 1, ... until N), every copy's output
//               projections (o_proj, down_proj) zeroed;
//   interleave: each layer followed by its copies (the N − L copies spread evenly over the stack), zeroed the same;
//   solar:      SOLAR's depthwise up-scaling: two copies of the stack, the last m layers dropped from the first and
//               the first m from the second, concatenated (N = 2L − 2m); nothing zeroed.
// A zeroed copy adds x + o(·) = x + 0 and x + norm(down(·)) = x + 0 exactly: ternary quantization keeps an all-zero
// matrix zero (absmean 0 is clamped to quant_eps, 0·σ rounds to 0) and RMSNorm of 0 is 0, so duplicate and
// interleave give the original's logits bit for bit. SOLAR changes the function (its loss is measured, not equal).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"

namespace tritter {

enum class ExpandMethod { Duplicate, Interleave, Solar };
ExpandMethod expand_method_from_name(const std::string& name);  // "duplicate" | "interleave" | "solar"; throws Error
const char* expand_method_name(ExpandMethod m);

// New layer i is a copy of layer `source` of the original; zeroed: its o_proj and down_proj start at 0.
struct ExpandedLayer {
  int64_t source = 0;
  bool zeroed = false;
};
// The plan for growing `layers` to `new_layers`. Errors name the flag and the values it accepts: N ≥ L for the
// function-preserving methods (N = L copies the model as is); solar needs an even N with L ≤ N ≤ 2L (m = (2L − N)/2
// layers dropped from each copy; N = 2L keeps both whole).
std::vector<ExpandedLayer> expand_plan(int64_t layers, int64_t new_layers, ExpandMethod method);

// The grown model's config: num_hidden_layers = N, everything else as is (model_size becomes "custom").
TritterConfig expanded_config(const TritterConfig& c, int64_t new_layers);

// out (parameter_count(expanded_config(c, plan.size()))) ← in (parameter_count(c)), tensor-table order: the
// embedding, final norm and head as they are, layer i's tensors from layer plan[i].source, the zeroed layers'
// o_proj and down_proj set to 0. Works for weights and for AdamW moments alike (moments of a zeroed tensor are 0).
void expand_params(const TritterConfig& c, std::span<const float> in, const std::vector<ExpandedLayer>& plan,
                   std::span<float> out);

}  // namespace tritter
