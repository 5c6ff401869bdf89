// Text embeddings from the final norm's output: the one pooling definition the public API's embed() and the
// server's /v1/embeddings share. Mean pooling averages every position's state (sums in double), "last" keeps the
// last position's; the result is L2-normalized so that a dot product is the cosine similarity (a zero sum stays
// zero). Rows arrive chunk by chunk, in order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tritter {

enum class EmbedPooling { Mean, Last };
EmbedPooling embed_pooling_from_name(const std::string& name);  // "mean" | "last"; throws Error

class EmbeddingPool {
 public:
  EmbeddingPool(int64_t D, EmbedPooling pooling = EmbedPooling::Mean);
  void add(const float* normed, int64_t T);  // rows (T, D)
  std::vector<float> finish() const;         // (D), unit norm

 private:
  int64_t D_;
  EmbedPooling pooling_;
  std::vector<double> sum_;
};

}  // namespace tritter
