// The audio codec's ops (kernels/conv.h): convolutions, padding, ELU, the LSTM, weight norm; forwards against double definitions written here (independent of
// kernels/ref), every backward against central differences of those definitions, accumulation, hand-computed
// reflect padding, and shape errors. Shapes with odd channels, strides 1–4, dilations 1–3 and K = 1 (the pointwise
// path that skips im2col).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/conv.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using test::dot;
using test::expect_grad_near;
using test::numeric_grad;
using test::randn;
using test::to_double;
using test::Vec;

Vec def_conv1d(const Vec& x, const Vec& w, const Vec& b, const Conv1dShape& s) {
  const int64_t To = s.conv_out();
  Vec y(static_cast<size_t>(s.B * s.Cout * To));
  for (int64_t n = 0; n < s.B; ++n)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t t = 0; t < To; ++t) {
        double acc = b[o];
        for (int64_t c = 0; c < s.Cin; ++c)
          for (int64_t k = 0; k < s.K; ++k)
            acc += w[(o * s.Cin + c) * s.K + k] * x[(n * s.Cin + c) * s.T + t * s.stride + k * s.dilation];
        y[(n * s.Cout + o) * To + t] = acc;
      }
  return y;
}

// Scatter form, the way PyTorch documents ConvTranspose1d: input step t adds w[c, o, k]·x[c, t] at t·stride + k·dil.
Vec def_conv_transpose1d(const Vec& x, const Vec& w, const Vec& b, const Conv1dShape& s) {
  const int64_t To = s.transpose_out();
  Vec y(static_cast<size_t>(s.B * s.Cout * To));
  for (int64_t n = 0; n < s.B; ++n)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t i = 0; i < To; ++i) y[(n * s.Cout + o) * To + i] = b[o];
  for (int64_t n = 0; n < s.B; ++n)
    for (int64_t c = 0; c < s.Cin; ++c)
      for (int64_t t = 0; t < s.T; ++t)
        for (int64_t o = 0; o < s.Cout; ++o)
          for (int64_t k = 0; k < s.K; ++k)
            y[(n * s.Cout + o) * To + t * s.stride + k * s.dilation] +=
                x[(n * s.Cin + c) * s.T + t] * w[(c * s.Cout + o) * s.K + k];
  return y;
}

// |y − ref| ≤ 2·(terms + 1)·eps·terms·term_bound per element: twice the forward error bound of a float sum of
// `terms` products (each of the bias and the Cin·K products at most term_bound in magnitude).
void expect_sum_near(const std::vector<float>& y, const Vec& ref, double terms, double term_bound, const char* what) {
  ASSERT_EQ(y.size(), ref.size()) << what;
  const double tol = 2.0 * (terms + 1) * 1.1920929e-7 * terms * term_bound + 1e-30;
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], tol) << what << " element " << i;
}

const Conv1dShape kShapes[] = {
    {.B = 2, .Cin = 3, .Cout = 5, .T = 17, .K = 3, .stride = 1, .dilation = 1},
    {.B = 1, .Cin = 4, .Cout = 3, .T = 23, .K = 7, .stride = 1, .dilation = 3},  // SEANet's dilated residual convs
    {.B = 2, .Cin = 2, .Cout = 6, .T = 19, .K = 4, .stride = 2, .dilation = 1},  // a downsampling conv, K = 2·stride
    {.B = 1, .Cin = 3, .Cout = 2, .T = 21, .K = 8, .stride = 4, .dilation = 1},
    {.B = 2, .Cin = 5, .Cout = 3, .T = 9, .K = 1, .stride = 1, .dilation = 1},   // pointwise (no im2col)
    {.B = 1, .Cin = 1, .Cout = 1, .T = 5, .K = 5, .stride = 3, .dilation = 1},   // one output step
};

TEST(Conv1d, ForwardAndBackwardMatchTheDefinition) {
  for (const Conv1dShape& s : kShapes) {
    for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
      Context ctx;
      ctx.kernels = tier;
      const std::string what = "K" + std::to_string(s.K) + " stride " + std::to_string(s.stride) + " dil " +
                               std::to_string(s.dilation) + (tier == KernelTier::Reference ? " ref" : "");
      const int64_t To = s.conv_out();
      auto x = randn(s.B * s.Cin * s.T, 1), w = randn(s.Cout * s.Cin * s.K, 2, 0.5f), b = randn(s.Cout, 3);
      auto wy = randn(s.B * s.Cout * To, 4);  // the loss Σ y ⊙ wy, so dy = wy
      std::vector<float> y(static_cast<size_t>(s.B * s.Cout * To), NAN);
      conv1d_forward(ctx, y.data(), x.data(), w.data(), b.data(), s);
      const double term = std::max(test::max_abs(w) * test::max_abs(x), test::max_abs(b));
      expect_sum_near(y, def_conv1d(to_double(x), to_double(w), to_double(b), s), double(s.Cin * s.K) + 1, term,
                      what.c_str());
      std::vector<float> dx(x.size(), 0.0f), dw(w.size(), 0.0f), db(b.size(), 0.0f);
      conv1d_backward(ctx, dx.data(), dw.data(), db.data(), wy.data(), x.data(), w.data(), s);
      const Vec X = to_double(x), W = to_double(w), Bv = to_double(b), WY = to_double(wy);
      expect_grad_near(dx, numeric_grad([&](const Vec& v) { return dot(def_conv1d(v, W, Bv, s), WY); }, X), "dx");
      expect_grad_near(dw, numeric_grad([&](const Vec& v) { return dot(def_conv1d(X, v, Bv, s), WY); }, W), "dw");
      expect_grad_near(db, numeric_grad([&](const Vec& v) { return dot(def_conv1d(X, W, v, s), WY); }, Bv), "db");
    }
  }
}

TEST(ConvTranspose1d, ForwardAndBackwardMatchTheDefinition) {
  for (const Conv1dShape& s : kShapes) {
    for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
      Context ctx;
      ctx.kernels = tier;
      const int64_t To = s.transpose_out();
      auto x = randn(s.B * s.Cin * s.T, 5), w = randn(s.Cin * s.Cout * s.K, 6, 0.5f), b = randn(s.Cout, 7);
      auto wy = randn(s.B * s.Cout * To, 8);
      std::vector<float> y(static_cast<size_t>(s.B * s.Cout * To), NAN);
      conv_transpose1d_forward(ctx, y.data(), x.data(), w.data(), b.data(), s);
      const double term = std::max(test::max_abs(w) * test::max_abs(x), test::max_abs(b));
      expect_sum_near(y, def_conv_transpose1d(to_double(x), to_double(w), to_double(b), s),
                      double(s.Cin * s.K) + 1, term, "transpose forward");
      std::vector<float> dx(x.size(), 0.0f), dw(w.size(), 0.0f), db(b.size(), 0.0f);
      conv_transpose1d_backward(ctx, dx.data(), dw.data(), db.data(), wy.data(), x.data(), w.data(), s);
      const Vec X = to_double(x), W = to_double(w), Bv = to_double(b), WY = to_double(wy);
      auto f = [&](const Vec& xv, const Vec& wv, const Vec& bv) { return dot(def_conv_transpose1d(xv, wv, bv, s), WY); };
      expect_grad_near(dx, numeric_grad([&](const Vec& v) { return f(v, W, Bv); }, X), "dx");
      expect_grad_near(dw, numeric_grad([&](const Vec& v) { return f(X, v, Bv); }, W), "dw");
      expect_grad_near(db, numeric_grad([&](const Vec& v) { return f(X, W, v); }, Bv), "db");
    }
  }
}

TEST(Conv1d, LongSignalsRunInBlocksOfStepsAndMatchTheReference) {
  // Long enough for several blocks of output (or, transposed, input) steps and a partial last one.
  // Two threads and enough channels that im2col, col2im and the ELU take their parallel paths.
  Context fast, ref;
  fast.threads = 2;
  ref.kernels = KernelTier::Reference;
  for (const Conv1dShape& s : {Conv1dShape{.B = 2, .Cin = 6, .Cout = 3, .T = 4500, .K = 4, .stride = 2, .dilation = 1},
                               Conv1dShape{.B = 1, .Cin = 8, .Cout = 2, .T = 6000, .K = 3, .stride = 1, .dilation = 2}}) {
    const auto x = randn(s.B * s.Cin * s.T, 41), w = randn(s.Cout * s.Cin * s.K, 42), b = randn(s.Cout, 43);
    for (bool transposed : {false, true}) {
      const int64_t To = transposed ? s.transpose_out() : s.conv_out();
      std::vector<float> y(static_cast<size_t>(s.B * s.Cout * To), NAN), yr = y;
      if (transposed) {
        conv_transpose1d_forward(fast, y.data(), x.data(), w.data(), b.data(), s);
        conv_transpose1d_forward(ref, yr.data(), x.data(), w.data(), b.data(), s);
      } else {
        conv1d_forward(fast, y.data(), x.data(), w.data(), b.data(), s);
        conv1d_forward(ref, yr.data(), x.data(), w.data(), b.data(), s);
      }
      const double term = std::max(test::max_abs(w) * test::max_abs(x), test::max_abs(b));
      std::vector<double> yd(yr.begin(), yr.end());
      expect_sum_near(y, yd, double(s.Cin * s.K) + 1, term, transposed ? "transposed" : "conv");
    }
  }
  // ELU and reflect padding over the threads: the same values as one thread (element-wise, so the same bits).
  const auto x = randn(200007, 44, 2.0f);  // odd: one range ends in a scalar tail
  std::vector<float> y1(x.size()), y2(x.size());
  Context one;
  elu_forward(one, y1.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
  elu_forward(fast, y2.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
  EXPECT_EQ(y1, y2);
  const auto dy = randn(static_cast<int64_t>(x.size()), 45);
  std::vector<float> d1(x.size()), d2(x.size());
  elu_backward(one, d1.data(), dy.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
  elu_backward(fast, d2.data(), dy.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
  EXPECT_EQ(d1, d2);
  std::vector<float> p1(100 * 2006), p2(p1.size());  // 100 rows of 2000 (+3 +3)
  pad1d_forward(one, p1.data(), x.data(), 100, 2000, 3, 3, PadMode::Reflect);
  pad1d_forward(fast, p2.data(), x.data(), 100, 2000, 3, 3, PadMode::Reflect);
  EXPECT_EQ(p1, p2);
}

TEST(Conv1d, BackwardAccumulatesAndSkipsNullGradients) {
  Context ctx;
  const Conv1dShape s{.B = 2, .Cin = 3, .Cout = 4, .T = 11, .K = 3, .stride = 2, .dilation = 1};
  auto x = randn(s.B * s.Cin * s.T, 9), w = randn(s.Cout * s.Cin * s.K, 10), dy = randn(s.B * s.Cout * s.conv_out(), 11);
  std::vector<float> dx1(x.size(), 0.0f), dw1(w.size(), 0.0f), db1(4, 0.0f);
  conv1d_backward(ctx, dx1.data(), dw1.data(), db1.data(), dy.data(), x.data(), w.data(), s);
  std::vector<float> dx2(x.size(), 1.0f), dw2(w.size(), 2.0f), db2(4, 3.0f);
  conv1d_backward(ctx, dx2.data(), dw2.data(), db2.data(), dy.data(), x.data(), w.data(), s);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_FLOAT_EQ(dx2[i], dx1[i] + 1.0f);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_FLOAT_EQ(dw2[i], dw1[i] + 2.0f);
  for (size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(db2[i], db1[i] + 3.0f);
  std::vector<float> only_dx(x.size(), 0.0f);
  conv1d_backward(ctx, only_dx.data(), nullptr, nullptr, dy.data(), x.data(), w.data(), s);
  EXPECT_EQ(only_dx, dx1);
  // The transposed backward accumulates into dx too.
  const auto tw = randn(s.Cin * s.Cout * s.K, 12), tdy = randn(s.B * s.Cout * s.transpose_out(), 13);
  std::vector<float> t1(x.size(), 0.0f), t2(x.size(), 1.0f);
  conv_transpose1d_backward(ctx, t1.data(), nullptr, nullptr, tdy.data(), x.data(), tw.data(), s);
  conv_transpose1d_backward(ctx, t2.data(), nullptr, nullptr, tdy.data(), x.data(), tw.data(), s);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_FLOAT_EQ(t2[i], t1[i] + 1.0f);
}

TEST(Pad1d, ReflectAndZeroByHandAndTheirBackward) {
  for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
    Context ctx;
    ctx.kernels = tier;
    const std::vector<float> x = {1, 2, 3, 4, 10, 20, 30, 40};  // two rows of 4
    std::vector<float> y(2 * 9, NAN);
    pad1d_forward(ctx, y.data(), x.data(), 2, 4, 3, 2, PadMode::Reflect);
    EXPECT_EQ(y, (std::vector<float>{4, 3, 2, 1, 2, 3, 4, 3, 2, 40, 30, 20, 10, 20, 30, 40, 30, 20}));
    pad1d_forward(ctx, y.data(), x.data(), 2, 4, 3, 2, PadMode::Zero);
    EXPECT_EQ(y, (std::vector<float>{0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 10, 20, 30, 40, 0, 0}));
    // The backward adds each padded position's gradient to the sample it copied.
    std::vector<float> dy(9);
    for (int i = 0; i < 9; ++i) dy[static_cast<size_t>(i)] = static_cast<float>(1 << i);
    std::vector<float> dx(4, 0.5f);
    pad1d_backward(ctx, dx.data(), dy.data(), 1, 4, 3, 2, PadMode::Reflect);
    // positions: 0→x3, 1→x2, 2→x1, 3..6→x0..x3, 7→x2, 8→x1
    EXPECT_EQ(dx, (std::vector<float>{0.5f + 8, 0.5f + 4 + 16 + 256, 0.5f + 2 + 32 + 128, 0.5f + 1 + 64}));
    std::vector<float> dz(4, 0.0f);
    pad1d_backward(ctx, dz.data(), dy.data(), 1, 4, 3, 2, PadMode::Zero);
    EXPECT_EQ(dz, (std::vector<float>{8, 16, 32, 64}));
  }
}

TEST(Elu, ForwardAndBackwardMatchTheDefinition) {
  for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
    Context ctx;
    ctx.kernels = tier;
    std::vector<float> x = {-20.0f, -1.0f, -1e-4f, 0.0f, 1e-4f, 0.5f, 3.0f};
    for (int i = 0; i < 196; ++i) x.push_back(-90.0f + 0.49f * static_cast<float>(i));  // vector bodies and a tail
    std::vector<float> y(x.size()), dx(x.size());
    elu_forward(ctx, y.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = x[i] > 0 ? x[i] : std::expm1(static_cast<double>(x[i]));
      EXPECT_NEAR(y[i], want, 2e-7 * std::max(1.0, std::abs(want))) << x[i];
    }
    const auto dy = randn(static_cast<int64_t>(x.size()), 14);
    elu_backward(ctx, dx.data(), dy.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
    // Away from the kink at 0 the gradient is the derivative; at 0 it is alpha·exp(0) = 1 from the left branch.
    for (size_t i = 0; i < x.size(); ++i) {
      const double d = x[i] > 0 ? 1.0 : std::exp(static_cast<double>(x[i]));
      EXPECT_NEAR(dx[i], dy[i] * d, 4e-7 * std::abs(dy[i])) << x[i];
    }
  }
}

// nn.LSTM (batch_first, one layer, zero initial state) from its equations, in double.
Vec def_lstm(const Vec& x, const Vec& wih, const Vec& whh, const Vec& bih, const Vec& bhh, int64_t B, int64_t T,
             int64_t I, int64_t H) {
  Vec y(static_cast<size_t>(B * T * H));
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  for (int64_t b = 0; b < B; ++b) {
    Vec h(static_cast<size_t>(H), 0.0), cs(static_cast<size_t>(H), 0.0), pre(static_cast<size_t>(4 * H));
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t q = 0; q < 4 * H; ++q) {
        double a = bih[q] + bhh[q];
        for (int64_t k = 0; k < I; ++k) a += wih[q * I + k] * x[(b * T + t) * I + k];
        for (int64_t k = 0; k < H; ++k) a += whh[q * H + k] * h[k];
        pre[q] = a;
      }
      for (int64_t j = 0; j < H; ++j) {
        cs[j] = sig(pre[H + j]) * cs[j] + sig(pre[j]) * std::tanh(pre[2 * H + j]);
        h[j] = sig(pre[3 * H + j]) * std::tanh(cs[j]);
        y[(b * T + t) * H + j] = h[j];
      }
    }
  }
  return y;
}

TEST(Lstm, ForwardAndBackwardMatchTheDefinition) {
  struct Shape {
    int64_t B, T, I, H;
  };
  for (const Shape& z : {Shape{2, 5, 3, 4}, Shape{1, 1, 2, 3}, Shape{3, 7, 5, 2}}) {
    for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
      Context ctx;
      ctx.kernels = tier;
      const int64_t B = z.B, T = z.T, I = z.I, H = z.H, G = 4 * H;
      const auto x = randn(B * T * I, 21), wih = randn(G * I, 22, 0.5f), whh = randn(G * H, 23, 0.5f);
      const auto bih = randn(G, 24, 0.3f), bhh = randn(G, 25, 0.3f), wy = randn(B * T * H, 26);
      std::vector<float> y(static_cast<size_t>(B * T * H), NAN), gates(static_cast<size_t>(B * T * G), NAN),
          c(static_cast<size_t>(B * T * H), NAN);
      lstm_forward(ctx, y.data(), gates.data(), c.data(), x.data(), wih.data(), whh.data(), bih.data(), bhh.data(), B,
                   T, I, H);
      const Vec X = to_double(x), WIH = to_double(wih), WHH = to_double(whh), BIH = to_double(bih),
                BHH = to_double(bhh), WY = to_double(wy);
      const Vec yd = def_lstm(X, WIH, WHH, BIH, BHH, B, T, I, H);
      // A pre-activation sums I + H + 2 terms (|h| ≤ 1); σ and tanh are 1-Lipschitz, and an error carried through
      // the cell state compounds over at most T steps with factors ≤ 1 + Σ|w_hh| row terms: bound it by T times
      // the one-step bound with a factor 8 for the activations' own rounding.
      const double terms = test::max_abs(wih) * test::max_abs(x) * I + test::max_abs(whh) * H + 2 * 0.3 * 4;
      const double tol = 8.0 * (I + H + 2) * T * 1.1920929e-7 * terms;
      for (size_t k = 0; k < y.size(); ++k) ASSERT_NEAR(y[k], yd[k], tol) << "y " << k;
      std::vector<float> dx(x.size(), 0.0f), dwih(wih.size(), 0.0f), dwhh(whh.size(), 0.0f), db(static_cast<size_t>(G), 0.0f);
      lstm_backward(ctx, dx.data(), dwih.data(), dwhh.data(), db.data(), wy.data(), x.data(), y.data(), gates.data(),
                    c.data(), wih.data(), whh.data(), B, T, I, H);
      auto L = [&](const Vec& xv, const Vec& a, const Vec& h, const Vec& bv) {
        return dot(def_lstm(xv, a, h, bv, BHH, B, T, I, H), WY);
      };
      expect_grad_near(dx, numeric_grad([&](const Vec& v) { return L(v, WIH, WHH, BIH); }, X), "dx");
      expect_grad_near(dwih, numeric_grad([&](const Vec& v) { return L(X, v, WHH, BIH); }, WIH), "dw_ih");
      expect_grad_near(dwhh, numeric_grad([&](const Vec& v) { return L(X, WIH, v, BIH); }, WHH), "dw_hh");
      expect_grad_near(db, numeric_grad([&](const Vec& v) { return L(X, WIH, WHH, v); }, BIH), "db");
    }
  }
}

Vec def_weight_norm(const Vec& g, const Vec& v, int64_t O, int64_t n) {
  Vec w(v.size());
  for (int64_t o = 0; o < O; ++o) {
    double ss = 0;
    for (int64_t k = 0; k < n; ++k) ss += v[o * n + k] * v[o * n + k];
    for (int64_t k = 0; k < n; ++k) w[o * n + k] = g[o] * v[o * n + k] / std::sqrt(ss);
  }
  return w;
}

TEST(WeightNorm, ForwardAndBackwardMatchTheDefinition) {
  for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
    Context ctx;
    ctx.kernels = tier;
    const int64_t O = 5, n = 21;  // e.g. Conv1d (Cout 5, Cin 3, K 7)
    const auto g = randn(O, 31), v = randn(O * n, 32), wy = randn(O * n, 33);
    std::vector<float> w(v.size(), NAN);
    weight_norm_forward(ctx, w.data(), g.data(), v.data(), O, n);
    const Vec G = to_double(g), V = to_double(v), WY = to_double(wy);
    const Vec wd = def_weight_norm(G, V, O, n);
    for (size_t k = 0; k < w.size(); ++k) ASSERT_NEAR(w[k], wd[k], 4 * 1.1920929e-7 * std::abs(wd[k]) + 1e-12) << k;
    std::vector<float> dg(static_cast<size_t>(O), 0.0f), dv(v.size(), 0.0f);
    weight_norm_backward(ctx, dg.data(), dv.data(), wy.data(), g.data(), v.data(), O, n);
    expect_grad_near(dg, numeric_grad([&](const Vec& x) { return dot(def_weight_norm(x, V, O, n), WY); }, G), "dg");
    expect_grad_near(dv, numeric_grad([&](const Vec& x) { return dot(def_weight_norm(G, x, O, n), WY); }, V), "dv");
  }
  Context ctx;
  const std::vector<float> zero(6, 0.0f), one = {1.0f, 1.0f};
  std::vector<float> w(6);
  test::expect_error([&] { weight_norm_forward(ctx, w.data(), one.data(), zero.data(), 2, 3); },
                     {"weight_norm: row 0 of v: found norm 0, expected > 0"});
}

TEST(Conv1d, BadShapesAreErrors) {
  Context ctx;
  float buf[64] = {};
  const Conv1dShape too_short{.B = 1, .Cin = 1, .Cout = 1, .T = 6, .K = 4, .stride = 1, .dilation = 2};
  test::expect_error([&] { conv1d_forward(ctx, buf, buf, buf, nullptr, too_short); },
                     {"conv1d: input length: found T=6", "dilation*(K-1)+1 = 7"});
  test::expect_error([&] { conv1d_forward(ctx, buf, buf, buf, nullptr, {.B = 1, .Cin = 1, .Cout = 1, .T = 4, .K = 1,
                                                                          .stride = 0, .dilation = 1}); },
                     {"conv1d: shape", "stride=0", "expected every one >= 1"});
  test::expect_error([&] { pad1d_forward(ctx, buf, buf, 1, 4, 4, 0, PadMode::Reflect); },
                     {"pad1d: reflect padding: found left=4 right=0 for T=4", "expected both < T"});
}

}  // namespace
}  // namespace tritter
