// Per-op tests of train/ops (training-spec §4, tier T0): every backward against central finite differences of a
// double-precision reference written here; quantizer levels on hand-computed cases; BitLinear's integer form
// against the dequantized float form; the STE surrogate (frozen levels and scales) for the quantized backward.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/context.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/test_util_kernels.h"
#include "kernels/ternary_matmul.h"
#include "kernels/attention.h"
#include "kernels/nn.h"

namespace tritter {
namespace {

using test::dot;
using test::expect_grad_near;
using test::numeric_grad;
using test::randn;
using test::to_double;
using test::Vec;

// Contexts are not movable (they own a MemoryAccount): fill one in place.
#define MAKE_CTX(name, n) \
  Context name;           \
  name.threads = (n)

// ---- double references of the forwards (written from the spec, independent of train/ops)
Vec ref_rmsnorm(const Vec& x, const Vec& g, int64_t N, int64_t n, double eps) {
  Vec y(x.size());
  for (int64_t r = 0; r < N; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < n; ++j) ss += x[r * n + j] * x[r * n + j];
    const double rs = 1.0 / std::sqrt(ss / n + eps);
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = x[r * n + j] * rs * g[j];
  }
  return y;
}

TEST(TrainOps, RmsnormBackwardMatchesFiniteDifferences) {
  for (int threads : {1, 2}) {
    const int64_t N = 5, n = 17;
    const float eps = 1e-5f;
    MAKE_CTX(ctx, threads);
    auto x = randn(N * n, 1), g = randn(n, 2, 0.5f), w = randn(N * n, 3);
    for (auto& v : g) v += 1.0f;
    std::vector<float> y(N * n), rstd(N), dx(N * n, 0.0f), dg(n, 0.0f);
    rmsnorm_forward(ctx, y.data(), rstd.data(), x.data(), g.data(), N, n, eps);
    const Vec yr = ref_rmsnorm(to_double(x), to_double(g), N, n, eps);
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], yr[i], 1e-5 * std::abs(yr[i]) + 1e-6);
    rmsnorm_backward(ctx, dx.data(), dg.data(), w.data(), x.data(), rstd.data(), g.data(), N, n);
    const Vec wd = to_double(w);
    expect_grad_near(dx, numeric_grad([&](const Vec& xv) { return dot(ref_rmsnorm(xv, to_double(g), N, n, eps), wd); },
                                      to_double(x)), "dx");
    expect_grad_near(dg, numeric_grad([&](const Vec& gv) { return dot(ref_rmsnorm(to_double(x), gv, N, n, eps), wd); },
                                      to_double(g)), "dg");
  }
}

TEST(TrainOps, RmsnormBackwardAccumulates) {
  MAKE_CTX(ctx, 1);
  const int64_t N = 2, n = 3;
  auto x = randn(N * n, 4), g = randn(n, 5), dy = randn(N * n, 6);
  std::vector<float> y(N * n), r(N), dx1(N * n, 0.0f), dg1(n, 0.0f), dx2(N * n, 1.0f), dg2(n, 2.0f);
  rmsnorm_forward(ctx, y.data(), r.data(), x.data(), g.data(), N, n, 1e-5f);
  rmsnorm_backward(ctx, dx1.data(), dg1.data(), dy.data(), x.data(), r.data(), g.data(), N, n);
  rmsnorm_backward(ctx, dx2.data(), dg2.data(), dy.data(), x.data(), r.data(), g.data(), N, n);
  for (int64_t i = 0; i < N * n; ++i) EXPECT_FLOAT_EQ(dx2[i], dx1[i] + 1.0f);
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(dg2[i], dg1[i] + 2.0f);
}

Vec ref_rope(const Vec& x, const std::vector<float>& c, const std::vector<float>& s, int64_t B, int64_t T,
             int64_t heads, int64_t d) {
  Vec y(x.size());
  const int64_t half = d / 2;
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const int64_t t = bt % T;
    for (int64_t h = 0; h < heads; ++h) {
      const double* u = x.data() + (bt * heads + h) * d;
      double* o = y.data() + (bt * heads + h) * d;
      for (int64_t j = 0; j < half; ++j) {
        o[j] = u[j] * c[t * half + j] - u[j + half] * s[t * half + j];
        o[j + half] = u[j + half] * c[t * half + j] + u[j] * s[t * half + j];
      }
    }
  }
  return y;
}

TEST(TrainOps, RopeForwardAndBackward) {
  MAKE_CTX(ctx, 2);
  const int64_t B = 2, T = 5, heads = 3, d = 8;
  std::vector<float> c(T * d / 2), s(T * d / 2);
  rope_tables(c.data(), s.data(), T, d, 10000.0, 0);
  auto x = randn(B * T * heads * d, 7), w = randn(B * T * heads * d, 8);
  std::vector<float> y = x;
  rope_forward(ctx, y.data(), c.data(), s.data(), B, T, heads, d);
  const Vec yr = ref_rope(to_double(x), c, s, B, T, heads, d);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], yr[i], 1e-6);
  std::vector<float> dx = w;
  rope_backward(ctx, dx.data(), c.data(), s.data(), B, T, heads, d);
  const Vec wd = to_double(w);
  expect_grad_near(dx, numeric_grad([&](const Vec& xv) { return dot(ref_rope(xv, c, s, B, T, heads, d), wd); },
                                    to_double(x)), "dx");
}

// Whether query i sees key j, written from the mask's definition (not from AttnMask's range functions).
bool sees(const AttnMask& m, int64_t i, int64_t j) {
  bool kind = m.kind == AttnMask::Kind::Causal          ? j <= i
              : m.kind == AttnMask::Kind::Bidirectional ? true
                                                        : (j <= i || (i < m.prefix && j < m.prefix));
  return kind && (!m.window || std::abs(i - j) < *m.window);
}

// Naive attention: materialized scores, -inf masking, softmax in double.
Vec ref_attention(const Vec& q, const Vec& k, const Vec& v, const AttnShape& s) {
  Vec out(static_cast<size_t>(s.B * s.T * s.H * s.d), 0.0);
  const int64_t G = s.H / s.K;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t i = 0; i < s.T; ++i) {
        const int64_t kv = h / G;
        std::vector<double> sc(static_cast<size_t>(s.T), -std::numeric_limits<double>::infinity());
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < s.T; ++j) {
          if (!sees(s.mask, i, j)) continue;
          double acc = 0;
          for (int64_t e = 0; e < s.d; ++e)
            acc += q[((b * s.T + i) * s.H + h) * s.d + e] * k[((b * s.T + j) * s.K + kv) * s.d + e];
          sc[j] = acc / std::sqrt(static_cast<double>(s.d));
          m = std::max(m, sc[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < s.T; ++j) sum += std::exp(sc[j] - m);
        for (int64_t j = 0; j < s.T; ++j) {
          const double p = std::exp(sc[j] - m) / sum;
          for (int64_t e = 0; e < s.d; ++e)
            out[((b * s.T + i) * s.H + h) * s.d + e] += p * v[((b * s.T + j) * s.K + kv) * s.d + e];
        }
      }
  return out;
}

void check_attention(const AttnShape& s, int threads) {
  SCOPED_TRACE(::testing::Message() << "T=" << s.T << " H=" << s.H << " K=" << s.K << " mask="
                                    << attn_mask_name(s.mask) << " window=" << s.mask.window.value_or(-1)
                                    << " prefix=" << s.mask.prefix << " threads=" << threads);
  MAKE_CTX(ctx, threads);
  const int64_t nq = s.B * s.T * s.H * s.d, nk = s.B * s.T * s.K * s.d;
  auto q = randn(nq, 11), k = randn(nk, 12), v = randn(nk, 13), w = randn(nq, 14);
  std::vector<float> out(nq), lse(s.B * s.H * s.T), dq(nq), dk(nk), dv(nk);
  std::vector<float> scratch(attention_scratch_floats(s, threads));
  attention_forward(ctx, out.data(), lse.data(), q.data(), k.data(), v.data(), s, scratch.data());
  const Vec outr = ref_attention(to_double(q), to_double(k), to_double(v), s);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], outr[i], 1e-5) << i;
  attention_backward(ctx, dq.data(), dk.data(), dv.data(), w.data(), q.data(), k.data(), v.data(), out.data(),
                     lse.data(), s, scratch.data());
  const Vec qd = to_double(q), kd = to_double(k), vd = to_double(v), wd = to_double(w);
  expect_grad_near(dq, numeric_grad([&](const Vec& x) { return dot(ref_attention(x, kd, vd, s), wd); }, qd), "dq");
  expect_grad_near(dk, numeric_grad([&](const Vec& x) { return dot(ref_attention(qd, x, vd, s), wd); }, kd), "dk");
  expect_grad_near(dv, numeric_grad([&](const Vec& x) { return dot(ref_attention(qd, kd, x, s), wd); }, vd), "dv");
}

TEST(TrainOps, AttentionMatchesNaiveAndFiniteDifferences) {
  check_attention({2, 7, 4, 2, 4, AttnMask::causal()}, 2);  // GQA 2:1
  check_attention({1, 7, 2, 2, 4, AttnMask::causal(3)}, 1);             // sliding window 3
  check_attention({1, 5, 2, 1, 4, AttnMask::causal(1)}, 2);             // window 1: self only
}

TEST(TrainOps, AttentionOtherMasks) {
  check_attention({2, 7, 4, 2, 4, AttnMask::bidirectional()}, 2);
  check_attention({1, 7, 2, 1, 4, AttnMask::bidirectional(3)}, 1);
  check_attention({1, 7, 2, 2, 4, AttnMask::prefix_lm(3)}, 2);
  check_attention({1, 7, 2, 2, 4, AttnMask::prefix_lm(0)}, 1);  // prefix 0 is causal
  check_attention({1, kAttnBlock + 9, 2, 1, 2, AttnMask::prefix_lm(kAttnBlock + 3)}, 2);  // across blocks
}

TEST(TrainOps, AttentionCrossesQueryBlocks) {
  // T > kAttnBlock: the second query block skips nothing (causal) or the keys left of the window.
  check_attention({1, kAttnBlock + 9, 2, 1, 2, AttnMask::causal()}, 2);
  check_attention({1, kAttnBlock + 9, 2, 2, 2, AttnMask::causal(20)}, 2);
}

TEST(TrainOps, Relu2AndGluBackward) {
  MAKE_CTX(ctx, 2);
  const int64_t n = 33;
  auto u = randn(n, 21), gt = randn(n, 22), w = randn(n, 23);
  std::vector<float> s(n), du(n), dg(n);
  relu2_forward(ctx, s.data(), u.data(), n);
  relu2_backward(ctx, du.data(), w.data(), u.data(), n);
  auto r2 = [](double x) { return x > 0 ? x * x : 0.0; };
  const Vec wd = to_double(w);
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(s[i], static_cast<float>(r2(u[i])));
  expect_grad_near(du, numeric_grad([&](const Vec& x) { Vec y(n); for (int64_t i = 0; i < n; ++i) y[i] = r2(x[i]);
                                                        return dot(y, wd); }, to_double(u)), "relu2");
  relu2_glu_forward(ctx, s.data(), gt.data(), u.data(), n);
  relu2_glu_backward(ctx, dg.data(), du.data(), w.data(), gt.data(), u.data(), n);
  auto glu = [&](const Vec& g, const Vec& up) { Vec y(n); for (int64_t i = 0; i < n; ++i) y[i] = r2(g[i]) * up[i];
                                                return dot(y, wd); };
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(s[i], static_cast<float>(r2(gt[i]) * u[i]));
  expect_grad_near(dg, numeric_grad([&](const Vec& g) { return glu(g, to_double(u)); }, to_double(gt)), "dgate");
  expect_grad_near(du, numeric_grad([&](const Vec& up) { return glu(to_double(gt), up); }, to_double(u)), "dup");
}

TEST(TrainOps, EmbeddingScatterAddsRepeatedIds) {
  const int64_t V = 5, D = 3, N = 4;
  auto E = randn(V * D, 31);
  const std::vector<int32_t> ids = {2, 0, 2, 4};
  std::vector<float> x(N * D), dE(V * D, 0.0f), dx = randn(N * D, 32);
  embedding_forward(x.data(), E.data(), ids.data(), N, D, V);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < D; ++j) EXPECT_EQ(x[n * D + j], E[ids[n] * D + j]);
  embedding_backward(dE.data(), dx.data(), ids.data(), N, D);
  for (int64_t j = 0; j < D; ++j) {
    EXPECT_FLOAT_EQ(dE[2 * D + j], dx[0 * D + j] + dx[2 * D + j]);
    EXPECT_EQ(dE[1 * D + j], 0.0f);
  }
  const std::vector<int32_t> bad = {5};
  EXPECT_THROW(embedding_forward(x.data(), E.data(), bad.data(), 1, D, V), Error);
}

double ref_ce(const Vec& z, const std::vector<int32_t>& t, int64_t N, int64_t V, double zl) {
  double loss = 0;
  int64_t valid = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == -100) continue;
    ++valid;
    double m = z[n * V];
    for (int64_t j = 0; j < V; ++j) m = std::max(m, z[n * V + j]);
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(z[n * V + j] - m);
    const double lse = m + std::log(s);
    loss += lse - z[n * V + t[n]] + zl * lse * lse;
  }
  return loss / std::max<int64_t>(valid, 1);
}

TEST(TrainOps, CrossEntropyWithZLossAndIgnoredTargets) {
  MAKE_CTX(ctx, 2);
  const int64_t N = 5, V = 11;
  auto z = randn(N * V, 41, 2.0f);
  const std::vector<int32_t> t = {3, -100, 0, 10, 7};
  for (double zl : {0.0, 1e-2}) {
    std::vector<float> dz(N * V);
    const double loss = cross_entropy_forward_backward(ctx, dz.data(), z.data(), t.data(), N, V, zl, 1.0f);
    EXPECT_NEAR(loss, ref_ce(to_double(z), t, N, V, zl), 1e-6);
    expect_grad_near(dz, numeric_grad([&](const Vec& x) { return ref_ce(x, t, N, V, zl); }, to_double(z)), "dz");
    for (int64_t j = 0; j < V; ++j) EXPECT_EQ(dz[1 * V + j], 0.0f);
  }
  const std::vector<int32_t> bad = {11, 0, 0, 0, 0};
  EXPECT_THROW(cross_entropy_forward_backward(ctx, nullptr, z.data(), bad.data(), N, V, 0.0, 1.0f), Error);
}

// ---- BitLinear
TEST(TrainOps, QuantizerLevelsOnHandComputedCases) {
  // Weights: Σ|w| = 0.5+1.5+0.02+2+0.74+0.24 = 5.0 over 6 → β = 5/6, σ = 1.2: w·σ = 0.6, −1.8, 0.024, 2.4, 0.888,
  // 0.288 → levels 1, −1, 0, 1, 1, 0.
  const std::vector<float> w = {0.5f, -1.5f, 0.02f, 2.0f, 0.74f, 0.24f};
  const float sigma = ternary_sigma(w.data(), 6);
  EXPECT_EQ(sigma, 1.0f / static_cast<float>(5.0 / 6.0));
  std::vector<int8_t> q(6);
  ternary_quantize(q.data(), w.data(), 6, sigma);
  EXPECT_EQ(q, (std::vector<int8_t>{1, -1, 0, 1, 1, 0}));
  // Activations: absmax 127 → s = 1; 2.5 → 2 and −3.5 → −4 (ties to even), 0.5 → 0.
  const std::vector<float> x = {127.0f, 2.5f, -3.5f, 0.5f};
  std::vector<int8_t> xq(4);
  float s = 0;
  quantize_activations(xq.data(), &s, x.data(), 1, 4);
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(xq, (std::vector<int8_t>{127, 2, -4, 0}));
  // All-zero row: absmax clamps to 1e-5 → s = 127/1e-5, levels 0.
  const std::vector<float> zero = {0.0f, 0.0f};
  quantize_activations(xq.data(), &s, zero.data(), 1, 2);
  EXPECT_EQ(s, 127.0f / 1e-5f);
  EXPECT_EQ(xq[0], 0);
}

struct BitFixture {
  int64_t N, I, O;
  std::vector<float> x, w;
  std::vector<int8_t> wq_scratch, xq;
  std::vector<uint8_t> packed;
  std::vector<float> xs;
  BitWeight bw;
  BitInput in;
  BitFixture(int64_t n, int64_t i, int64_t o, bool quant) : N(n), I(i), O(o) {
    x = randn(N * I, 51);
    w = randn(O * I, 52, 0.05f);
    wq_scratch.resize(O * I);
    packed.resize(ternary_matrix_bytes(O, I));
    xq.resize(N * I);
    xs.resize(quant ? N : N * I);
    bw = BitWeight{w.data(), O, I, quant, packed.data(), 1.0f};
    bitweight_prepare(bw, wq_scratch.data());
    in = quant ? BitInput{xq.data(), xs.data(), nullptr} : BitInput{nullptr, nullptr, xs.data()};
  }
  Vec wtilde() const {  // W̃ = Wq / σ
    Vec out(O * I);
    for (int64_t i = 0; i < O * I; ++i) out[i] = bw.quant ? wq_scratch[i] / static_cast<double>(bw.sigma) : w[i];
    return out;
  }
};

TEST(TrainOps, BitLinearIntegerFormEqualsDequantizedFloatForm) {
  MAKE_CTX(ctx, 2);
  for (int64_t I : {5, 17, 64}) {
    BitFixture f(7, I, 9, true);
    bitinput_set(ctx, f.in, f.x.data(), f.N, f.I, true);
    std::vector<float> y(f.N * f.O), xt(f.N * f.I);
    bitlinear_forward(ctx, y.data(), f.in, f.bw, f.N);
    const float* xtp = bitinput_float(f.in, xt.data(), f.N, f.I, true);
    const Vec wt = f.wtilde();
    for (int64_t n = 0; n < f.N; ++n)
      for (int64_t o = 0; o < f.O; ++o) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < f.I; ++i) {
          ref += static_cast<double>(xtp[n * f.I + i]) * wt[o * f.I + i];
          mag += std::abs(static_cast<double>(xtp[n * f.I + i]) * wt[o * f.I + i]);
        }
        // 1e-6 relative to the magnitude of the sum (the integer form rounds once; x̃, W̃ round once each).
        EXPECT_NEAR(y[n * f.O + o], ref, 1e-6 * mag + 1e-12) << "n=" << n << " o=" << o;
      }
  }
}

TEST(TrainOps, BitLinearBackwardIsTheStraightThroughSurrogate) {
  // Surrogate with frozen levels and scales: y = x̃ W̃ᵀ with x̃, W̃ constant offsets of x, W, so dy/dx = W̃ and
  // dy/dW = x̃ — exactly what the STE backward must give (and not the latent W).
  MAKE_CTX(ctx, 2);
  for (bool quant : {true, false}) {
    BitFixture f(6, 19, 5, quant);
    bitinput_set(ctx, f.in, f.x.data(), f.N, f.I, quant);
    auto dy = randn(f.N * f.O, 53);
    std::vector<float> dx(f.N * f.I), dw(f.O * f.I, 0.0f), xt(f.N * f.I), scratch(f.N * f.I);
    bitlinear_backward_dx(ctx, dx.data(), dy.data(), f.bw, f.N, false, scratch.data());
    const float* xtp = bitinput_float(f.in, xt.data(), f.N, f.I, quant);
    bitlinear_backward_dw(ctx, dw.data(), dy.data(), xtp, f.N, f.O, f.I);
    const Vec wt = f.wtilde(), dyd = to_double(dy);
    Vec xtd(xtp, xtp + f.N * f.I), offx(f.N * f.I), offw(f.O * f.I);
    for (int64_t i = 0; i < f.N * f.I; ++i) offx[i] = xtd[i] - f.x[i];
    for (int64_t i = 0; i < f.O * f.I; ++i) offw[i] = wt[i] - f.w[i];
    auto surrogate = [&](const Vec& x, const Vec& w) {
      double s = 0;
      for (int64_t n = 0; n < f.N; ++n)
        for (int64_t o = 0; o < f.O; ++o) {
          double acc = 0;
          for (int64_t i = 0; i < f.I; ++i) acc += (x[n * f.I + i] + offx[n * f.I + i]) * (w[o * f.I + i] + offw[o * f.I + i]);
          s += acc * dyd[n * f.O + o];
        }
      return s;
    };
    expect_grad_near(dx, numeric_grad([&](const Vec& x) { return surrogate(x, to_double(f.w)); }, to_double(f.x)),
                     quant ? "dx quant" : "dx fp");
    expect_grad_near(dw, numeric_grad([&](const Vec& w) { return surrogate(to_double(f.x), w); }, to_double(f.w)),
                     quant ? "dW quant" : "dW fp");
    // Accumulating form adds to what is there.
    std::vector<float> dx2(f.N * f.I, 1.0f);
    bitlinear_backward_dx(ctx, dx2.data(), dy.data(), f.bw, f.N, true, scratch.data());
    for (int64_t i = 0; i < f.N * f.I; ++i) EXPECT_NEAR(dx2[i], dx[i] + 1.0f, 1e-5);
  }
}

}  // namespace
}  // namespace tritter
