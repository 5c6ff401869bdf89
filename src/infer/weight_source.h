// Where the inference engine gets its weights. The Engine (infer/engine.h) runs one forward pass for every source:
// embedding rows → block_forward of each layer the source hands out → the final norm → the source's head. A
// source decides only where the weights live and when they are read; the arithmetic is the Engine's, so every
// source gives the same logits bit for bit (tests/infer/streaming_test.cpp).
// Sources: ResidentWeights (below: a PackedModel's ModelWeights in memory), StreamedWeights
// (infer/streaming_engine.h: layer groups and head chunks read from the packed file under a memory budget).
// Room for more without touching the Engine: a host→device streamed source for the CUDA backend, and a source
// that repacks a GGUF file's tensors into the packed layout as they are needed.
#pragma once
#include <cstdint>

#include "core/context.h"
#include "model/packed_model.h"

namespace tritter {

// Consecutive layers [first, first + count) as views, valid until the source's release_layers.
struct LayerGroup {
  const LayerWeights* layers = nullptr;
  int first = 0, count = 0;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;

  // The config, head format and bytes_per_token; a resident source's tensors too. A streamed source's tensor
  // pointers are null (its weights are read on demand): use the calls below, not these pointers.
  virtual const ModelWeights& weights() const = 0;
  // out (T, D) ← the embedding rows of tokens (T ids, already checked to lie in [0, V)).
  virtual void embed_rows(const int32_t* tokens, int64_t T, float* out) = 0;
  // The group holding layer l (a streamed source loads it now unless it was prefetched). head_next: this pass
  // needs logits after the last layer (what a streamed source prefetches next). One group is held at a time.
  virtual LayerGroup acquire_layers(int l, bool head_next) = 0;
  virtual void release_layers(const LayerGroup& group) = 0;
  // The final norm's gains (D), resident for every source.
  virtual const float* final_norm() const = 0;
  // logits (rows, V) ← the head of h (rows, D), the final norm's output. hq (rows·D) and hs (rows): the engine's
  // scratch for the int8 head's input levels and scales.
  virtual void head_forward(const Context& ctx, float* logits, const float* h, int64_t rows, int8_t* hq,
                            float* hs) = 0;
};

// The weights in memory (a PackedModel's, mmap'd or loaded): every layer is one group, nothing to release.
class ResidentWeights final : public WeightSource {
 public:
  // `weights` must outlive the source.
  explicit ResidentWeights(const ModelWeights& weights) : w_(weights) {}

  const ModelWeights& weights() const override { return w_; }
  void embed_rows(const int32_t* tokens, int64_t T, float* out) override;
  LayerGroup acquire_layers(int l, bool head_next) override;
  void release_layers(const LayerGroup&) override {}
  const float* final_norm() const override { return w_.final_norm; }
  void head_forward(const Context& ctx, float* logits, const float* h, int64_t rows, int8_t* hq,
                    float* hs) override;

 private:
  const ModelWeights& w_;
};

}  // namespace tritter
