// Every kernel op on every backend against its reference in kernels/ref (in the spirit of ggml's
// test-backend-ops). One table, kOps: per op a name, a few shapes (odd sizes from kSizes, so every vector tail and
// tile edge is hit) and a case function that builds seeded random inputs for a shape, runs the op on the given
// Context (ctx.kernels = the backend's tier) into NaN-poisoned outputs, runs the reference and compares with the
// op's tolerance:
//   integer paths (quantizers, ternary products, int8 head, KV codecs, embedding, adds): bit for bit;
//   float sums of K terms: c·K·eps·max|a|·max|b| (the worst-case forward error of a K-term sum, γ_K ≈ K·eps, times
//   a bound on each term), with the term bound written out per op; element-wise float formulas: a few eps of the
//   largest output.
// On the ref backend every comparison is bit for bit: each op must dispatch to its reference there (what
// `--kernels ref` relies on). On failure a case reports the op, backend, shape and the worst element (index,
// actual, expected, tolerance).
//
// Backends: kBackends lists every tier; the ones this CPU lacks (ternary_kernel_tier throws) are skipped. A future
// CUDA backend adds one entry to kBackends (its KernelTier and a supported() probe) and every op here runs on it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/head.h"
#include "kernels/kv_quant.h"
#include "kernels/lora.h"
#include "kernels/minhash.h"
#include "kernels/nn.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"
#include "kernels/ternary_matmul.h"
#include "kernels/test_util_kernels.h"

namespace tritter {
namespace {

constexpr double kEps = 1.1920929e-7;  // float epsilon 2^−23

// ---------------------------------------------------------------- backends
struct Backend {
  const char* name;
  KernelTier tier;
};
// Every tier; a CUDA backend is one more line here.
const Backend kBackends[] = {{"ref", KernelTier::Reference},
                             {"scalar", KernelTier::Scalar},
                             {"avx2", KernelTier::Avx2},
                             {"avx512-vnni", KernelTier::Avx512Vnni},
                             {"auto", KernelTier::Auto}};

bool supported(const Backend& b) {
  Context ctx;
  ctx.kernels = b.tier;
  try {
    ternary_kernel_tier(ctx);
    return true;
  } catch (...) {
    return false;
  }
}

// ---------------------------------------------------------------- comparison
// Collects every failed comparison of one case with its worst element.
// strict (the ref backend, which must run the very references): every comparison is bit for bit.
class Check {
 public:
  explicit Check(bool strict = false) : strict_(strict) {}
  template <typename T>
  void exact(const char* what, const std::vector<T>& actual, const std::vector<T>& expected) {
    for (size_t i = 0; i < expected.size(); ++i) {
      const bool same = std::is_floating_point_v<T> ? std::memcmp(&actual[i], &expected[i], sizeof(T)) == 0
                                                    : actual[i] == expected[i];
      if (!same) {
        fail(what, i, static_cast<double>(actual[i]), static_cast<double>(expected[i]), 0.0, "not bit-exact");
        return;
      }
    }
  }
  // |actual − expected| ≤ tol everywhere (NaN fails: an output left poisoned).
  void close(const char* what, const float* actual, const float* expected, size_t n, double tol) {
    if (strict_) return exact(what, std::vector<float>(actual, actual + n), std::vector<float>(expected, expected + n));
    size_t worst = 0;
    double err = -1;
    for (size_t i = 0; i < n; ++i) {
      const double e = std::isnan(actual[i]) ? std::numeric_limits<double>::infinity()
                                             : std::fabs(static_cast<double>(actual[i]) - expected[i]);
      if (e > err) err = e, worst = i;
    }
    if (n > 0 && !(err <= tol)) fail(what, worst, actual[worst], expected[worst], tol, "outside the tolerance");
  }
  void close(const char* what, const std::vector<float>& a, const std::vector<float>& e, double tol) {
    close(what, a.data(), e.data(), e.size(), tol);
  }
  void close_scalar(const char* what, double actual, double expected, double tol) {
    if (strict_) tol = 0;
    if (!(std::fabs(actual - expected) <= tol)) fail(what, 0, actual, expected, tol, "outside the tolerance");
  }
  // |actual − expected| ≤ 1 (int8 levels where the float row before the quantizer may differ at a rounding tie).
  void within_one(const char* what, const std::vector<int8_t>& a, const std::vector<int8_t>& e) {
    if (strict_) return exact(what, a, e);
    for (size_t i = 0; i < e.size(); ++i) {
      if (std::abs(a[i] - e[i]) > 1) return fail(what, i, a[i], e[i], 1, "levels differ by more than one");
    }
  }
  const std::string& failures() const { return msg_; }

 private:
  void fail(const char* what, size_t i, double actual, double expected, double tol, const char* why) {
    std::ostringstream o;
    o.precision(9);
    o << "  " << what << ": " << why << " at index " << i << ": actual " << actual << ", expected " << expected
      << " (tolerance " << tol << ")\n";
    msg_ += o.str();
  }
  bool strict_;
  std::string msg_;
};

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}
std::vector<float> randn(Rng& rng, int64_t n, float scale = 1.0f) { return test::random_normal(rng, n, scale); }
std::vector<float> nan_vec(int64_t n) { return std::vector<float>(static_cast<size_t>(n), std::nanf("")); }
// The float-sum bound: c·K·eps·max|a|·max|b| with c = 4.
double sum_tol(int64_t K, double ma, double mb) { return 4.0 * static_cast<double>(K) * kEps * ma * mb; }

// ---------------------------------------------------------------- the op table
// Dims: up to four sizes whose meaning each op states (N rows × n columns, M×N×K, B/T/heads/d, ...).
struct Dims {
  int64_t a = 1, b = 1, c = 1, d = 1;
};
using CaseFn = std::function<void(const Context& ctx, const Dims& s, Rng& rng, Check& chk)>;
struct OpCase {
  const char* name;
  std::vector<Dims> shapes;
  CaseFn run;
};

// Sizes are drawn from 1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65, 127, 129.
std::vector<OpCase> make_ops() {
  std::vector<OpCase> ops;
  const std::vector<Dims> rows = {{1, 1}, {3, 7}, {2, 17}, {5, 33}, {2, 129}};  // (N, n)

  // ---- quantizers and the ternary products (integer: exact)
  ops.push_back({"quantize_activations", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto x = randn(rng, s.a * s.b, 3.0f);
    std::vector<int8_t> q(x.size(), 99), qr(x.size());
    auto sc = nan_vec(s.a), scr = nan_vec(s.a);
    quantize_activations(ctx, q.data(), sc.data(), x.data(), s.a, s.b);
    ref::quantize_activations(qr.data(), scr.data(), x.data(), s.a, s.b);
    chk.exact("xq", q, qr);
    chk.exact("scale", sc, scr);
  }});
  const std::vector<Dims> mats = {{1, 1, 1}, {1, 17, 33}, {3, 31, 65}, {8, 16, 16}, {5, 33, 129}};  // (N, O, I)
  ops.push_back({"ternary_matmul_i32", mats, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto w = test::make_packed(rng, s.b, s.c);
    const auto xq = test::random_int8(rng, s.a * s.c, -127, 127);
    std::vector<int32_t> acc(s.a * s.b, -1), accr(s.a * s.b);
    ternary_matmul_i32(ctx, acc.data(), xq.data(), w.view(), s.a);
    ref::ternary_matmul_i32(accr.data(), xq.data(), w.view(), s.a);
    chk.exact("acc", acc, accr);
  }});
  ops.push_back({"ternary_matmul", mats, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto w = test::make_packed(rng, s.b, s.c);
    const auto xq = test::random_int8(rng, s.a * s.c, -127, 127);
    std::vector<float> xs(s.a);
    for (auto& v : xs) v = 0.5f + rng.uniform();
    auto y = nan_vec(s.a * s.b), yr = nan_vec(s.a * s.b);
    ternary_matmul(ctx, y.data(), xq.data(), xs.data(), w.view(1.7f), s.a);
    ref::ternary_matmul(yr.data(), xq.data(), xs.data(), w.view(1.7f), s.a);
    chk.exact("y", y, yr);
  }});
  ops.push_back({"ternary_matmul_t", mats, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto w = test::make_packed(rng, s.b, s.c);
    const auto dy = randn(rng, s.a * s.b);
    auto dx = nan_vec(s.a * s.c), dxr = nan_vec(s.a * s.c);
    ternary_matmul_t(ctx, dx.data(), dy.data(), w.view(1.7f), s.a);
    ref::ternary_matmul_t(dxr.data(), dy.data(), w.view(1.7f), s.a);
    chk.close("dx", dx, dxr, sum_tol(s.b, max_abs(dy), 1 / 1.7) + kEps * max_abs(dxr));  // K = O terms dy·w/σ
  }});

  // ---- Highway float ops (ops.h)
  ops.push_back({"rmsnorm", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto x = randn(rng, s.a * s.b), g = randn(rng, s.b);
    auto y = nan_vec(x.size()), yr = nan_vec(x.size());
    rmsnorm(ctx, y.data(), x.data(), g.data(), s.a, s.b, 1e-5f);
    ref::rmsnorm(yr.data(), x.data(), g.data(), s.a, s.b, 1e-5f);
    // r from a sum of n squares (relative error ≲ n·eps), then two products.
    chk.close("y", y, yr, (s.b + 4) * kEps * max_abs(yr));
  }});
  ops.push_back({"rmsnorm_quantize", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto x = randn(rng, s.a * s.b), g = randn(rng, s.b);
    std::vector<int8_t> q(x.size(), 99), qr(x.size());
    auto sc = nan_vec(s.a), scr = nan_vec(s.a);
    rmsnorm_quantize(ctx, q.data(), sc.data(), x.data(), g.data(), s.a, s.b, 1e-5f);
    ref::rmsnorm_quantize(qr.data(), scr.data(), x.data(), g.data(), s.a, s.b, 1e-5f);
    chk.within_one("xq", q, qr);  // the float row differs by the rmsnorm bound: a level may move at a tie
    chk.close("scale", sc, scr, (s.b + 4) * kEps * max_abs(scr));
  }});
  const std::vector<Dims> rope_dims = {{1, 1, 1, 2}, {2, 3, 2, 16}, {1, 7, 3, 34}, {2, 5, 1, 130}};  // (B, T, h, d)
  ops.push_back({"rope_apply", rope_dims, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const int64_t T = s.b, d = s.d;
    std::vector<float> c(T * d / 2), sn(T * d / 2);
    rope_tables(c.data(), sn.data(), T, d, 10000.0, 3);
    auto x = randn(rng, T * s.c * d), xr = x;
    rope_apply(ctx, x.data(), c.data(), sn.data(), T, s.c, d);
    ref::rope_apply(xr.data(), c.data(), sn.data(), T, s.c, d);
    chk.close("x", x, xr, 4 * kEps * max_abs(xr) + 4 * kEps * max_abs(x));
  }});
  const std::vector<Dims> flat = {{1}, {7}, {17}, {65}, {129}, {1000}};
  ops.push_back({"relu2", flat, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto x = randn(rng, s.a);
    auto y = nan_vec(s.a), yr = nan_vec(s.a);
    relu2(ctx, y.data(), x.data(), s.a);
    ref::relu2(yr.data(), x.data(), s.a);
    chk.exact("y", y, yr);  // one product, one rounding on every tier
  }});
  ops.push_back({"relu2_glu", flat, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto g = randn(rng, s.a), u = randn(rng, s.a);
    auto y = nan_vec(s.a), yr = nan_vec(s.a);
    relu2_glu(ctx, y.data(), g.data(), u.data(), s.a);
    ref::relu2_glu(yr.data(), g.data(), u.data(), s.a);
    chk.close("y", y, yr, 2 * kEps * max_abs(yr));
  }});
  ops.push_back({"softmax_rows", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    auto x = randn(rng, s.a * s.b, 4.0f), xr = x;
    softmax_rows(ctx, x.data(), s.a, s.b);
    ref::softmax_rows(xr.data(), s.a, s.b);
    chk.close("p", x, xr, (s.b + 8) * 4 * kEps);  // probabilities ≤ 1; exp and the n-term sum
  }});

  // ---- dense products (gemm.h, lora.h)
  const std::vector<Dims> gemms = {{1, 1, 1}, {3, 5, 7}, {17, 15, 33}, {2, 65, 31}, {8, 16, 129}};  // (M, N, K)
  ops.push_back({"gemm_f32", gemms, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    for (int mode = 0; mode < 4; ++mode) {
      const bool ta = mode & 1, tb = mode & 2;
      const float beta = mode == 3 ? 0.5f : 0.0f;
      const auto A = randn(rng, s.a * s.c), B = randn(rng, s.c * s.b), C0 = randn(rng, s.a * s.b);
      auto C = beta == 0 ? nan_vec(s.a * s.b) : C0, Cr = C;
      gemm_f32(ctx, C.data(), A.data(), B.data(), s.a, s.b, s.c, ta, tb, 1.5f, beta);
      ref::gemm_f32(Cr.data(), A.data(), B.data(), s.a, s.b, s.c, ta, tb, 1.5f, beta, ta ? s.a : s.c,
                    tb ? s.c : s.b, s.b);
      chk.close("C", C, Cr, 1.5 * sum_tol(s.c + 1, max_abs(A), max_abs(B)) + 2 * kEps * max_abs(C0));
    }
  }});
  const std::vector<Dims> loras = {{1, 1, 1, 1}, {3, 2, 17, 7}, {5, 8, 33, 65}, {2, 16, 129, 31}};  // (T, r, I, O)
  ops.push_back({"lora_delta_forward", loras, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto x = randn(rng, s.a * s.c), A = randn(rng, s.b * s.c, 0.3f), Bt = randn(rng, s.b * s.d, 0.3f);
    auto y = randn(rng, s.a * s.d), yr = y;
    const double y0 = max_abs(y);
    lora_delta_forward(ctx, y.data(), x.data(), A.data(), Bt.data(), s.a, s.b, s.c, s.d, 0.7f);
    ref::lora_delta_forward(yr.data(), x.data(), A.data(), Bt.data(), s.a, s.b, s.c, s.d, 0.7f);
    // h_j: I terms |A||x|; y: r terms |h||Bt| with |h| ≤ I·max|A|·max|x|.
    const double hmax = s.c * max_abs(A) * max_abs(x);
    chk.close("y", y, yr, 0.7 * (sum_tol(s.c, max_abs(A), max_abs(x)) * s.b * max_abs(Bt) +
                                 sum_tol(s.b + 1, hmax, max_abs(Bt))) + 2 * kEps * y0);
  }});

  // ---- nn.h: the model's forward/backward ops
  ops.push_back({"rmsnorm_forward", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto x = randn(rng, s.a * s.b), g = randn(rng, s.b);
    auto y = nan_vec(x.size()), yr = nan_vec(x.size()), r = nan_vec(s.a), rr = nan_vec(s.a);
    rmsnorm_forward(ctx, y.data(), r.data(), x.data(), g.data(), s.a, s.b, 1e-5f);
    ref::rmsnorm_forward(yr.data(), rr.data(), x.data(), g.data(), s.a, s.b, 1e-5f);
    chk.close("rstd", r, rr, (s.b + 4) * kEps * max_abs(rr));
    chk.close("y", y, yr, (s.b + 4) * kEps * max_abs(yr));
  }});
  ops.push_back({"rmsnorm_backward", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const int64_t N = s.a, n = s.b;
    const auto x = randn(rng, N * n), g = randn(rng, n), dy = randn(rng, N * n);
    std::vector<float> yy(N * n), r(N);
    ref::rmsnorm_forward(yy.data(), r.data(), x.data(), g.data(), N, n, 1e-5f);
    auto dx = randn(rng, N * n), dg = randn(rng, n), dxr = dx, dgr = dg;  // both accumulate
    rmsnorm_backward(ctx, dx.data(), dg.data(), dy.data(), x.data(), r.data(), g.data(), N, n);
    ref::rmsnorm_backward(dxr.data(), dgr.data(), dy.data(), x.data(), r.data(), g.data(), N, n);
    // n̂ = x·r is O(max|x r|); dx = r(dn − n̂·mean(dn n̂)): an n-term sum of |dy g n̂| times r and n̂.
    const double xh = max_abs(x) * max_abs(r), dn = max_abs(dy) * max_abs(g);
    chk.close("dx", dx, dxr, max_abs(r) * (4 * kEps * dn + sum_tol(n + 4, dn, xh) * xh) + 2 * kEps * max_abs(dxr));
    chk.close("dg", dg, dgr, sum_tol(N + 4, max_abs(dy), xh) + 2 * kEps * max_abs(dgr));
  }});
  for (bool quant : {true, false}) {
    ops.push_back({quant ? "bitinput_set+float (quant)" : "bitinput_set+float (fp)", rows,
                   [quant](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
      const int64_t N = s.a, I = s.b;
      const auto x = randn(rng, N * I, 2.0f);
      std::vector<int8_t> q(N * I, 99), qr(N * I, 98);
      auto sc = nan_vec(N), scr = nan_vec(N), f = nan_vec(N * I), fr = nan_vec(N * I);
      const BitInput in{q.data(), sc.data(), f.data()}, inr{qr.data(), scr.data(), fr.data()};
      bitinput_set(ctx, in, x.data(), N, I, quant);
      ref::bitinput_set(inr, x.data(), N, I, quant);
      if (quant) {
        chk.exact("xq", q, qr);
        chk.exact("scale", sc, scr);
      } else {
        chk.exact("x", f, fr);
      }
      auto t = nan_vec(N * I), tr = nan_vec(N * I);
      const float* xt = bitinput_float(in, t.data(), N, I, quant);
      const float* xtr = ref::bitinput_float(inr, tr.data(), N, I, quant);
      chk.exact("x~", std::vector<float>(xt, xt + N * I), std::vector<float>(xtr, xtr + N * I));
    }});
  }
  // BitLinear over a latent W: quant (integer forward exact; dx through the packed matrix or the cached W̃) and fp.
  for (int variant = 0; variant < 3; ++variant) {
    static const char* names[] = {"bitlinear (quant)", "bitlinear (quant, cached W~)", "bitlinear (fp)"};
    ops.push_back({names[variant], mats, [variant](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
      const int64_t N = s.a, O = s.b, I = s.c;
      const bool quant = variant < 2;
      const auto w = randn(rng, O * I, 0.05f), x = randn(rng, N * I), dy = randn(rng, N * O);
      std::vector<uint8_t> packed(ternary_matrix_bytes(O, I));
      std::vector<int8_t> scratch(O * I);
      std::vector<float> wt(O * I);
      BitWeight bw{w.data(), O, I, quant, packed.data(), 1.0f, variant == 1 ? wt.data() : nullptr};
      bitweight_prepare(bw, scratch.data());
      std::vector<int8_t> xq(N * I);
      std::vector<float> xs(N), xf(N * I);
      const BitInput in{xq.data(), xs.data(), xf.data()};
      ref::bitinput_set(in, x.data(), N, I, quant);
      auto y = nan_vec(N * O), yr = nan_vec(N * O);
      bitlinear_forward(ctx, y.data(), in, bw, N);
      ref::bitlinear_forward(yr.data(), in, bw, N);
      if (quant) chk.exact("y", y, yr);
      else chk.close("y", y, yr, sum_tol(I, max_abs(x), max_abs(w)));
      const double wmax = quant ? 1.0 / bw.sigma : max_abs(w);
      for (bool acc : {false, true}) {
        auto dx = acc ? randn(rng, N * I) : nan_vec(N * I), dxr = dx;
        const double dx0 = acc ? max_abs(dx) : 0.0;
        std::vector<float> sc(N * I);
        bitlinear_backward_dx(ctx, dx.data(), dy.data(), bw, N, acc, sc.data());
        ref::bitlinear_backward_dx(dxr.data(), dy.data(), bw, N, acc);
        chk.close(acc ? "dx (+=)" : "dx", dx, dxr, sum_tol(O + 1, max_abs(dy), wmax) + 2 * kEps * (dx0 + max_abs(dxr)));
      }
      auto dw = randn(rng, O * I), dwr = dw;
      const double dw0 = max_abs(dw);
      bitlinear_backward_dw(ctx, dw.data(), dy.data(), x.data(), N, O, I);
      ref::bitlinear_backward_dw(dwr.data(), dy.data(), x.data(), N, O, I);
      chk.close("dW", dw, dwr, sum_tol(N + 1, max_abs(dy), max_abs(x)) + 2 * kEps * dw0);
    }});
  }
  ops.push_back({"linear", mats, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const int64_t N = s.a, O = s.b, I = s.c;
    const auto w = randn(rng, O * I), x = randn(rng, N * I), dy = randn(rng, N * O);
    auto y = nan_vec(N * O), yr = nan_vec(N * O);
    linear_forward(ctx, y.data(), x.data(), w.data(), N, I, O);
    ref::linear_forward(yr.data(), x.data(), w.data(), N, I, O);
    chk.close("y", y, yr, sum_tol(I, max_abs(x), max_abs(w)));
    auto dx = randn(rng, N * I), dw = randn(rng, O * I), dxr = dx, dwr = dw;
    const double dx0 = max_abs(dx), dw0 = max_abs(dw);
    linear_backward(ctx, dx.data(), dw.data(), dy.data(), x.data(), w.data(), N, I, O, true);
    ref::linear_backward(dxr.data(), dwr.data(), dy.data(), x.data(), w.data(), N, I, O, true);
    chk.close("dx", dx, dxr, sum_tol(O + 1, max_abs(dy), max_abs(w)) + 2 * kEps * dx0);
    chk.close("dW", dw, dwr, sum_tol(N + 1, max_abs(dy), max_abs(x)) + 2 * kEps * dw0);
  }});
  ops.push_back({"add, add_into", flat, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto a = randn(rng, s.a), b = randn(rng, s.a);
    auto y = nan_vec(s.a), yr = nan_vec(s.a);
    add(ctx, y.data(), a.data(), b.data(), s.a);
    ref::add(yr.data(), a.data(), b.data(), s.a);
    chk.exact("add", y, yr);
    add_into(ctx, y.data(), a.data(), s.a);
    ref::add_into(yr.data(), a.data(), s.a);
    chk.exact("add_into", y, yr);
  }});
  ops.push_back({"rope_forward, rope_backward", rope_dims, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const int64_t B = s.a, T = s.b, h = s.c, d = s.d;
    std::vector<float> c(T * d / 2), sn(T * d / 2);
    rope_tables(c.data(), sn.data(), T, d, 10000.0, 0);
    auto x = randn(rng, B * T * h * d), xr = x;
    rope_forward(ctx, x.data(), c.data(), sn.data(), B, T, h, d);
    ref::rope_forward(xr.data(), c.data(), sn.data(), B, T, h, d);
    chk.close("forward", x, xr, 4 * kEps * max_abs(xr));  // u1·c − u2·s: two products and a difference
    auto dx = randn(rng, B * T * h * d), dxr = dx;
    rope_backward(ctx, dx.data(), c.data(), sn.data(), B, T, h, d);
    ref::rope_backward(dxr.data(), c.data(), sn.data(), B, T, h, d);
    chk.close("backward", dx, dxr, 4 * kEps * max_abs(dxr));
  }});
  ops.push_back({"relu2 forward/backward", flat, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto u = randn(rng, s.a), ds = randn(rng, s.a);
    auto y = nan_vec(s.a), yr = nan_vec(s.a), du = nan_vec(s.a), dur = nan_vec(s.a);
    relu2_forward(ctx, y.data(), u.data(), s.a);
    ref::relu2(yr.data(), u.data(), s.a);
    chk.exact("s", y, yr);
    relu2_backward(ctx, du.data(), ds.data(), u.data(), s.a);
    ref::relu2_backward(dur.data(), ds.data(), u.data(), s.a);
    chk.exact("du", du, dur);  // ds·2 is exact, then one rounding
  }});
  ops.push_back({"relu2_glu forward/backward", flat, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto g = randn(rng, s.a), u = randn(rng, s.a), ds = randn(rng, s.a);
    auto y = nan_vec(s.a), yr = nan_vec(s.a), dg = nan_vec(s.a), dgr = nan_vec(s.a), du = nan_vec(s.a),
         dur = nan_vec(s.a);
    relu2_glu_forward(ctx, y.data(), g.data(), u.data(), s.a);
    ref::relu2_glu(yr.data(), g.data(), u.data(), s.a);
    chk.close("s", y, yr, 2 * kEps * max_abs(yr));
    relu2_glu_backward(ctx, dg.data(), du.data(), ds.data(), g.data(), u.data(), s.a);
    ref::relu2_glu_backward(dgr.data(), dur.data(), ds.data(), g.data(), u.data(), s.a);
    chk.close("dgate", dg, dgr, 2 * kEps * max_abs(dgr));  // two roundings in float, one in the reference
    chk.close("dup", du, dur, 2 * kEps * max_abs(dur));
  }});
  const std::vector<Dims> emb = {{1, 1, 1}, {7, 5, 3}, {33, 17, 16}, {65, 129, 8}};  // (N, D, V)
  ops.push_back({"embedding forward/backward", emb, [](const Context&, const Dims& s, Rng& rng, Check& chk) {
    const int64_t N = s.a, D = s.b, V = s.c;
    const auto E = randn(rng, V * D), dx = randn(rng, N * D);
    std::vector<int32_t> ids(N);
    for (auto& id : ids) id = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(V)));  // repeats when N > V
    auto x = nan_vec(N * D), xr = nan_vec(N * D);
    embedding_forward(x.data(), E.data(), ids.data(), N, D, V);
    ref::embedding_forward(xr.data(), E.data(), ids.data(), N, D, V);
    chk.exact("x", x, xr);
    auto dE = randn(rng, V * D), dEr = dE;
    embedding_backward(dE.data(), dx.data(), ids.data(), N, D);
    ref::embedding_backward(dEr.data(), dx.data(), ids.data(), N, D);
    chk.exact("dE", dE, dEr);  // the same serial order of float additions
  }});
  const std::vector<Dims> ce = {{1, 1}, {3, 7}, {5, 33}, {17, 129}, {2, 1000}};  // (N, V)
  ops.push_back({"cross_entropy (+z-loss, ignored rows)", ce, [](const Context& ctx, const Dims& s, Rng& rng,
                                                                  Check& chk) {
    const int64_t N = s.a, V = s.b;
    const auto z = randn(rng, N * V, 3.0f);
    std::vector<int32_t> tg(N);
    for (auto& t : tg) t = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(V)));
    if (N > 1) tg[1] = -100;
    for (double zl : {0.0, 1e-2}) {
      auto dz = nan_vec(N * V), dzr = nan_vec(N * V);
      const double l = cross_entropy_forward_backward(ctx, dz.data(), z.data(), tg.data(), N, V, zl, 0.5f);
      const double lr = ref::cross_entropy_forward_backward(dzr.data(), z.data(), tg.data(), N, V, zl, 0.5f);
      // lse ≤ max|z| + log V; the float row subtracts m (relative eps) and exponentiates against a float lse.
      const double lse = max_abs(z) + std::log(static_cast<double>(V));
      chk.close_scalar("loss", l, lr, 8 * kEps * (lse + 1) * (1 + zl * lse));
      chk.close("dz", dz, dzr, 8 * kEps * (lse + 4) * max_abs(dzr) + 4 * kEps * 0.5);
    }
  }});
  ops.push_back({"adamw_update", flat, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto g = randn(rng, s.a);
    auto p = randn(rng, s.a), m = randn(rng, s.a, 0.1f), v = randn(rng, s.a, 0.1f);
    for (auto& x : v) x = x * x;
    auto pr = p, mr = m, vr = v;
    const AdamWStep st{0.999f, 0.9f, 0.95f, 1e-3f, 0.7f, 1e-8f};
    adamw_update(ctx, p.data(), g.data(), m.data(), v.data(), s.a, st);
    ref::adamw_update(pr.data(), g.data(), mr.data(), vr.data(), s.a, st);
    chk.close("m", m, mr, 4 * kEps * max_abs(mr));
    chk.close("v", v, vr, 4 * kEps * max_abs(vr));
    // the step is ≤ step_size·|m|/(√v/bc2): bounded by step_size·(1−b1)/√(1−b2)·bc2 ≈ 1e-3·0.32; 8 eps of |p| + that
    chk.close("p", p, pr, 8 * kEps * (max_abs(pr) + 1e-3 * 10));
  }});

  // ---- conv.h: the audio codec's 1-D ops. Dims (Cin, Cout, T, K·100 + stride·10 + dilation), B = 2.
  const std::vector<Dims> convs = {{1, 1, 1, 111}, {3, 5, 17, 311}, {2, 7, 33, 813}, {5, 3, 65, 713}, {16, 8, 31, 421}};
  auto conv_shape = [](const Dims& s) {
    return Conv1dShape{.B = 2, .Cin = s.a, .Cout = s.b, .T = s.c, .K = s.d / 100, .stride = s.d / 10 % 10,
                       .dilation = s.d % 10};
  };
  for (bool transposed : {false, true}) {
    ops.push_back({transposed ? "conv_transpose1d fwd+bwd" : "conv1d fwd+bwd", convs,
                   [transposed, conv_shape](const Context& ctx, const Dims& d, Rng& rng, Check& chk) {
      Conv1dShape s = conv_shape(d);
      if (!transposed) s.T += s.dilation * (s.K - 1);  // at least one output step
      const int64_t To = transposed ? s.transpose_out() : s.conv_out();
      const auto x = randn(rng, s.B * s.Cin * s.T), w = randn(rng, s.Cin * s.Cout * s.K, 0.5f), b = randn(rng, s.Cout);
      const auto dy = randn(rng, s.B * s.Cout * To);
      auto y = nan_vec(s.B * s.Cout * To), yr = y;
      auto dx = randn(rng, x.size()), dw = randn(rng, w.size()), db = randn(rng, b.size());  // all accumulate
      auto dxr = dx, dwr = dw, dbr = db;
      if (transposed) {
        conv_transpose1d_forward(ctx, y.data(), x.data(), w.data(), b.data(), s);
        ref::conv_transpose1d_forward(yr.data(), x.data(), w.data(), b.data(), s);
        conv_transpose1d_backward(ctx, dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), s);
        ref::conv_transpose1d_backward(dxr.data(), dwr.data(), dbr.data(), dy.data(), x.data(), w.data(), s);
      } else {
        conv1d_forward(ctx, y.data(), x.data(), w.data(), b.data(), s);
        ref::conv1d_forward(yr.data(), x.data(), w.data(), b.data(), s);
        conv1d_backward(ctx, dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), s);
        ref::conv1d_backward(dxr.data(), dwr.data(), dbr.data(), dy.data(), x.data(), w.data(), s);
      }
      // y and dx: sums of at most Cin·K (Cout·K) products plus the bias; dw: B·T' products of |dy||x|; db: B·T' terms.
      const int64_t taps = std::max(s.Cin, s.Cout) * s.K + 1;
      chk.close("y", y, yr, sum_tol(taps, max_abs(w), max_abs(x)) + 4 * kEps * max_abs(b));
      chk.close("dx", dx, dxr, sum_tol(taps, max_abs(w), max_abs(dy)) + 2 * kEps * max_abs(dxr));
      chk.close("dw", dw, dwr, sum_tol(s.B * std::max(To, s.T) + 1, max_abs(dy), max_abs(x)) + 2 * kEps * max_abs(dwr));
      chk.close("db", db, dbr, sum_tol(s.B * To + 1, max_abs(dy), 1.0) + 2 * kEps * max_abs(dbr));
    }});
  }
  ops.push_back({"pad1d reflect/zero fwd+bwd", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const int64_t R = s.a, T = s.b, left = (T - 1) / 2, right = T - 1 - left;
    for (PadMode mode : {PadMode::Reflect, PadMode::Zero}) {
      const auto x = randn(rng, R * T), dy = randn(rng, R * (left + T + right));
      auto y = nan_vec(R * (left + T + right)), yr = y;
      pad1d_forward(ctx, y.data(), x.data(), R, T, left, right, mode);
      ref::pad1d_forward(yr.data(), x.data(), R, T, left, right, mode);
      chk.exact("y", y, yr);
      auto dx = randn(rng, R * T), dxr = dx;
      pad1d_backward(ctx, dx.data(), dy.data(), R, T, left, right, mode);
      ref::pad1d_backward(dxr.data(), dy.data(), R, T, left, right, mode);
      chk.close("dx", dx, dxr, 4 * kEps * (max_abs(dx) + 3 * max_abs(dy)));  // at most 3 terms per sample
    }
  }});
  const std::vector<Dims> lstms = {{1, 1, 1, 1}, {2, 5, 3, 4}, {3, 17, 8, 16}, {1, 33, 16, 7}};  // (B, T, I, H)
  ops.push_back({"lstm fwd+bwd", lstms, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const int64_t B = s.a, T = s.b, I = s.c, H = s.d, G = 4 * H;
    const auto x = randn(rng, B * T * I), wih = randn(rng, G * I, 0.3f), whh = randn(rng, G * H, 0.3f);
    const auto bih = randn(rng, G, 0.3f), bhh = randn(rng, G, 0.3f), dy = randn(rng, B * T * H);
    auto y = nan_vec(B * T * H), yr = y, c = y, cr = y, gt = nan_vec(B * T * G), gtr = gt;
    lstm_forward(ctx, y.data(), gt.data(), c.data(), x.data(), wih.data(), whh.data(), bih.data(), bhh.data(), B, T, I, H);
    ref::lstm_forward(yr.data(), gtr.data(), cr.data(), x.data(), wih.data(), whh.data(), bih.data(), bhh.data(), B, T,
                      I, H);
    // One step's pre-activation sums I + H + 2 terms; errors carried by the cell state over T steps (each step's
    // factor f < 1 and the recurrent sum) bound all by T times that, ×8 for the activations' rounding.
    const double pre = I * max_abs(wih) * max_abs(x) + H * max_abs(whh) + 2 * 0.3 * 4;
    const double tol = 8.0 * (I + H + 2) * T * kEps * pre;
    chk.close("y", y, yr, tol);
    chk.close("c", c, cr, tol * T);
    auto dx = randn(rng, x.size()), dwih = randn(rng, wih.size()), dwhh = randn(rng, whh.size()), db = randn(rng, G);
    auto dxr = dx, dwihr = dwih, dwhhr = dwhh, dbr = db;
    lstm_backward(ctx, dx.data(), dwih.data(), dwhh.data(), db.data(), dy.data(), x.data(), yr.data(), gtr.data(),
                  cr.data(), wih.data(), whh.data(), B, T, I, H);
    ref::lstm_backward(dxr.data(), dwihr.data(), dwhhr.data(), dbr.data(), dy.data(), x.data(), yr.data(), gtr.data(),
                       cr.data(), wih.data(), whh.data(), B, T, I, H);
    // The gradients flow back through T steps of G-term sums: the same shape of bound, on |dy|-sized values, and the
    // weight gradients sum B·T of them.
    const double back = 8.0 * (G + H + 2) * T * kEps * max_abs(dy) * (1 + G * std::max(max_abs(whh), max_abs(wih)));
    chk.close("dx", dx, dxr, back * (1 + G * max_abs(wih)) + 2 * kEps * max_abs(dxr));
    chk.close("dw_ih", dwih, dwihr, back * B * T * max_abs(x) + 2 * kEps * max_abs(dwihr));
    chk.close("dw_hh", dwhh, dwhhr, back * B * T + 2 * kEps * max_abs(dwhhr));
    chk.close("db", db, dbr, back * B * T + 2 * kEps * max_abs(dbr));
  }});
  ops.push_back({"weight_norm fwd+bwd", rows, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto g = randn(rng, s.a), v = randn(rng, s.a * s.b), dw = randn(rng, s.a * s.b);
    auto w = nan_vec(s.a * s.b), wr = w;
    weight_norm_forward(ctx, w.data(), g.data(), v.data(), s.a, s.b);
    ref::weight_norm_forward(wr.data(), g.data(), v.data(), s.a, s.b);
    chk.close("w", w, wr, 4 * kEps * max_abs(wr));
    auto dg = randn(rng, s.a), dv = randn(rng, s.a * s.b), dgr = dg, dvr = dv;
    weight_norm_backward(ctx, dg.data(), dv.data(), dw.data(), g.data(), v.data(), s.a, s.b);
    ref::weight_norm_backward(dgr.data(), dvr.data(), dw.data(), g.data(), v.data(), s.a, s.b);
    chk.close("dg", dg, dgr, 8 * kEps * (max_abs(dgr) + s.b * max_abs(dw)));
    chk.close("dv", dv, dvr, 8 * kEps * (max_abs(dvr) + max_abs(g) * max_abs(dw) * 4));
  }});
  ops.push_back({"elu fwd+bwd", flat, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto x = randn(rng, s.a, 3.0f), dy = randn(rng, s.a);
    auto y = nan_vec(s.a), yr = y, dx = nan_vec(s.a), dxr = dx;
    elu_forward(ctx, y.data(), x.data(), s.a, 1.0f);
    ref::elu_forward(yr.data(), x.data(), s.a, 1.0f);
    elu_backward(ctx, dx.data(), dy.data(), x.data(), s.a, 1.0f);
    ref::elu_backward(dxr.data(), dy.data(), x.data(), s.a, 1.0f);
    chk.close("y", y, yr, 4 * kEps * max_abs(yr));
    chk.close("dx", dx, dxr, 4 * kEps * max_abs(dxr));
  }});

  // ---- attention
  struct AttnCase {
    int64_t B, T, H, K, d;
    AttnMask mask;
  };
  const std::vector<AttnMask> masks = {AttnMask::causal(), AttnMask::causal(3), AttnMask::bidirectional(),
                                       AttnMask::prefix_lm(5), AttnMask::prefix_lm(2, 1)};
  // (B, T, H·K packed as c = H, d = K | d<<8): keep Dims; decode below.
  const std::vector<Dims> attn = {{1, 1, 1, 1 | (2 << 8)}, {2, 7, 2, 1 | (16 << 8)}, {1, 17, 4, 2 | (5 << 8)},
                                  {1, 65, 2, 2 | (8 << 8)}, {1, 129, 1, 1 | (16 << 8)}};
  ops.push_back({"attention_forward/backward (every mask)", attn, [masks](const Context& ctx, const Dims& dm, Rng& rng,
                                                                          Check& chk) {
    for (const AttnMask& mask : masks) {
      AttnShape s{dm.a, dm.b, dm.c, dm.d & 0xff, dm.d >> 8, mask};
      const int64_t nq = s.B * s.T * s.H * s.d, nk = s.B * s.T * s.K * s.d;
      const auto q = randn(rng, nq), k = randn(rng, nk), v = randn(rng, nk), dout = randn(rng, nq);
      std::vector<float> scratch(attention_scratch_floats(s, ctx.threads));
      auto out = nan_vec(nq), outr = nan_vec(nq), lse = nan_vec(s.B * s.H * s.T), lser = lse;
      attention_forward(ctx, out.data(), lse.data(), q.data(), k.data(), v.data(), s, scratch.data());
      ref::attention_forward(outr.data(), lser.data(), q.data(), k.data(), v.data(), s);
      // Scores: d-term sums scaled by 1/√d; softmax over ≤ T keys; out: a convex combination of v rows.
      const double smax = max_abs(q) * max_abs(k) * std::sqrt(static_cast<double>(s.d));
      const double ds = sum_tol(s.d, max_abs(q), max_abs(k)) / std::sqrt(static_cast<double>(s.d));
      const std::string tag = std::string(" [") + attn_mask_name(mask) + "]";
      chk.close(("out" + tag).c_str(), out, outr, max_abs(v) * (4 * ds + 4 * (s.T + 4) * kEps));
      chk.close(("lse" + tag).c_str(), lse, lser, 2 * ds + 4 * (s.T + 4) * kEps + 2 * kEps * (smax + max_abs(lser)));
      auto dq = nan_vec(nq), dk = nan_vec(nk), dv = nan_vec(nk), dqr = dq, dkr = dk, dvr = dv;
      attention_backward(ctx, dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(),
                         outr.data(), lser.data(), s, scratch.data());
      ref::attention_backward(dqr.data(), dkr.data(), dvr.data(), dout.data(), q.data(), k.data(), v.data(),
                              outr.data(), lser.data(), s);
      // dS = P(dP − δ) with |dP|, |δ| ≤ d·max|dO|·max|v|; every gradient is a sum over ≤ G·T (query) or T (key)
      // terms of dS or P times q, k or dO rows: tolerance c·(T + d)·eps times the problem's scale M.
      const double M = std::max({max_abs(dqr), max_abs(dkr), max_abs(dvr),
                                 s.d * max_abs(dout) * max_abs(v) * std::max({max_abs(q), max_abs(k), 1.0})});
      const double tol = 8 * (s.T * (s.H / s.K) + s.d + ds / kEps) * kEps * M;
      chk.close(("dq" + tag).c_str(), dq, dqr, tol);
      chk.close(("dk" + tag).c_str(), dk, dkr, tol);
      chk.close(("dv" + tag).c_str(), dv, dvr, tol);
    }
  }});
  // Cached attention over an f32 row store read through KvRows: (n positions, T queries, H = c, K | d<<8).
  const std::vector<Dims> cached = {{1, 1, 1, 1 | (5 << 8)}, {17, 17, 2, 1 | (16 << 8)}, {65, 1, 4, 2 | (64 << 8)},
                                    {33, 7, 2, 2 | (7 << 8)}, {129, 3, 2, 1 | (128 << 8)}};
  ops.push_back({"attention_cached (causal, window)", cached, [](const Context& ctx, const Dims& dm, Rng& rng,
                                                                  Check& chk) {
    struct Store {
      std::vector<float> k, v;  // (n, K, d)
      int64_t K, d;
    };
    for (const AttnMask& mask : {AttnMask::causal(), AttnMask::causal(5)}) {
      const int64_t n = dm.a, T = dm.b, H = dm.c, K = dm.d & 0xff, d = dm.d >> 8, pos0 = n - T;
      Store st{randn(rng, n * K * d), randn(rng, n * K * d), K, d};
      KvRows rows;
      rows.store = &st;
      rows.fetch = [](const void* p, int, int head, int64_t p0, int64_t cnt, float* kb, float* vb, const float**,
                      const float**) {  // copies into kb, vb (the buffers the caller already points at)
        const Store& s = *static_cast<const Store*>(p);
        for (int64_t j = 0; j < cnt; ++j) {
          std::memcpy(kb + j * s.d, s.k.data() + ((p0 + j) * s.K + head) * s.d, s.d * sizeof(float));
          std::memcpy(vb + j * s.d, s.v.data() + ((p0 + j) * s.K + head) * s.d, s.d * sizeof(float));
        }
      };
      const auto q = randn(rng, T * H * d);
      const CachedAttnShape cs{H, K, d, mask};
      auto o = nan_vec(T * H * d), orf = nan_vec(T * H * d);
      attention_cached(ctx, o.data(), q.data(), rows, pos0, T, cs);
      ref::attention_cached(orf.data(), q.data(), rows, pos0, T, cs);
      const double ds = sum_tol(d, max_abs(q), max_abs(st.k)) / std::sqrt(static_cast<double>(d));
      chk.close(mask.window ? "o [window]" : "o [causal]", o, orf, max_abs(st.v) * (4 * ds + 4 * (n + 4) * kEps));
    }
  }});

  // ---- LM head
  // (N, V, D): the int8 tiers work in 32-column (AVX2) or 64-column masked (VNNI) chunks, rows in groups of
  // 4/8/16 and tokens in pairs (AVX2) or fours, a pair and one (VNNI); the i4 tiers in pairs of 32-column groups
  // and an odd last one (AVX2) or four groups with a masked end (VNNI), rows by 4/2/1.
  const std::vector<Dims> heads = {{1, 1, 1},     {3, 65, 17},   {2, 129, 33}, {5, 7, 127},
                                   {17, 65, 129}, {8, 33, 65},   {7, 50, 300}};
  ops.push_back({"lm_head_forward f32", heads, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto h = randn(rng, s.a * s.c), w = randn(rng, s.b * s.c);
    HeadWeights hw;
    hw.f32 = w.data();
    auto z = nan_vec(s.a * s.b), zr = nan_vec(s.a * s.b);
    lm_head_forward(ctx, z.data(), h.data(), s.a, hw, s.b, s.c, nullptr, nullptr);
    ref::lm_head_forward(zr.data(), h.data(), s.a, hw, s.b, s.c, nullptr, nullptr);
    chk.close("logits", z, zr, sum_tol(s.c, max_abs(h), max_abs(w)));
  }});
  // The integer heads (i8, i4): the quantized activations and the logits equal the reference's bit for bit.
  static constexpr auto expect_head_bits = [](const Context& ctx, const Dims& s, Check& chk, const std::vector<float>& h,
                                              const HeadWeights& hw) {
    std::vector<int8_t> hq(s.a * s.c, 99), hqr(s.a * s.c, 98);
    auto hs = nan_vec(s.a), hsr = nan_vec(s.a), z = nan_vec(s.a * s.b), zr = nan_vec(s.a * s.b);
    lm_head_forward(ctx, z.data(), h.data(), s.a, hw, s.b, s.c, hq.data(), hs.data());
    ref::lm_head_forward(zr.data(), h.data(), s.a, hw, s.b, s.c, hqr.data(), hsr.data());
    chk.exact("hq", hq, hqr);
    chk.exact("logits", z, zr);
  };
  ops.push_back({"lm_head_forward i8", heads, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto h = randn(rng, s.a * s.c);
    const auto w8 = test::random_int8(rng, s.b * s.c, -128, 127);  // any int8 level, −128 included
    std::vector<float> rs(s.b);
    for (auto& x : rs) x = 1e-3f * (1 + rng.uniform());
    HeadWeights hw;
    hw.format = HeadFormat::I8;
    hw.i8 = w8.data();
    hw.row_scale = rs.data();
    expect_head_bits(ctx, s, chk, h, hw);
  }});
  // The largest products: |h| constant, so every level is ±127, against weights −128 and ±127 (AVX2's
  // vpmaddubsw pairs reach 2·128·127 = 32512, just inside int16).
  ops.push_back({"lm_head_forward i8 extremes", heads, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    std::vector<float> h(s.a * s.c);
    for (auto& x : h) x = rng.uniform() < 0.5f ? -1.0f : 1.0f;
    std::vector<int8_t> w8(s.b * s.c);
    const int8_t levels[] = {-128, -128, 127, -127};
    for (auto& x : w8) x = levels[static_cast<int>(rng.uniform() * 4) & 3];
    std::vector<float> rs(s.b, 1e-3f);
    HeadWeights hw;
    hw.format = HeadFormat::I8;
    hw.i8 = w8.data();
    hw.row_scale = rs.data();
    expect_head_bits(ctx, s, chk, h, hw);
  }});

  // 4-bit head: any nibble of levels ±7 and any multiplier; bit-identical to the reference (exact sums, one epilogue).
  static constexpr auto i4_case = [](const Context& ctx, const Dims& s, Check& chk, const std::vector<float>& h,
                                     const std::vector<uint8_t>& q4, const std::vector<uint8_t>& k,
                                     const std::vector<float>& rs) {
    HeadWeights hw;
    hw.format = HeadFormat::I4;
    hw.q4 = q4.data();
    hw.mult = k.data();
    hw.row_scale = rs.data();
    expect_head_bits(ctx, s, chk, h, hw);
  };
  ops.push_back({"lm_head_forward i4", heads, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const auto h = randn(rng, s.a * s.c);
    std::vector<uint8_t> q4(s.b * head_i4_row_bytes(s.c)), k(s.b * head_i4_groups(s.c));
    for (auto& b : q4) b = static_cast<uint8_t>((1 + rng.next_below(15)) | (1 + rng.next_below(15)) << 4);
    for (auto& m : k) m = static_cast<uint8_t>(1 + rng.next_below(255));
    std::vector<float> rs(s.b);
    for (auto& x : rs) x = 1e-4f * (1 + rng.uniform());
    i4_case(ctx, s, chk, h, q4, k, rs);
  }});
  // The largest sums: every activation ±127, every level ±7, every multiplier 255.
  ops.push_back({"lm_head_forward i4 extremes", heads, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    std::vector<float> h(s.a * s.c);
    for (auto& x : h) x = rng.uniform() < 0.5f ? -1.0f : 1.0f;
    std::vector<uint8_t> q4(s.b * head_i4_row_bytes(s.c));
    const uint8_t nibbles[] = {1, 15};
    for (auto& b : q4) b = static_cast<uint8_t>(nibbles[rng.next_below(2)] | nibbles[rng.next_below(2)] << 4);
    std::vector<uint8_t> k(s.b * head_i4_groups(s.c), 255);
    std::vector<float> rs(s.b, 1e-6f);
    i4_case(ctx, s, chk, h, q4, k, rs);
  }});

  // ---- KV cache codecs (no Context: every backend runs the same code; exact)
  const std::vector<Dims> kvd = {{2}, {8}, {16}, {34}, {64}, {130}};  // d (even: int4 packs pairs)
  ops.push_back({"kv key group quantize/dequantize", kvd, [](const Context&, const Dims& s, Rng& rng, Check& chk) {
    const int64_t G = 32, d = s.a;
    const auto x = randn(rng, G * d, 2.0f);
    for (int bits : {8, 4}) {
      const size_t row = bits == 8 ? d : d / 2;
      std::vector<uint8_t> data(G * row, 0xAB), datar(G * row, 0x5C);
      auto p = nan_vec(2 * d), pr = nan_vec(2 * d);
      kv_quantize_key_group(data.data(), row, p.data(), x.data(), G, d, bits);
      ref::kv_quantize_key_group(datar.data(), row, pr.data(), x.data(), G, d, bits);
      chk.exact(bits == 8 ? "levels i8" : "levels i4", data, datar);
      chk.exact("params", p, pr);
      for (int64_t t = 0; t < G; t += 7) {
        auto o = nan_vec(d), orf = nan_vec(d);
        kv_dequantize_key_row(o.data(), data.data() + t * row, p.data(), d, bits);
        ref::kv_dequantize_key_row(orf.data(), data.data() + t * row, p.data(), d, bits);
        chk.exact("dequantized", o, orf);
      }
    }
  }});
  ops.push_back({"kv value row quantize/dequantize", kvd, [](const Context&, const Dims& s, Rng& rng, Check& chk) {
    const int64_t d = s.a, gv = d % 32 == 0 ? 32 : d;
    const auto x = randn(rng, d, 2.0f);
    for (int bits : {8, 4}) {
      const size_t row = bits == 8 ? d : d / 2;
      std::vector<uint8_t> data(row, 0xAB), datar(row, 0x5C);
      auto p = nan_vec(2 * (d / gv)), pr = p;
      kv_quantize_value_row(data.data(), p.data(), x.data(), d, gv, bits);
      ref::kv_quantize_value_row(datar.data(), pr.data(), x.data(), d, gv, bits);
      chk.exact(bits == 8 ? "levels i8" : "levels i4", data, datar);
      chk.exact("params", p, pr);
      auto o = nan_vec(d), orf = nan_vec(d);
      kv_dequantize_value_row(o.data(), data.data(), p.data(), d, gv, bits);
      ref::kv_dequantize_value_row(orf.data(), data.data(), p.data(), d, gv, bits);
      chk.exact("dequantized", o, orf);
    }
  }});
  ops.push_back({"kv f16 encode/decode", {{129}, {4096}}, [](const Context&, const Dims& s, Rng& rng, Check& chk) {
    // Magnitudes from 2^−30 (f16 subnormals and underflow) to 2^20 (overflow to inf), and ties.
    std::vector<float> x(s.a);
    for (auto& v : x) v = std::ldexp(rng.normal(), static_cast<int>(rng.next_below(51)) - 30);
    x[0] = 1.0f + std::ldexp(1.0f, -11);  // a tie between two halves: to even
    std::vector<uint16_t> h(s.a, 1), hr(s.a, 2);
    kv_f16_encode(h.data(), x.data(), s.a);
    ref::kv_f16_encode(hr.data(), x.data(), s.a);
    chk.exact("f16 bits", h, hr);
    std::vector<uint16_t> all(1 << 16);
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    std::vector<float> f(all.size()), fr(all.size());
    kv_f16_decode(f.data(), all.data(), static_cast<int64_t>(all.size()));
    ref::kv_f16_decode(fr.data(), all.data(), static_cast<int64_t>(all.size()));
    for (size_t i = 0; i < all.size(); ++i) {
      if (std::isnan(f[i]) && std::isnan(fr[i])) f[i] = fr[i] = 0;  // NaN patterns: both NaN is enough
    }
    chk.exact("decoded (all 65536 patterns)", f, fr);
  }});

  // ---- MinHash (dispatched by the CPU, not the tier: exact)
  ops.push_back({"minhash_update", {{1, 1}, {17, 33}, {128, 65}}, [](const Context&, const Dims& s, Rng& rng,
                                                                     Check& chk) {
    std::vector<uint32_t> a(s.a), b(s.a), sh(s.b), sig(s.a, 0xffffffffu);
    for (auto& v : a) v = static_cast<uint32_t>(rng.next_u64()) | 1u;
    for (auto& v : b) v = static_cast<uint32_t>(rng.next_u64());
    for (auto& v : sh) v = static_cast<uint32_t>(rng.next_u64());
    auto sigr = sig;
    minhash_update(sig.data(), a.data(), b.data(), a.size(), sh.data(), sh.size());
    ref::minhash_update(sigr.data(), a.data(), b.data(), a.size(), sh.data(), sh.size());
    chk.exact("sig", sig, sigr);
  }});

  // ---- spectral.h: the codec's mel-spectrogram loss. Dims (B, T, window, hop·100 + n_mels), 24 kHz.
  const std::vector<Dims> mels = {{1, 2, 2, 101}, {2, 63, 17, 505}, {2, 100, 33, 708}, {1, 129, 64, 1616},
                                  {2, 65, 16, 3103}};
  ops.push_back({"mel_spectrogram fwd+bwd", mels, [](const Context& ctx, const Dims& s, Rng& rng, Check& chk) {
    const MelBasis m = make_mel_basis({.window = s.c, .hop = s.d / 100, .n_mels = s.d % 100});
    const int64_t B = s.a, T = s.b, W = s.c, F = m.bins, M = m.cfg.n_mels, reach = (W + m.cfg.hop - 1) / m.cfg.hop;
    const MelSizes z = mel_spectrogram_sizes(m, B, T);
    const auto x = randn(rng, B * T), dmel = randn(rng, z.mel);
    auto mel = nan_vec(z.mel), melr = mel, spec = nan_vec(z.spec), specr = spec, mag = nan_vec(z.mag), magr = mag;
    mel_spectrogram_forward(ctx, mel.data(), spec.data(), mag.data(), x.data(), m, B, T);
    ref::mel_spectrogram_forward(melr.data(), specr.data(), magr.data(), x.data(), m, B, T);
    double col = 0, all = 0;  // the largest filter sum Σ_k fbank[k, j] and the whole bank's sum
    for (int64_t j = 0; j < M; ++j) {
      double c = 0;
      for (int64_t k = 0; k < F; ++k) c += m.fbank[k * M + j];
      col = std::max(col, c), all += c;
    }
    // spec: W-term sums whose |terms| add up to ≤ Σ hann·max|x| = W/2·max|x|; mag: |Δ|z|| ≤ √2·|Δz| and the sqrt;
    // mel: the filters' sums of Δmag plus an F-term sum of fbank·mag.
    const double tspec = sum_tol(W + 2, max_abs(x), 0.5 * W), tmag = 1.5 * tspec + 2 * kEps * max_abs(magr);
    chk.close("spec", spec, specr, tspec);
    chk.close("mag", mag, magr, tmag);
    chk.close("mel", mel, melr, col * tmag + sum_tol(F + 1, max_abs(magr), col));
    // Both backwards from the reference's spec and mag, accumulating into the same random dx. The bound of
    // spectral_test's BackwardMatchesTheReference with G ≤ max|dmel|·Σ fbank.
    auto dx = randn(rng, B * T), dxr = dx;
    const double dx0 = max_abs(dx);
    mel_spectrogram_backward(ctx, dx.data(), dmel.data(), specr.data(), magr.data(), m, B, T);
    ref::mel_spectrogram_backward(dxr.data(), dmel.data(), specr.data(), magr.data(), m, B, T);
    chk.close("dx", dx, dxr,
              reach * (2.0 * M + 4 * F + 2 * reach + 8) * kEps * max_abs(dmel) * all + (reach + 1) * kEps * dx0);
  }});
  return ops;
}

const std::vector<OpCase>& ops() {
  static const std::vector<OpCase> table = make_ops();
  return table;
}

class BackendOps : public ::testing::TestWithParam<size_t> {};

TEST_P(BackendOps, MatchesTheReferenceOnEveryBackend) {
  const OpCase& op = ops()[GetParam()];
  int ran = 0;
  for (const Backend& be : kBackends) {
    if (!supported(be)) continue;
    for (int threads : {1, 2}) {
      Context ctx;
      ctx.kernels = be.tier;
      ctx.threads = threads;
      for (const Dims& s : op.shapes) {
        Rng rng(1000003u * (GetParam() + 1) + 31 * static_cast<uint64_t>(s.a + 7 * s.b + 49 * s.c + 343 * s.d));
        Check chk(be.tier == KernelTier::Reference);  // `--kernels ref` must run exactly the reference
        op.run(ctx, s, rng, chk);
        EXPECT_TRUE(chk.failures().empty()) << op.name << " on " << be.name << " (threads " << threads
                                            << ") shape (" << s.a << ", " << s.b << ", " << s.c << ", " << s.d
                                            << "):\n" << chk.failures();
        ++ran;
      }
    }
  }
  EXPECT_GT(ran, 0);
}

std::string op_test_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string n = ops()[info.param].name;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n + "_" + std::to_string(info.param);
}

INSTANTIATE_TEST_SUITE_P(EveryOp, BackendOps, ::testing::Range<size_t>(0, ops().size()), op_test_name);

// The reference tier must be a different code path from the fast one somewhere (else this harness proves
// nothing): on a float op the two differ in the last bits for some input.
TEST(BackendOpsHarness, ReferenceTierRunsTheReferences) {
  Rng rng(5);
  const int64_t M = 17, N = 33, K = 129;
  const auto A = randn(rng, M * K), B = randn(rng, K * N);
  std::vector<float> c1(M * N), c2(M * N), c3(M * N);
  Context fast, refc;
  refc.kernels = KernelTier::Reference;
  gemm_f32(fast, c1.data(), A.data(), B.data(), M, N, K, false, false, 1.0f, 0.0f);
  gemm_f32(refc, c2.data(), A.data(), B.data(), M, N, K, false, false, 1.0f, 0.0f);
  ref::gemm_f32(c3.data(), A.data(), B.data(), M, N, K, false, false, 1.0f, 0.0f, K, N, N);
  EXPECT_EQ(c2, c3);
  EXPECT_NE(c1, c2);
  // And the harness's tolerance check catches a real error: one element off by 0.01 (the tolerance is ~1e-3).
  Check chk;
  auto bad = c3;
  bad[40] += 0.01f;
  chk.close("C", bad, c3, sum_tol(K, max_abs(A), max_abs(B)));
  EXPECT_NE(chk.failures().find("index 40"), std::string::npos) << chk.failures();
}

}  // namespace
}  // namespace tritter
