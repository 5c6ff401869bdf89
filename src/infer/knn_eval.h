// Evaluation of a cosine head's exits on next-token data: for every position of every window, the KNN exit
// (Engine::knn_exit's kernel, k = 2) against the argmax of the logits the same engine computes, top-1 accuracy of
// each, their agreement, the mean cos(h, E_y) of the targets, and the bits per token of the softmax over the
// same logits. On one kernel tier agreement is 100 % by construction (the exit ranks the logits themselves).
#pragma once
#include <cstdint>

#include "infer/engine.h"

namespace tritter {

struct KnnEval {
  bool has_knn = false;        // a cosine head: the KNN fields below are measured
  int64_t positions = 0;       // scored positions
  int64_t agree = 0;           // KNN id == argmax of the logits
  int64_t knn_correct = 0;     // KNN id == target
  int64_t argmax_correct = 0;  // argmax == target
  int64_t narrow = 0;          // positions whose top-2 margin is below knn_tier_margin_bound
  double nats = 0;             // Σ −log softmax(logits)[target]
  double cos_sum = 0;          // Σ ĥ·Ê_target
  double bits_per_token() const;
  double agreement() const { return positions ? static_cast<double>(agree) / positions : 1.0; }
};

// windows (count, T + 1): inputs are the first T ids, targets the last T; each window runs from position 0 on a
// reset engine (a resident model). A linear head gets the logits' statistics only (has_knn false; knn fields 0).
KnnEval evaluate_knn_exit(Engine& engine, const int32_t* windows, int64_t count, int64_t T);

}  // namespace tritter
