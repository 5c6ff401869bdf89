// Merging LoRA adapters into a checkpoint (see lora_merge.h).
#include "model/lora_merge.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/quantize.h"
#include "kernels/ternary_matmul.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/peft.h"

namespace tritter {

namespace {

struct Weighted {
  LoraAdapter adapter;
  double weight;
};

// out (n) = the base's fp32 tensor `info` (not a BitLinear): embedding, gains, the head (an int8/i4 head dequantized).
void copy_base_tensor(float* out, const ModelWeights& w, const TensorInfo& info) {
  const int64_t n = info.numel();
  if (info.role == TensorRole::LmHead && w.head.format != HeadFormat::F32) {
    for (int64_t r = 0; r < info.shape[0]; ++r) head_row_values(w.head, r, info.shape[1], out + r * info.shape[1]);
    return;
  }
  const float* src = info.role == TensorRole::Embedding ? w.embed
                     : info.role == TensorRole::LmHead  ? w.head.f32
                     : info.kind == "norm"              ? w.final_norm
                     : info.kind == "log_scale"         ? w.log_scale
                                                        : nullptr;
  if (!src && info.layer >= 0) {  // a layer gain
    LayerWeights L = w.layers[static_cast<size_t>(info.layer)];  // a copy of the views: the slot lookup is non-const
    const float** slot = layer_norm_slot(L, info.kind);
    src = slot ? *slot : nullptr;
  }
  TRITTER_CHECK(src != nullptr, info.name);
  std::copy(src, src + n, out);
}

// delta (O, I) += Σ over the adapters targeting `name`: weight·(α/r)·B A in double. Returns whether any did.
bool lora_delta(std::vector<double>& delta, const std::vector<Weighted>& adapters, const std::string& name,
                int64_t O, int64_t I) {
  bool touched = false;
  for (const auto& ad : adapters) {
    const auto& cfg = ad.adapter.config;
    for (const auto& t : ad.adapter.table) {
      if (t.base_name != name) continue;
      touched = true;
      const float* A = ad.adapter.params.as<float>().data() + t.a_offset;  // (r, I)
      const float* B = ad.adapter.params.as<float>().data() + t.b_offset;  // (O, r)
      const double s = ad.weight * cfg.scale();
      for (int64_t o = 0; o < O; ++o)
        for (int64_t k = 0; k < cfg.rank; ++k) {
          const double b = s * B[o * cfg.rank + k];
          for (int64_t i = 0; i < I; ++i) delta[static_cast<size_t>(o * I + i)] += b * A[k * I + i];
        }
    }
  }
  return touched;
}

}  // namespace

LoraMergeReport merge_lora(const std::filesystem::path& base_path,
                           const std::vector<std::pair<std::filesystem::path, float>>& specs,
                           const std::filesystem::path& out_path, MemoryAccount* account) {
  const PackedModel base = open_lora_base(base_path, account);
  const ModelWeights& w = base.weights();
  const TritterConfig& c = w.config;
  std::vector<Weighted> adapters;
  for (const auto& [dir, weight] : specs) adapters.push_back({load_lora_adapter(dir, c, account), weight});
  LoraMergeReport rep;
  rep.adapters = static_cast<int64_t>(adapters.size());
  double sum_rel = 0, sum_lost = 0;
  auto produce = [&](float* out, const TensorInfo& info, size_t) {
    if (info.role != TensorRole::BitLinear) return copy_base_tensor(out, w, info);
    const int64_t n = info.numel();
    const TernaryMatrix& m = layer_matrix(w.layers[static_cast<size_t>(info.layer)], *proj_from_name(info.kind));
    const int64_t O = m.rows, I = m.cols;
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) out[o * I + i] = static_cast<float>(ternary_matrix_at(m, o, i)) / m.sigma;
    std::vector<double> delta(static_cast<size_t>(n), 0.0);
    if (!lora_delta(delta, adapters, info.name, O, I)) return;
    ++rep.merged;
    for (int64_t j = 0; j < n; ++j) out[j] += static_cast<float>(delta[static_cast<size_t>(j)]);
    // What re-packing would do: W̃' = rne(W·σ')/σ' with σ' from the merged weights (§4.2).
    std::vector<int8_t> q(static_cast<size_t>(n));
    const float sigma = ternary_sigma(out, n);
    ternary_quantize(q.data(), out, n, sigma);
    double e2 = 0, w2 = 0, lost2 = 0, d2 = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double requant = q[static_cast<size_t>(j)] / static_cast<double>(sigma);
      const double base_v = static_cast<double>(ternary_matrix_at(m, j / I, j % I)) / m.sigma;
      const double dj = delta[static_cast<size_t>(j)];
      e2 += (requant - out[j]) * (requant - out[j]);
      w2 += static_cast<double>(out[j]) * out[j];
      lost2 += (requant - base_v - dj) * (requant - base_v - dj);
      d2 += dj * dj;
    }
    const double rel = std::sqrt(e2 / std::max(w2, 1e-300));
    sum_rel += rel;
    sum_lost += d2 > 0 ? std::sqrt(lost2 / d2) : 0.0;
    if (rel > rep.requant_rel_worst) {
      rep.requant_rel_worst = rel;
      rep.worst_name = info.name;
    }
  };
  save_checkpoint_streaming(out_path, c, produce, {{"merged_lora", std::to_string(adapters.size())}});
  if (rep.merged > 0) {
    rep.requant_rel_mean = sum_rel / static_cast<double>(rep.merged);
    rep.update_lost_mean = sum_lost / static_cast<double>(rep.merged);
  }
  return rep;
}

}  // namespace tritter
