// Continuous thought (latent mode): between <bot> and <eot> the model is fed its own last post-final-norm hidden
// state, scaled by the thought adapter, instead of a sampled token: one decode step per thought, each appending
// one ordinary KV entry at the next position (Engine::step_embedding). A model has to be trained for it; an
// untrained one just continues from a few odd positions. Non-goals here: training (a segmented forward/backward),
// the entropy stop rule, mixture inputs.
#pragma once
#include <cstdint>

#include "infer/engine.h"
#include "infer/weight_source.h"

namespace tritter {

// The control ids sit after the byte vocabulary's 264 ids (0–7 specials, 8–263 bytes, none spare), so a model
// that uses them is configured with vocab_size ≥ 268 (272 keeps a multiple of 16).
inline constexpr int32_t kTokenBot = 264;     // begin of thought
inline constexpr int32_t kTokenEot = 265;     // end of thought
inline constexpr int32_t kTokenLatent = 266;  // a thought's place in training data; never embedded
inline constexpr int32_t kTokenPause = 267;   // a pause token: the pause-as-thought control
inline constexpr int32_t kLatentVocabSize = 268;

// The thought adapter's default scale c: the embedding rows' RMS, mean_v ‖E_v‖/√D. The final norm's output has
// RMS ≈ its gains (≈ 1) while embedding rows are far smaller (≈ 0.02 at init), so a raw state fed back would
// dominate the residual stream.
double embedding_row_rms(WeightSource& source);

// Runs `steps` thoughts after a forward: each is x = scale·last_hidden(), then step_embedding(x) without logits,
// so the engine's position advances by `steps`. Throws Error (from the engine) when they overflow the context.
void run_latent_steps(Engine& engine, int64_t steps, float scale);

}  // namespace tritter
