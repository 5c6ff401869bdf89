// LoRA adapters applied at inference, kept separate from the packed base (issue 6; docs/lora.md): every targeted
// BitLinear computes y = BitLinear(x̃) + Σ_adapters w·(α/r)·(x Aᵀ) Bᵀ, where x is the normalized, UN-quantized
// fp32 input (the same choice as training, train/lora.h): q/k/v read RMSNorm_in(h), o reads the attention
// sub-norm output (the attention output without sub_norm), gate/up RMSNorm_ff(h), down the FFN sub-norm output
// (the activation without sub_norm). The engine (infer/engine.h, set_lora) keeps those fp32 inputs when adapters
// are attached.
// Adapter directories are PEFT's layout as train/lora_io.h writes them: adapter_config.json (r, lora_alpha,
// target_modules) + adapter_model.safetensors with "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight"
// (r, I) and "...lora_B.weight" (O, r), F32. This reader is separate from train/lora_io.h because infer may not
// include train/ (tests/layering_test.sh).
// Non-goals: F16/BF16 adapter tensors (train/lora_io reads them; this reader wants F32, what tritter writes),
// rsLoRA/DoRA, per-layer ranks.
#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "model/block.h"
#include "model/config.h"

namespace tritter {

// BitLinear kinds in layer order; the engine passes these to LoraSet.
enum LoraKind : int { kLoraQ = 0, kLoraK, kLoraV, kLoraO, kLoraGate, kLoraUp, kLoraDown, kLoraKinds };
const char* lora_kind_name(int kind);  // "q_proj" ...

// "DIR" → (DIR, 1); "DIR:0.5" → (DIR, 0.5). The part after the last ':' is a weight only if it parses as a
// finite number; otherwise the whole string is the directory.
std::pair<std::filesystem::path, float> parse_lora_spec(const std::string& spec);

class LoraSet : public LoraHook {
 public:
  // Reads adapter directory `dir` for a base with `config` and adds it with `weight`. Errors name the file and
  // tensor: a missing directory/file, bad JSON, r/lora_alpha/target_modules missing or bad, an unknown target,
  // use_rslora/use_dora, a tensor missing or of another dtype/shape, an unexpected tensor, a non-finite value, a
  // recorded base config ("tritter_base_config") that differs from `config`.
  void add(const std::filesystem::path& dir, float weight, const TritterConfig& config, MemoryAccount* account);

  size_t size() const { return adapters_.size(); }
  bool empty() const { return adapters_.empty(); }
  // Whether any adapter targets (layer, kind).
  bool targets(int layer, int kind) const override;
  // y (T, O) += Σ w·(α/r)·(x Aᵀ) Bᵀ over the adapters targeting (layer, kind); x (T, I) fp32.
  void apply(const Context& ctx, int layer, int kind, const float* x, int64_t T, float* y) const;
  // The block's hook (model/block.h): apply().
  void forward(const Context& ctx, int layer, int proj, const float* x, int64_t N, float* y) const override {
    apply(ctx, layer, proj, x, N, y);
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
    Buffer params;
    std::vector<std::array<Module, kLoraKinds>> modules;  // per layer; A == nullptr: not targeted
  };
  std::vector<Adapter> adapters_;
};

}  // namespace tritter
