#include "infer/embed_pool.h"

#include <cmath>

#include "core/error.h"

namespace tritter {

EmbedPooling embed_pooling_from_name(const std::string& name) {
  if (name == "mean") return EmbedPooling::Mean;
  if (name == "last") return EmbedPooling::Last;
  throw_error("embed: pooling '", name, "', expected mean or last");
}

EmbeddingPool::EmbeddingPool(int64_t D, EmbedPooling pooling)
    : D_(D), pooling_(pooling), sum_(static_cast<size_t>(D), 0.0) {}

void EmbeddingPool::add(const float* normed, int64_t T) {
  if (T < 1) return;
  if (pooling_ == EmbedPooling::Last) {
    for (int64_t j = 0; j < D_; ++j) sum_[static_cast<size_t>(j)] = normed[(T - 1) * D_ + j];
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < D_; ++j) sum_[static_cast<size_t>(j)] += normed[t * D_ + j];
  }
}

std::vector<float> EmbeddingPool::finish() const {
  double norm = 0;
  for (double v : sum_) norm += v * v;  // the mean's 1/n cancels in the normalization
  norm = std::sqrt(norm);
  std::vector<float> out(static_cast<size_t>(D_));
  for (int64_t j = 0; j < D_; ++j) {
    out[static_cast<size_t>(j)] = norm > 0 ? static_cast<float>(sum_[static_cast<size_t>(j)] / norm) : 0.0f;
  }
  return out;
}

}  // namespace tritter
