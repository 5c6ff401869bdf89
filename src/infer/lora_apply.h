// LoRA adapters applied at inference, kept separate from the packed base (docs/lora.md): every targeted
// BitLinear computes y = BitLinear(x̃) + Σ_adapters w·(α/r)·(x Aᵀ) Bᵀ, where x is the normalized, UN-quantized
// fp32 input (the same choice as training, train/lora.h): q/k/v read RMSNorm_in(h), o reads the attention
// sub-norm output (the attention output without sub_norm), gate/up RMSNorm_ff(h), down the FFN sub-norm output
// (the activation without sub_norm). The engine (infer/engine.h, set_lora) keeps those fp32 inputs when adapters
// are attached.
// Adapter directories are read by model/peft.h (PEFT's layout; F32, F16 or BF16 tensors); this file only keeps
// them in the form the forward wants (Bᵀ prepared at load) and applies them (kernels/lora.h).
// Non-goals: rsLoRA/DoRA, per-layer ranks.
#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "model/block.h"
#include "model/config.h"
#include "model/peft.h"
#include "model/projections.h"

namespace tritter {

class LoraSet : public LoraHook {
 public:
  // Reads adapter directory `dir` for a base with `config` (load_lora_adapter, model/peft.h: its errors name the
  // file and tensor) and adds it with `weight` (finite).
  void add(const std::filesystem::path& dir, float weight, const TritterConfig& config, MemoryAccount* account);

  size_t size() const { return adapters_.size(); }
  bool empty() const { return adapters_.empty(); }
  // Whether any adapter targets (layer, p).
  bool targets(int layer, Proj p) const;
  // y (T, O) += Σ w·(α/r)·(x Aᵀ) Bᵀ over the adapters targeting (layer, p); x (T, I) fp32.
  void apply(const Context& ctx, int layer, Proj p, const float* x, int64_t T, float* y) const;
  // The block's hook (model/block.h): targets() and apply().
  bool targets(int layer, int proj) const override { return targets(layer, static_cast<Proj>(proj)); }
  void forward(const Context& ctx, int layer, int proj, const float* x, int64_t N, float* y) const override {
    apply(ctx, layer, static_cast<Proj>(proj), x, N, y);
  }

 private:
  struct Module {
    const float* A = nullptr;  // (r, I)
    const float* Bt = nullptr;  // Bᵀ (r, O): transposed at load so the up-projection is an axpy per rank
    int64_t O = 0, I = 0;
  };
  struct Adapter {
    std::filesystem::path dir;
    int64_t rank = 0;
    float scale = 0;  // weight · α/r
    Buffer params;    // load_lora_adapter's, every B transposed in place
    std::vector<std::array<Module, kProjCount>> modules;  // per layer; A == nullptr: not targeted
  };
  std::vector<Adapter> adapters_;
};

}  // namespace tritter
