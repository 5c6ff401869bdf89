// The inference forward pass: embeddings, the L layers of model/block (the same layer training runs, here with
// fused RMSNorm+int8 quantization and attention over the KV cache), the final norm and the head. One path for
// prompt processing (a chunk of up to max_batch tokens as GEMMs) and decoding (one token, GEMVs); the two give
// the same logits on an f32 cache (tests/infer/engine_test.cpp). The weights come from a WeightSource
// (infer/weight_source.h): resident in memory, or streamed from the file under a budget — the same forward pass.
// Non-goals: batch > 1 sequences, quant=false models, speculative decoding.
#pragma once
#include <cstdint>
#include <memory>
#include <span>

#include "core/buffer.h"
#include "core/context.h"
#include "infer/kv_cache.h"
#include "infer/weight_source.h"
#include "model/block.h"
#include "model/packed_model.h"

namespace tritter {

class LoraSet;  // infer/lora_apply.h

struct EngineOptions {
  int64_t context = 0;     // positions the cache holds; 0 = min(max_position_embeddings, 4096)
  KvDtype kv_dtype = KvDtype::F32;
  int64_t max_batch = 64;  // prompt tokens per forward chunk
};
// The options an engine of model `c` runs with: context 0 → min(max positions, 4096), max_batch ≤ context.
// Throws Error on a context outside 1 .. max_position_embeddings or max_batch < 1.
EngineOptions resolve_engine_options(const TritterConfig& c, EngineOptions o);

// Wall time of the phases of the forward calls so far, summed; collected when the Context's log level is Verbose
// or higher (zero otherwise).
struct EngineTimings {
  double matmul_s = 0, attention_s = 0, head_s = 0, other_s = 0;
};

// The engine's activation buffers for B rows, carved from one allocation (engine_views, infer/engine_sizes.h);
// Engine and BatchEngine each hold one.
struct EngineViews {
  float* x = nullptr;  // (B, D) the residual stream
  BlockActs acts;
  BlockScratch scratch;
  int8_t* hq = nullptr;  // the int8 head's input (B, D) and scales (B)
  float* hs = nullptr;
  float* normed = nullptr;  // (B, D) the final norm's output
};

class Engine {
 public:
  // `ctx` and `source` must outlive the engine.
  Engine(Context& ctx, WeightSource& source, const EngineOptions& options);
  // Resident weights (a ResidentWeights the engine owns); `weights` must outlive the engine.
  Engine(Context& ctx, const ModelWeights& weights, const EngineOptions& options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs tokens (n) at positions position() .. position()+n−1, appending them to the cache.
  // all_logits: logits (n, V) for every token; otherwise logits (V) of the last token only. n ≥ 1.
  // Throws Error on an id outside [0, V) or when the context would overflow.
  void forward(std::span<const int32_t> tokens, float* logits, bool all_logits);
  // The same forward fed input vectors x (n, D) instead of ids: what the embedding lookup would have produced.
  // forward(tokens) is the lookup followed by this path, so forward_embeddings(E[ids]) gives its logits bit for
  // bit. Throws Error on x.size() ≠ n·D, n < 1 or a context overflow.
  void forward_embeddings(std::span<const float> x, float* logits, bool all_logits);
  // One decode step (one position): a token, or a vector x (D) — a continuous thought (infer/latent.h).
  // logits (V) of that position, or nullptr to skip the head.
  void step_token(int32_t id, float* logits) { forward(std::span<const int32_t>(&id, 1), logits, false); }
  void step_embedding(std::span<const float> x, float* logits) { forward_embeddings(x, logits, false); }
  // The last position's post-final-norm hidden state (D) after a forward (with or without logits): the vector
  // the head reads, and the thought a latent step feeds back. Throws Error before any forward.
  void last_hidden(std::span<float> out);

  int64_t position() const { return pos_; }
  int64_t context() const { return options_.context; }
  void reset();  // a new sequence
  // Appends n positions of N(0, 1) keys and values (one block of max_batch rows, repeated) to every layer's cache,
  // as if n tokens had run: benchmarks of decode at a long context without its O(n²) prefill.
  void fill_cache(int64_t n, uint64_t seed);
  const KvCache& cache() const { return cache_; }
  const ModelWeights& weights() const { return source_.weights(); }  // streamed: config and sizes only
  WeightSource& source() const { return source_; }
  EngineTimings timings() const;
  const OpTimes& op_times() const { return times_; }
  const float* hidden_states() const { return v_.x; }  // (T, D) of forward()'s last chunk, before the final norm
  int64_t last_chunk() const { return last_T_; }     // T of forward()'s last chunk
  int64_t max_batch() const { return options_.max_batch; }  // tokens per forward chunk
  const Context& kernel_context() const { return ctx_; }  // the Context its ops run with (threads, tier)
  // The KNN exit of a cosine head (kernels/knn.h): the k nearest table rows to the last token's final-norm state
  // after a forward (which may pass logits = nullptr to skip the head), best first; ties to the lowest id. With
  // k = 1 it is the argmax of the logits forward() would have returned, bit for bit. Throws Error for a linear
  // head or a streamed model.
  void knn_exit(int32_t* ids, float* scores, int64_t k);
  // The attention mask of later forwards (absolute positions; default causal with the config's window). A
  // non-causal part must be prefilled in one forward chunk: bidirectional = the whole sequence in the first
  // forward of at most max_batch tokens; prefix_lm(P) = positions 0 .. P−1 in the first chunk (then decoding is
  // causal over the cached prefix). Throws Error when a forward would break that.
  void set_mask(const AttnMask& mask) { mask_ = mask; }
  const AttnMask& mask() const { return mask_; }
  size_t scratch_bytes() const { return scratch_.bytes(); }
  // Attaches LoRA adapters (infer/lora_apply.h; nullptr detaches): the targeted projections then also get
  // Σ w·(α/r)·(x Aᵀ)Bᵀ of their normalized, un-quantized input, which the engine keeps in an extra fp32 buffer
  // (max_batch × max(D, H·d, F)). `lora` must outlive the engine (or be detached).
  void set_lora(const LoraSet* lora);

 private:
  Engine(Context& ctx, std::unique_ptr<WeightSource> owned, const EngineOptions& options);
  void forward_chunk(const int32_t* tokens, int64_t T, float* logits, bool all_logits);
  void run_chunk(int64_t T, float* logits, bool all_logits);  // layers and head on v_.x (T, D): the one path
  void check_input(std::span<const int32_t> tokens) const;  // the errors forward() throws on bad input
  void check_positions(int64_t n) const;  // n ≥ 1 new positions fit the context and the mask's prefill rule
  void layer_forward(const LayerWeights& L, int layer, int64_t T);

  Context& ctx_;
  std::unique_ptr<WeightSource> owned_;  // the convenience constructor's ResidentWeights
  WeightSource& source_;
  const TritterConfig& c_;
  EngineOptions options_;
  KvCache cache_;
  int64_t pos_ = 0;
  int64_t last_T_ = 0;
  AttnMask mask_;
  bool timed_;      // per-op wall times (timings()) are collected at --verbose: the clock costs ~2 % of a decode step
  OpTimes times_;
  Buffer rope_;     // cos, sin (context, d/2) each
  Buffer scratch_;  // activations for max_batch tokens (v_ views them)
  EngineViews v_;
  const LoraSet* lora_ = nullptr;
  Buffer lora_x_;  // the fp32 normalized input of the targeted projections (max_batch, widest)
};

}  // namespace tritter
