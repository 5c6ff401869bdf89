#include "infer/knn_eval.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/knn.h"
#include "kernels/nn.h"
#include "kernels/ops.h"

namespace tritter {

double KnnEval::bits_per_token() const { return positions ? nats / static_cast<double>(positions) / std::log(2.0) : 0.0; }

KnnEval evaluate_knn_exit(Engine& engine, const int32_t* windows, int64_t count, int64_t T) {
  const ModelWeights& w = engine.weights();
  const TritterConfig& c = w.config;
  const bool cosine = c.cosine_head() && w.head.cos_scale > 0.0f;
  const int64_t V = c.vocab_size, D = c.hidden_size, B = std::min<int64_t>(T, engine.max_batch());
  const double bound = cosine ? knn_tier_margin_bound(D, w.head.cos_scale) : 0.0;
  const Context& ctx = engine.kernel_context();  // the exit's ops on the engine's own tier and threads
  std::vector<float> logits(static_cast<size_t>(B * V)), normed(static_cast<size_t>(B * D)),
      unit(static_cast<size_t>(B * D)), r(static_cast<size_t>(B)), eunit(static_cast<size_t>(V * D)),
      er(static_cast<size_t>(V)), scores(static_cast<size_t>(2 * B));
  std::vector<int32_t> ids(static_cast<size_t>(2 * B)), am(static_cast<size_t>(B));
  l2norm_rows_forward(ctx, eunit.data(), er.data(), w.embed, V, D);
  KnnEval e;
  e.has_knn = cosine;
  for (int64_t i = 0; i < count; ++i) {
    const int32_t* win = windows + i * (T + 1);
    engine.reset();
    for (int64_t t0 = 0; t0 < T; t0 += B) {
      const int64_t n = std::min(B, T - t0);
      engine.forward(std::span<const int32_t>(win + t0, static_cast<size_t>(n)), logits.data(), true);
      rmsnorm(ctx, normed.data(), engine.hidden_states(), w.final_norm, n, D, static_cast<float>(c.rms_norm_eps));
      if (cosine) knn_topk(ctx, ids.data(), scores.data(), normed.data(), n, w.head, V, D, 2);
      argmax_rows(am.data(), logits.data(), n, V);
      l2norm_rows_forward(ctx, unit.data(), r.data(), normed.data(), n, D);
      for (int64_t k = 0; k < n; ++k) {
        const int32_t y = win[t0 + k + 1];
        const float* z = logits.data() + k * V;
        float m = z[0];
        for (int64_t v = 1; v < V; ++v) m = std::max(m, z[v]);
        double s = 0;
        for (int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(z[v]) - m);
        e.nats += m + std::log(s) - z[y];
        double cs = 0;
        for (int64_t j = 0; j < D; ++j) cs += static_cast<double>(unit[k * D + j]) * eunit[y * D + j];
        e.cos_sum += cs;
        ++e.positions;
        e.argmax_correct += am[k] == y;
        if (!cosine) continue;
        e.agree += ids[2 * k] == am[k];
        e.knn_correct += ids[2 * k] == y;
        e.narrow += scores[2 * k] - scores[2 * k + 1] < bound;
      }
    }
  }
  engine.reset();
  return e;
}

}  // namespace tritter
