#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.h"

namespace tritter {

Sampler::Sampler(const SamplerOptions& o) : o_(o), rng_(o.seed) {
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    throw_error("--temp: found ", o.temperature, ", expected a finite value >= 0");
  }
  if (o.top_k < 0) throw_error("--top-k: found ", o.top_k, ", expected >= 0");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) throw_error("--top-p: found ", o.top_p, ", expected 0 < p <= 1");
  if (!(o.min_p >= 0.0f && o.min_p < 1.0f)) throw_error("--min-p: found ", o.min_p, ", expected 0 <= p < 1");
  if (!(o.repeat_penalty > 0.0f) || !std::isfinite(o.repeat_penalty)) {
    throw_error("--repeat-penalty: found ", o.repeat_penalty, ", expected a finite value > 0");
  }
  if (o.repeat_last_n < 0) throw_error("--repeat-last-n: found ", o.repeat_last_n, ", expected >= 0");
}

int32_t argmax(const float* logits, int64_t V) {
  int64_t best = 0;
  for (int64_t v = 1; v < V; ++v) {
    if (logits[v] > logits[best]) best = v;
  }
  return static_cast<int32_t>(best);
}

int32_t Sampler::sample(float* logits, int64_t V, std::span<const int32_t> history) {
  if (o_.repeat_penalty != 1.0f && o_.repeat_last_n > 0) {
    const size_t n = std::min<size_t>(history.size(), o_.repeat_last_n);
    std::unordered_set<int32_t> seen(history.end() - n, history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= V) continue;
      logits[id] = logits[id] > 0 ? logits[id] / o_.repeat_penalty : logits[id] * o_.repeat_penalty;
    }
  }
  if (o_.temperature == 0.0f) return argmax(logits, V);

  cand_.resize(V);
  for (int64_t v = 0; v < V; ++v) cand_[v] = {logits[v], static_cast<int32_t>(v)};
  auto by_logit = [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; };
  size_t k = cand_.size();
  if (o_.top_k > 0 && static_cast<size_t>(o_.top_k) < k) k = o_.top_k;
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), by_logit);
  cand_.resize(k);
  // Softmax at the temperature, over the survivors (sorted, the max first).
  const float mx = cand_[0].first;
  double total = 0;
  for (auto& c : cand_) {
    c.first = std::exp((c.first - mx) / o_.temperature);
    total += c.first;
  }
  size_t keep = cand_.size();
  if (o_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += cand_[i].first / total;
      if (cum >= o_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (o_.min_p > 0.0f) {
    const float floor = o_.min_p * cand_[0].first;
    size_t i = 1;
    while (i < keep && cand_[i].first >= floor) ++i;
    keep = i;
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += cand_[i].first;
  const double u = rng_.uniform_double() * kept;
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += cand_[i].first;
    if (u < cum) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace tritter
