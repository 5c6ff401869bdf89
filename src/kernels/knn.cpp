#include "kernels/knn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/nn.h"
#include "kernels/parallel.h"

namespace tritter {

namespace {
struct Cand {
  float score;
  int32_t id;
};
// Better = higher score, then lower id (ties to the lowest id).
bool better(const Cand& a, const Cand& b) { return a.score > b.score || (a.score == b.score && a.id < b.id); }

// Keeps the k best candidates of `list` plus `c` sorted best first (k is small: insertion).
void offer(std::vector<Cand>& list, int64_t k, const Cand& c) {
  if (static_cast<int64_t>(list.size()) == k && !better(c, list.back())) return;
  auto pos = std::upper_bound(list.begin(), list.end(), c, [](const Cand& x, const Cand& y) { return better(x, y); });
  list.insert(pos, c);
  if (static_cast<int64_t>(list.size()) > k) list.pop_back();
}
}  // namespace

void knn_topk(const Context& ctx, int32_t* ids, float* scores, const float* h, int64_t N, const HeadWeights& w,
              int64_t V, int64_t D, int64_t k) {
  if (!(w.cos_scale > 0.0f)) throw_error("knn exit: the head is not a cosine head (head_type cosine_tied)");
  if (k < 1 || k > V) throw_error("knn exit: k ", k, ", expected 1 .. ", V);
  std::vector<float> unit(static_cast<size_t>(N * D)), r(static_cast<size_t>(N));
  l2norm_rows_forward(ctx, unit.data(), r.data(), h, N, D);
  HeadWeights plain = w;
  plain.cos_scale = 0.0f;
  const int64_t blocks = (V + kKnnRowBlock - 1) / kKnnRowBlock;
  const int threads = static_cast<int>(std::clamp<int64_t>(ctx.threads, 1, blocks));
  // Per worker: a running top-k per query row over the blocks it took, merged in a fixed order afterwards.
  std::vector<std::vector<std::vector<Cand>>> best(static_cast<size_t>(threads),
                                                   std::vector<std::vector<Cand>>(static_cast<size_t>(N)));
  std::vector<std::vector<float>> zbuf(static_cast<size_t>(threads),
                                       std::vector<float>(static_cast<size_t>(N * kKnnRowBlock)));
  std::vector<std::vector<int8_t>> qbuf(static_cast<size_t>(threads), std::vector<int8_t>(static_cast<size_t>(N * D)));
  std::vector<std::vector<float>> sbuf(static_cast<size_t>(threads), std::vector<float>(static_cast<size_t>(N)));
  parallel_for(threads, blocks, [&](int64_t b, int tid) {
    const int64_t v0 = b * kKnnRowBlock, nb = std::min(kKnnRowBlock, V - v0);
    const HeadWeights part = head_rows_from(plain, v0, D);  // rows v0 .. v0+nb−1 as a head of nb rows
    float* z = zbuf[size_t(tid)].data();
    lm_head_forward(ctx, z, unit.data(), N, part, nb, D, qbuf[size_t(tid)].data(), sbuf[size_t(tid)].data());
    for (int64_t n = 0; n < N; ++n) {
      auto& list = best[size_t(tid)][size_t(n)];
      for (int64_t j = 0; j < nb; ++j) {
        const float s = z[n * nb + j] * w.cos_scale;  // the cosine head's logit, rounded as it rounds it
        offer(list, k, {s, static_cast<int32_t>(v0 + j)});
      }
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    std::vector<Cand> all;
    for (int t = 0; t < threads; ++t) {
      for (const Cand& c : best[size_t(t)][size_t(n)]) offer(all, k, c);
    }
    for (int64_t j = 0; j < k; ++j) {
      ids[n * k + j] = all[size_t(j)].id;
      scores[n * k + j] = all[size_t(j)].score;
    }
  }
}

double knn_tier_margin_bound(int64_t D, float s) {
  const double per_dot = (static_cast<double>((D + 15) / 16) + 5.0) * std::ldexp(1.0, -24);
  // Each tier's logit is within e = s·(per_dot + 2⁻²⁴) of the exact one, so a margin moves by at most 4e.
  return 4.0 * (per_dot + std::ldexp(1.0, -24)) * static_cast<double>(s);
}

void argmax_rows(int32_t* ids, const float* logits, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v) {
      if (logits[n * V + v] > logits[n * V + best]) best = v;
    }
    ids[n] = static_cast<int32_t>(best);
  }
}

}  // namespace tritter
