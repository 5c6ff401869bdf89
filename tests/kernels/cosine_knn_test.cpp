// The cosine head's ops and the KNN exit: every backward against central differences of a double-precision
// function written here (h, E and s, with the auxiliary term, stop-gradient or not); the KNN exit equal to the
// argmax of the cosine logits bit for bit on each tier (f32 and int8 tables), ties to the lowest id, its top-k the
// sorted logits; across tiers, different ids only where the top-2 margin is below knn_tier_margin_bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

#include "core/context.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/head.h"
#include "kernels/knn.h"
#include "kernels/nn.h"
#include "kernels/test_util_kernels.h"

namespace tritter {
namespace {

using Vec = std::vector<double>;

using test::randn;

// L(h, E, log s) = mean_valid CE(s·ĥÊᵀ) + β·mean_valid(1 − ĥ·T_y), T = Ê (aux_live) or a fixed table.
double cosine_loss(const Vec& h, const Vec& E, double log_s, const std::vector<int32_t>& y, int64_t N, int64_t D,
                   int64_t V, double beta, const Vec* fixed_targets) {
  auto unit = [](const Vec& x, int64_t rows, int64_t n) {
    Vec u(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += x[r * n + j] * x[r * n + j];
      for (int64_t j = 0; j < n; ++j) u[r * n + j] = x[r * n + j] / std::sqrt(ss + kL2NormEps);
    }
    return u;
  };
  const Vec hn = unit(h, N, D), En = unit(E, V, D);
  const Vec& T = fixed_targets ? *fixed_targets : En;
  const double s = std::exp(log_s);
  double ce = 0, aux = 0;
  int64_t nv = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (y[n] == -100) continue;
    ++nv;
    std::vector<double> z(static_cast<size_t>(V));
    double m = -1e300;
    for (int64_t v = 0; v < V; ++v) {
      double d = 0;
      for (int64_t j = 0; j < D; ++j) d += hn[n * D + j] * En[v * D + j];
      z[v] = s * d;
      m = std::max(m, z[v]);
    }
    double se = 0;
    for (double zv : z) se += std::exp(zv - m);
    ce += m + std::log(se) - z[y[n]];
    double c = 0;
    for (int64_t j = 0; j < D; ++j) c += hn[n * D + j] * T[y[n] * D + j];
    aux += 1 - c;
  }
  return (ce + beta * aux) / static_cast<double>(std::max<int64_t>(nv, 1));
}

void expect_near_grad(const std::vector<float>& a, const Vec& num, const char* what) {
  double scale = 0, worst = 0;
  for (double v : num) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < num.size(); ++i) worst = std::max(worst, std::abs(a[i] - num[i]));
  EXPECT_LE(worst, 1e-4 * scale + 1e-6) << what << " (max |numeric| " << scale << ")";
}

TEST(CosineHead, BackwardMatchesFiniteDifferences) {
  const int64_t N = 5, D = 12, V = 9;
  const std::vector<int32_t> y = {3, 0, -100, 8, 3};  // a repeated target, an ignored one
  for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
    for (bool stopgrad : {true, false}) {
      Context ctx;
      ctx.threads = 2;
      ctx.kernels = tier;
      const std::vector<float> h = randn(N * D, 1, 2.0f), E = randn(V * D, 2, 0.3f);
      const float log_s = std::log(3.0f), beta = 0.4f;
      std::vector<float> hn(N * D), rh(N), En(V * D), rE(V), z(N * V), dz(N * V), dhn(N * D, 0.0f),
          dEn(V * D, 0.0f), dh(N * D), dE(V * D, 0.0f);
      const float s = std::exp(log_s);
      l2norm_rows_forward(ctx, hn.data(), rh.data(), h.data(), N, D);
      l2norm_rows_forward(ctx, En.data(), rE.data(), E.data(), V, D);
      cosine_logits_forward(ctx, z.data(), hn.data(), En.data(), s, N, D, V);
      const double ce = cross_entropy_forward_backward(ctx, dz.data(), z.data(), y.data(), N, V, 0.0, 1.0f);
      double mean_cos = 0;
      const double aux = embed_pred_forward_backward(ctx, dhn.data(), stopgrad ? nullptr : dEn.data(), hn.data(),
                                                     En.data(), y.data(), N, D, V, beta, 1.0f, &mean_cos);
      const double ds = cosine_logits_backward(ctx, dhn.data(), dEn.data(), dz.data(), z.data(), hn.data(), En.data(),
                                               s, N, D, V, true);
      l2norm_rows_backward(ctx, dh.data(), dhn.data(), hn.data(), rh.data(), N, D, false);
      l2norm_rows_backward(ctx, dE.data(), dEn.data(), En.data(), rE.data(), V, D, true);

      const Vec h0(h.begin(), h.end()), E0(E.begin(), E.end());
      Vec fixed;  // the stop-gradient targets: Ê at the base point
      for (int64_t v = 0; v < V; ++v) {
        double ss = 0;
        for (int64_t j = 0; j < D; ++j) ss += E0[v * D + j] * E0[v * D + j];
        for (int64_t j = 0; j < D; ++j) fixed.push_back(E0[v * D + j] / std::sqrt(ss + kL2NormEps));
      }
      const Vec* tgt = stopgrad ? &fixed : nullptr;
      EXPECT_NEAR(ce + aux, cosine_loss(h0, E0, log_s, y, N, D, V, beta, tgt), 1e-5);
      const double eps = 1e-6;
      Vec nh(h0.size()), nE(E0.size());
      for (size_t i = 0; i < h0.size(); ++i) {
        Vec p = h0, m = h0;
        p[i] += eps, m[i] -= eps;
        nh[i] = (cosine_loss(p, E0, log_s, y, N, D, V, beta, tgt) - cosine_loss(m, E0, log_s, y, N, D, V, beta, tgt)) /
                (2 * eps);
      }
      for (size_t i = 0; i < E0.size(); ++i) {
        Vec p = E0, m = E0;
        p[i] += eps, m[i] -= eps;
        nE[i] = (cosine_loss(h0, p, log_s, y, N, D, V, beta, tgt) - cosine_loss(h0, m, log_s, y, N, D, V, beta, tgt)) /
                (2 * eps);
      }
      const double nls = (cosine_loss(h0, E0, log_s + eps, y, N, D, V, beta, tgt) -
                          cosine_loss(h0, E0, log_s - eps, y, N, D, V, beta, tgt)) / (2 * eps);
      expect_near_grad(dh, nh, "dh");
      expect_near_grad(dE, nE, "dE");
      EXPECT_NEAR(ds * s, nls, 1e-4 * std::abs(nls) + 1e-6) << "d log s";
      EXPECT_GT(mean_cos, -1.0);
      EXPECT_LT(mean_cos, 1.0);
    }
  }
}

TEST(CosineHead, UnitRowsHaveNormOneAndSurviveZero) {
  Context ctx;
  std::vector<float> x = randn(3 * 7, 5, 4.0f), y(21), r(3);
  std::fill(x.begin() + 7, x.begin() + 14, 0.0f);  // a zero row stays zero (ε inside the root), not NaN
  l2norm_rows_forward(ctx, y.data(), r.data(), x.data(), 3, 7);
  for (int row : {0, 2}) {
    double ss = 0;
    for (int j = 0; j < 7; ++j) ss += double(y[row * 7 + j]) * y[row * 7 + j];
    EXPECT_NEAR(ss, 1.0, 1e-6);
  }
  for (int j = 7; j < 14; ++j) EXPECT_EQ(y[j], 0.0f);
}

// A unit table and the matching cosine head (f32, or int8 / 4-bit quantized from the unit rows as the writer does).
struct Table {
  std::vector<float> unit;
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<uint8_t> q4, mult;
  std::vector<float> scale4;
  HeadWeights head(HeadFormat f, float s) const {
    HeadWeights w;
    w.format = f;
    w.f32 = f == HeadFormat::F32 ? unit.data() : nullptr;
    w.i8 = f == HeadFormat::I8 ? q.data() : nullptr;
    w.row_scale = f == HeadFormat::I8 ? scale.data() : f == HeadFormat::I4 ? scale4.data() : nullptr;
    w.q4 = f == HeadFormat::I4 ? q4.data() : nullptr;
    w.mult = f == HeadFormat::I4 ? mult.data() : nullptr;
    w.cos_scale = s;
    return w;
  }
};
Table make_table(int64_t V, int64_t D, uint64_t seed) {
  Context ctx;
  Table t;
  const std::vector<float> E = randn(V * D, seed, 0.05f);
  std::vector<float> r(V);
  t.unit.resize(V * D);
  l2norm_rows_forward(ctx, t.unit.data(), r.data(), E.data(), V, D);
  t.q.resize(V * D);
  t.scale.resize(V);
  for (int64_t v = 0; v < V; ++v) {
    float a = 0;
    for (int64_t j = 0; j < D; ++j) a = std::max(a, std::abs(t.unit[v * D + j]));
    t.scale[v] = a / 127.0f;
    for (int64_t j = 0; j < D; ++j)
      t.q[v * D + j] = static_cast<int8_t>(std::clamp(std::nearbyint(t.unit[v * D + j] / t.scale[v]), -127.0f, 127.0f));
  }
  t.q4.resize(static_cast<size_t>(V * head_i4_row_bytes(D)));
  t.mult.resize(static_cast<size_t>(V * head_i4_groups(D)));
  t.scale4.resize(static_cast<size_t>(V));
  head_i4_quantize_rows(t.q4.data(), t.mult.data(), t.scale4.data(), t.unit.data(), V, D, "unit table");
  return t;
}

std::vector<KernelTier> tiers_and_reference() {
  std::vector<KernelTier> t = test::supported_tiers();
  t.push_back(KernelTier::Reference);
  return t;
}

TEST(KnnExit, EqualsTheArgmaxOfTheCosineLogitsOnEveryTier) {
  const int64_t N = 37, D = 72, V = 600, k = 5;  // V spans several row blocks and a partial one
  const Table t = make_table(V, D, 11);
  const std::vector<float> h = randn(N * D, 12);
  const float s = 17.5f;
  for (HeadFormat f : {HeadFormat::F32, HeadFormat::I8, HeadFormat::I4}) {
    for (KernelTier tier : tiers_and_reference()) {
      for (int threads : {1, 3}) {
        Context ctx;
        ctx.kernels = tier;
        ctx.threads = threads;
        std::vector<float> logits(N * V), scores(N * k);
        std::vector<int8_t> hq(N * D);
        std::vector<float> hs(N);
        const HeadWeights w = t.head(f, s);
        lm_head_forward(ctx, logits.data(), h.data(), N, w, V, D, hq.data(), hs.data());
        std::vector<int32_t> ids(N * k), am(N);
        knn_topk(ctx, ids.data(), scores.data(), h.data(), N, w, V, D, k);
        argmax_rows(am.data(), logits.data(), N, V);
        for (int64_t n = 0; n < N; ++n) {
          SCOPED_TRACE(::testing::Message() << kernel_tier_name(tier) << " head " << static_cast<int>(f) << " row " << n);
          EXPECT_EQ(ids[n * k], am[n]);  // 100 % agreement on one path
          std::vector<int32_t> order(V);
          std::iota(order.begin(), order.end(), 0);
          std::stable_sort(order.begin(), order.end(),
                           [&](int32_t a, int32_t b) { return logits[n * V + a] > logits[n * V + b]; });
          for (int64_t j = 0; j < k; ++j) {
            EXPECT_EQ(ids[n * k + j], order[j]);
            EXPECT_EQ(scores[n * k + j], logits[n * V + order[j]]);  // the logit itself, bit for bit
          }
        }
      }
    }
  }
}

TEST(KnnExit, TiesGoToTheLowestId) {
  const int64_t D = 16, V = 300;
  Table t = make_table(V, D, 3);
  // Rows 7, 260 and 5 identical (across row blocks): the query is that row, so all three tie at the top.
  for (int64_t j = 0; j < D; ++j) t.unit[260 * D + j] = t.unit[5 * D + j] = t.unit[7 * D + j];
  std::vector<float> h(t.unit.begin() + 7 * D, t.unit.begin() + 8 * D);
  for (KernelTier tier : tiers_and_reference()) {
    for (int threads : {1, 2}) {
      Context ctx;
      ctx.kernels = tier;
      ctx.threads = threads;
      std::vector<int32_t> ids(3);
      std::vector<float> sc(3);
      knn_topk(ctx, ids.data(), sc.data(), h.data(), 1, t.head(HeadFormat::F32, 10.0f), V, D, 3);
      EXPECT_EQ(ids, (std::vector<int32_t>{5, 7, 260})) << kernel_tier_name(tier);
      EXPECT_EQ(sc[0], sc[2]);
    }
  }
  std::vector<float> logits = {1, 3, 3, 2};
  int32_t id = -1;
  argmax_rows(&id, logits.data(), 1, 4);
  EXPECT_EQ(id, 1);
}

TEST(KnnExit, TiersDifferOnlyWithinTheMarginBound) {
  const int64_t N = 400, D = 384, V = 264;
  const Table t = make_table(V, D, 21);
  const std::vector<float> h = randn(N * D, 22);
  const float s = 30.0f;
  const double bound = knn_tier_margin_bound(D, s);
  EXPECT_GT(bound, 0.0);
  EXPECT_LT(bound, 1e-3 * s);
  Context ref_ctx;
  ref_ctx.kernels = KernelTier::Reference;
  std::vector<int32_t> ref_ids(N * 2);
  std::vector<float> ref_sc(N * 2);
  knn_topk(ref_ctx, ref_ids.data(), ref_sc.data(), h.data(), N, t.head(HeadFormat::F32, s), V, D, 2);
  for (HeadFormat f : {HeadFormat::F32, HeadFormat::I8, HeadFormat::I4}) {
    std::vector<int32_t> base(N * 2);
    std::vector<float> base_sc(N * 2);
    bool first = true;
    for (KernelTier tier : tiers_and_reference()) {
      Context ctx;
      ctx.kernels = tier;
      std::vector<int32_t> ids(N * 2);
      std::vector<float> sc(N * 2);
      knn_topk(ctx, ids.data(), sc.data(), h.data(), N, t.head(f, s), V, D, 2);
      if (first) {
        base = ids, base_sc = sc, first = false;
        continue;
      }
      for (int64_t n = 0; n < N; ++n) {
        if (f != HeadFormat::F32) {  // exact integer sums on every tier: the same ids and scores
          EXPECT_EQ(ids[n * 2], base[n * 2]) << "integer table " << static_cast<int>(f) << ", row " << n;
          EXPECT_EQ(sc[n * 2], base_sc[n * 2]) << "integer table " << static_cast<int>(f) << ", row " << n;
        } else if (ids[n * 2] != base[n * 2]) {
          EXPECT_LT(base_sc[n * 2] - base_sc[n * 2 + 1], bound) << kernel_tier_name(tier) << " row " << n;
        }
      }
    }
  }
}

TEST(KnnExit, RejectsALinearHeadAndABadK) {
  const Table t = make_table(20, 8, 1);
  Context ctx;
  std::vector<float> h(8, 1.0f), sc(21);
  std::vector<int32_t> ids(21);
  EXPECT_THROW(knn_topk(ctx, ids.data(), sc.data(), h.data(), 1, t.head(HeadFormat::F32, 0.0f), 20, 8, 1), Error);
  EXPECT_THROW(knn_topk(ctx, ids.data(), sc.data(), h.data(), 1, t.head(HeadFormat::F32, 2.0f), 20, 8, 21), Error);
}

}  // namespace
}  // namespace tritter
