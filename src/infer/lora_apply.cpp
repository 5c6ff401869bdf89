// LoRA adapters at inference (see lora_apply.h).
#include "infer/lora_apply.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/lora.h"

namespace tritter {

void LoraSet::add(const std::filesystem::path& dir, float weight, const TritterConfig& c, MemoryAccount* account) {
  if (!std::isfinite(weight)) {
    throw_error("adapter '", dir.string(), "': weight ", weight, ", expected a finite number");
  }
  LoraAdapter loaded = load_lora_adapter(dir, c, account);
  Adapter a;
  a.dir = dir;
  a.rank = loaded.config.rank;
  a.scale = weight * loaded.config.scale();
  a.params = std::move(loaded.params);
  a.modules.resize(static_cast<size_t>(c.num_hidden_layers));
  float* p = a.params.as<float>().data();
  const int64_t r = a.rank;
  std::vector<float> tmp;
  for (const LoraTensor& t : loaded.table) {
    Module& m = a.modules[static_cast<size_t>(t.layer)][static_cast<size_t>(proj_index(t.proj))];
    m.O = t.O;
    m.I = t.I;
    m.A = p + t.a_offset;
    float* B = p + t.b_offset;  // (O, r) → Bᵀ (r, O) in place
    tmp.assign(B, B + t.O * r);
    for (int64_t o = 0; o < t.O; ++o) {
      for (int64_t j = 0; j < r; ++j) B[j * t.O + o] = tmp[static_cast<size_t>(o * r + j)];
    }
    m.Bt = B;
  }
  adapters_.push_back(std::move(a));
}

bool LoraSet::targets(int layer, Proj p) const {
  for (const Adapter& a : adapters_) {
    if (a.modules[static_cast<size_t>(layer)][static_cast<size_t>(proj_index(p))].A) return true;
  }
  return false;
}

void LoraSet::apply(const Context& ctx, int layer, Proj p, const float* x, int64_t T, float* y) const {
  for (const Adapter& a : adapters_) {
    const Module& m = a.modules[static_cast<size_t>(layer)][static_cast<size_t>(proj_index(p))];
    if (m.A) lora_delta_forward(ctx, y, x, m.A, m.Bt, T, a.rank, m.I, m.O, a.scale);
  }
}

}  // namespace tritter
