// The mel spectrogram (kernels/spectral.h): a tone at a bin's centre against the Hann window's closed form, the
// filterbank against hand-computed HTK triangles and an independent evaluation of the formula, the fast forward
// against the reference with derived float bounds (odd windows, hops that do not divide T or exceed the window,
// several scratch blocks), thread-count independence, the backward against central differences of a double
// definition written here (independent of kernels/ref), and the errors a user can cause.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/spectral.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter::spectral_test {

using test::randn;
using test::to_double;
using test::Vec;

constexpr double kEps = 1.1920929e-7;  // float epsilon 2^−23 (twice the unit roundoff u)
constexpr double kPi = std::numbers::pi;

struct SpectralShape {
  int64_t B, T, window, hop, n_mels;
};

MelBasis spectral_basis(const SpectralShape& s, double sample_rate = 24000) {
  return make_mel_basis({.window = s.window, .hop = s.hop, .n_mels = s.n_mels, .sample_rate = sample_rate});
}

std::string spectral_name(const SpectralShape& s) {
  std::ostringstream o;
  o << "B" << s.B << " T" << s.T << " window " << s.window << " hop " << s.hop << " mels " << s.n_mels;
  return o.str();
}

// |actual − expected| ≤ tol elementwise (NaN fails), reporting the element with the largest error / tol.
void spectral_expect_within(const std::vector<float>& actual, const std::vector<double>& expected,
                            const std::vector<double>& tol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  size_t worst = 0;
  double ratio = -1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double e = std::fabs(actual[i] - expected[i]);
    const double r = std::isnan(actual[i]) ? INFINITY : e / tol[i];
    if (r > ratio) ratio = r, worst = i;
  }
  EXPECT_LE(ratio, 1.0) << what << ": worst element " << worst << " actual " << actual[worst] << " expected "
                        << expected[worst] << " tolerance " << tol[worst];
}

// The mel spectrogram from its definition, in double: periodic Hann 0.5 − 0.5·cos(2πn/W), X_k = Σ_n frame_n·
// e^{−2πikn/W}, |X_k| = sqrt(re² + im² + kMelEps), mel_j = Σ_k fbank[k, j]·|X_k| (the basis's filterbank).
Vec spectral_def_mel(const Vec& x, const MelBasis& m, int64_t B, int64_t T) {
  const int64_t W = m.cfg.window, hop = m.cfg.hop, F = m.bins, M = m.cfg.n_mels, frames = 1 + (T - W) / hop;
  Vec mel(static_cast<size_t>(B * frames * M), 0.0), mag(static_cast<size_t>(F));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t k = 0; k < F; ++k) {
        double re = 0, im = 0;
        for (int64_t n = 0; n < W; ++n) {
          const double v = (0.5 - 0.5 * std::cos(2 * kPi * n / W)) * x[b * T + f * hop + n];
          re += v * std::cos(2 * kPi * k * n / W);
          im -= v * std::sin(2 * kPi * k * n / W);
        }
        mag[k] = std::sqrt(re * re + im * im + kMelEps);
      }
      for (int64_t j = 0; j < M; ++j)
        for (int64_t k = 0; k < F; ++k) mel[(b * frames + f) * M + j] += m.fbank[k * M + j] * mag[k];
    }
  return mel;
}

// Everything one forward call produces.
struct SpectralOut {
  std::vector<float> mel, spec, mag;
};
SpectralOut spectral_forward(const Context& ctx, const std::vector<float>& x, const MelBasis& m, int64_t B,
                             int64_t T) {
  const MelSizes z = mel_spectrogram_sizes(m, B, T);
  SpectralOut o{std::vector<float>(z.mel, NAN), std::vector<float>(z.spec, NAN), std::vector<float>(z.mag, NAN)};
  mel_spectrogram_forward(ctx, o.mel.data(), o.spec.data(), o.mag.data(), x.data(), m, B, T);
  return o;
}

TEST(SpectralMel, ToneAtABinCentreFillsThatBinAndItsNeighbours) {
  // x_t = A·cos(2π·k0·t/W + φ) sits exactly on bin k0 in every frame. The periodic Hann window's DFT is W/2 at 0,
  // −W/4 at ±1 and 0 elsewhere, so |X_k0| = A·W/4, |X_k0±1| = A·W/8 and every other bin is 0 (the mirror image at
  // −k0 is ≥ 2 bins away for these k0), i.e. sqrt(kMelEps) = 1e-5 after the floor.
  for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
    Context ctx;
    ctx.kernels = tier;
    for (const SpectralShape s : {SpectralShape{1, 64 + 3 * 16, 64, 16, 4}, SpectralShape{2, 33 + 2 * 9, 33, 9, 4},
                                  SpectralShape{1, 100 + 3 * 31, 100, 31, 4}}) {
      const MelBasis m = spectral_basis(s);
      const int64_t k0 = 5, F = m.bins, frames = mel_frames(m, s.T);
      const double A = 0.7, phase = 0.3;
      std::vector<float> x(static_cast<size_t>(s.B * s.T));
      for (int64_t i = 0; i < s.B * s.T; ++i)
        x[i] = static_cast<float>(A * std::cos(2 * kPi * k0 * static_cast<double>(i % s.T) / s.window + phase));
      const SpectralOut o = spectral_forward(ctx, x, m, s.B, s.T);
      // A W-term sum of |terms| ≤ Σ_n hann_n·A = A·W/2: float error ≤ (W + 4)·u·A·W/2 (W for the sum, the rest for
      // the rounding of x and of the basis), ×2 margin; the 1e-5 floor is the eps of the zero bins.
      const double tol = (s.window + 4) * kEps * A * s.window / 2 + 1e-5;
      std::vector<double> want(o.mag.size()), tols(o.mag.size(), tol);
      for (int64_t r = 0; r < s.B * frames; ++r)
        for (int64_t k = 0; k < F; ++k) {
          const double v = k == k0 ? A * s.window / 4 : std::abs(k - k0) == 1 ? A * s.window / 8 : 0.0;
          want[r * F + k] = std::sqrt(v * v + kMelEps);
        }
      spectral_expect_within(o.mag, want, tols, spectral_name(s) + (tier == KernelTier::Reference ? " ref" : ""));
    }
  }
}

TEST(SpectralMel, FilterbankIsTheHtkTriangles) {
  // By hand: 8 kHz, window 16 puts bins every 500 Hz. One filter over 0 .. f_max with f_max = 168000/49 Hz has its
  // centre at mel(f_max)/2 = 2595·log10(17/7), i.e. exactly 1000 Hz (mel(f) = 2595·log10(1 + f/700)), so the
  // triangle is 0 → 1 over 0 .. 1000 Hz and 1 → 0 over 1000 .. 168000/49 (width 119000/49 Hz).
  {
    const MelBasis m = make_mel_basis({.window = 16, .hop = 4, .n_mels = 1, .sample_rate = 8000,
                                       .f_min = 0, .f_max = 168000.0 / 49});
    const std::vector<double> want = {0, 0.5, 1, 94500.0 / 119000, 70000.0 / 119000, 45500.0 / 119000,
                                      21000.0 / 119000, 0, 0};
    ASSERT_EQ(m.bins, 9);
    for (int64_t k = 0; k < 9; ++k) EXPECT_NEAR(m.fbank[k], want[k], 1e-6) << "bin " << k;
  }
  // A codec scale (24 kHz, window 1024, 64 mels from 50 Hz) against the formula evaluated here: edges evenly
  // spaced in mel, bin k at k·12000/512 Hz; each filter's peak ≤ 1 and within (bin spacing / 2) / (its shorter
  // side) of 1, since some bin lies within half a spacing of its centre.
  {
    const MelBasis m = make_mel_basis({.window = 1024, .hop = 256, .n_mels = 64, .sample_rate = 24000, .f_min = 50});
    EXPECT_EQ(m.cfg.f_max, 12000);  // f_max 0 resolved
    const int64_t F = 513, M = 64;
    auto mel = [](double f) { return 2595 * std::log10(1 + f / 700); };
    auto hz = [](double v) { return 700 * (std::pow(10, v / 2595) - 1); };
    const double spacing = 12000.0 / 512;
    for (int64_t j = 0; j < M; ++j) {
      const double lo = hz(mel(50) + (mel(12000) - mel(50)) * j / (M + 1));
      const double mid = hz(mel(50) + (mel(12000) - mel(50)) * (j + 1) / (M + 1));
      const double hi = hz(mel(50) + (mel(12000) - mel(50)) * (j + 2) / (M + 1));
      double peak = 0;
      for (int64_t k = 0; k < F; ++k) {
        const double f = k * spacing;
        const double want = std::max(0.0, std::min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
        ASSERT_NEAR(m.fbank[k * M + j], want, 1e-6) << "filter " << j << " bin " << k;
        peak = std::max(peak, static_cast<double>(m.fbank[k * M + j]));
      }
      EXPECT_LE(peak, 1.0) << j;
      EXPECT_GE(peak, 1 - spacing / 2 / std::min(mid - lo, hi - mid) - 1e-6) << j;
    }
  }
  // Many mels over few bins: a filter with no bin strictly inside (lo, hi) is a zero column (not NaN), and its mel
  // output is 0.
  {
    const MelBasis m = make_mel_basis({.window = 16, .hop = 8, .n_mels = 40, .sample_rate = 8000});
    const int64_t F = 9, M = 40;
    int zero = 0;
    for (int64_t j = 0; j < M; ++j) {
      float peak = 0;
      for (int64_t k = 0; k < F; ++k) {
        ASSERT_TRUE(std::isfinite(m.fbank[k * M + j])) << j;
        peak = std::max(peak, m.fbank[k * M + j]);
      }
      EXPECT_LE(peak, 1.0f);
      zero += peak == 0;
    }
    EXPECT_GT(zero, 10);  // the low filters are ~50 mel (~35 Hz) wide against 500 Hz bins
    Context ctx;
    const auto x = randn(32, 7);
    const SpectralOut o = spectral_forward(ctx, x, m, 1, 32);
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t j = 0; j < M; ++j) {
        float peak = 0;
        for (int64_t k = 0; k < F; ++k) peak = std::max(peak, m.fbank[k * M + j]);
        ASSERT_TRUE(std::isfinite(o.mel[r * M + j]));
        if (peak == 0) {
          EXPECT_EQ(o.mel[r * M + j], 0.0f) << j;
        }
      }
  }
}

const SpectralShape kSpectralShapes[] = {
    {2, 100, 33, 7, 8},      // odd window, hop does not divide T − window
    {1, 64, 64, 16, 10},     // one frame
    {2, 345, 100, 37, 20},   // even, not a power of two
    {2, 300, 64, 80, 12},    // hop > window: samples between frames are read by none
    {1, 9, 2, 3, 1},         // the smallest window: bins DC and Nyquist (every filter is 0 there)
    {2, 1500, 256, 100, 40},
    {2, 17000, 64, 1, 16},   // hop 1: every block holds one signal, so several blocks and 64-deep overlap-adds
};

// The forward's float error bound per element, from the sums of |terms| of the reference's frames:
//   spec: a W-term sum of hann_n·x_n·basis with S = Σ_n hann_n·|x_n|: ≤ (W + 2)·u·S (γ_W, the basis' and the
//         output's rounding), ×4 margin → 2·(W + 2)·eps·S;
//   mag:  |Δ|z|| ≤ |Δz| ≤ √2·tol_spec, plus the float sqrt and squares' rounding 2·eps·|z|;
//   mel:  Σ_k fbank_kj·tol_mag_k + 2·(F + 1)·eps·Σ_k fbank_kj·|z_k| (an F-term sum, ×2).
struct SpectralTols {
  std::vector<double> spec, mag, mel;
};
SpectralTols spectral_forward_tols(const std::vector<float>& x, const SpectralOut& ref, const MelBasis& m, int64_t B,
                                   int64_t T) {
  const int64_t W = m.cfg.window, hop = m.cfg.hop, F = m.bins, M = m.cfg.n_mels, frames = mel_frames(m, T);
  SpectralTols t{std::vector<double>(ref.spec.size()), std::vector<double>(ref.mag.size()),
                 std::vector<double>(ref.mel.size())};
  for (int64_t r = 0; r < B * frames; ++r) {
    double S = 0;
    for (int64_t n = 0; n < W; ++n) S += m.hann[n] * std::fabs(x[(r / frames) * T + (r % frames) * hop + n]);
    const double ts = 2.0 * (W + 2) * kEps * S;
    for (int64_t k = 0; k < 2 * F; ++k) t.spec[r * 2 * F + k] = ts;
    for (int64_t k = 0; k < F; ++k) t.mag[r * F + k] = 1.5 * ts + 2 * kEps * ref.mag[r * F + k];
    for (int64_t j = 0; j < M; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < F; ++k)
        acc += m.fbank[k * M + j] * (t.mag[r * F + k] + 2.0 * (F + 1) * kEps * ref.mag[r * F + k]);
      t.mel[r * M + j] = acc + 1e-30;
    }
  }
  return t;
}

TEST(SpectralMel, ForwardMatchesTheReference) {
  Context fast, ref;
  ref.kernels = KernelTier::Reference;
  for (const SpectralShape& s : kSpectralShapes) {
    const MelBasis m = spectral_basis(s);
    const auto x = randn(s.B * s.T, 11 + s.window);
    const SpectralOut o = spectral_forward(fast, x, m, s.B, s.T), r = spectral_forward(ref, x, m, s.B, s.T);
    const SpectralTols t = spectral_forward_tols(x, r, m, s.B, s.T);
    const std::string what = spectral_name(s);
    spectral_expect_within(o.spec, Vec(r.spec.begin(), r.spec.end()), t.spec, what + " spec");
    spectral_expect_within(o.mag, Vec(r.mag.begin(), r.mag.end()), t.mag, what + " mag");
    spectral_expect_within(o.mel, Vec(r.mel.begin(), r.mel.end()), t.mel, what + " mel");
  }
}

TEST(SpectralMel, ResultsDoNotDependOnTheThreadCount) {
  for (const SpectralShape& s : {SpectralShape{2, 24000, 64, 16, 16}, SpectralShape{3, 5000, 100, 37, 20}}) {
    const MelBasis m = spectral_basis(s);
    const auto x = randn(s.B * s.T, 21), dmel = randn(mel_spectrogram_sizes(m, s.B, s.T).mel, 22);
    SpectralOut o[2];
    std::vector<float> dx[2];
    for (int threads : {1, 2}) {
      Context ctx;
      ctx.threads = threads;
      SpectralOut& out = o[threads - 1];
      out = spectral_forward(ctx, x, m, s.B, s.T);
      dx[threads - 1].assign(x.size(), 0.5f);
      mel_spectrogram_backward(ctx, dx[threads - 1].data(), dmel.data(), out.spec.data(), out.mag.data(), m, s.B, s.T);
    }
    EXPECT_EQ(o[0].mel, o[1].mel) << spectral_name(s);
    EXPECT_EQ(o[0].spec, o[1].spec) << spectral_name(s);
    EXPECT_EQ(o[0].mag, o[1].mag) << spectral_name(s);
    EXPECT_EQ(dx[0], dx[1]) << spectral_name(s);
  }
}

TEST(SpectralMel, BackwardMatchesCentralDifferences) {
  // L(x) = Σ wmel ⊙ mel(x), so dmel = wmel; central differences of spectral_def_mel in double.
  for (const SpectralShape& s : {SpectralShape{2, 75, 16, 5, 6}, SpectralShape{1, 50, 33, 6, 5},
                                 SpectralShape{1, 40, 12, 20, 4}}) {  // the last: hop > window, gaps get 0
    const MelBasis m = spectral_basis(s, 16000);
    const std::string what = spectral_name(s);
    const auto x = randn(s.B * s.T, 31 + s.window), wmel = randn(mel_spectrogram_sizes(m, s.B, s.T).mel, 32);
    const Vec X = to_double(x), WM = to_double(wmel);
    const Vec numeric =
        test::numeric_grad([&](const Vec& v) { return test::dot(spectral_def_mel(v, m, s.B, s.T), WM); }, X);
    Context fast, ref;
    ref.kernels = KernelTier::Reference;
    const SpectralOut r = spectral_forward(ref, x, m, s.B, s.T);
    // The reference forward is the definition rounded once per output.
    const Vec def = spectral_def_mel(X, m, s.B, s.T);
    std::vector<double> def_tol(def.size());
    for (size_t i = 0; i < def.size(); ++i) def_tol[i] = 2 * kEps * std::fabs(def[i]) + 1e-12;
    spectral_expect_within(r.mel, def, def_tol, what + " ref mel vs definition");
    std::vector<float> dx_ref(x.size(), 0.0f), dx_fast(x.size(), 0.0f);
    mel_spectrogram_backward(ref, dx_ref.data(), wmel.data(), r.spec.data(), r.mag.data(), m, s.B, s.T);
    mel_spectrogram_backward(fast, dx_fast.data(), wmel.data(), r.spec.data(), r.mag.data(), m, s.B, s.T);
    test::expect_grad_near(dx_ref, numeric, (what + " ref dx").c_str());
    test::expect_grad_near(dx_fast, numeric, (what + " fast dx").c_str());
    if (s.hop > s.window) {
      EXPECT_EQ(dx_fast[s.window], 0.0f);  // between the frames
    }
    // The backward accumulates: from dx = 1 it adds the same gradient (one more rounding per element).
    std::vector<float> dx_one(x.size(), 1.0f);
    mel_spectrogram_backward(fast, dx_one.data(), wmel.data(), r.spec.data(), r.mag.data(), m, s.B, s.T);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(dx_one[i] - 1.0f, dx_fast[i], 2 * kEps * (1 + std::fabs(dx_fast[i]))) << i;
  }
}

// The fast backward against the reference's, both from the reference forward's spec and mag. With
// D_k = Σ_j |dmel_j|·fbank_kj and G = the largest per-frame Σ_k D_k, per frame: dmag (M-term sums) ≤ M·u·D_k off,
// dspec (× re/|z| ≤ 1, 2 roundings) ≤ (M + 2)·u·D_k, dframe (2F terms with float basis) ≤ (2M + 4F + 6)·u·G, and
// the overlap-add of ≤ reach = ⌈W/hop⌉ frames (|dframe| ≤ 2G) into dx adds (reach + 1)·u·(2G·reach + |dx0|):
//   tol = reach·(2M + 4F + 2·reach + 8)·eps·G + (reach + 1)·eps·max|dx0| (eps = 2u: ×2 margin).
TEST(SpectralMel, BackwardMatchesTheReference) {
  Context fast, ref;
  ref.kernels = KernelTier::Reference;
  for (const SpectralShape& s : kSpectralShapes) {
    const MelBasis m = spectral_basis(s);
    const int64_t W = s.window, F = m.bins, M = s.n_mels, frames = mel_frames(m, s.T), reach = (W + s.hop - 1) / s.hop;
    const auto x = randn(s.B * s.T, 41 + W), dmel = randn(mel_spectrogram_sizes(m, s.B, s.T).mel, 42);
    const SpectralOut r = spectral_forward(ref, x, m, s.B, s.T);
    const auto dx0 = randn(s.B * s.T, 43);
    std::vector<float> dx = dx0, dxr = dx0;
    mel_spectrogram_backward(fast, dx.data(), dmel.data(), r.spec.data(), r.mag.data(), m, s.B, s.T);
    mel_spectrogram_backward(ref, dxr.data(), dmel.data(), r.spec.data(), r.mag.data(), m, s.B, s.T);
    double G = 0;
    for (int64_t row = 0; row < s.B * frames; ++row) {
      double g = 0;
      for (int64_t k = 0; k < F; ++k)
        for (int64_t j = 0; j < M; ++j) g += std::fabs(dmel[row * M + j]) * m.fbank[k * M + j];
      G = std::max(G, g);
    }
    const double tol = reach * (2.0 * M + 4 * F + 2 * reach + 8) * kEps * G + (reach + 1) * kEps * test::max_abs(dx0);
    spectral_expect_within(dx, Vec(dxr.begin(), dxr.end()), std::vector<double>(dx.size(), tol),
                           spectral_name(s) + " dx");
  }
}

TEST(SpectralMel, BadInputsAreErrors) {
  test::expect_error([] { make_mel_basis({.window = 1}); }, {"make_mel_basis: window: found 1", "expected 2"});
  test::expect_error([] { make_mel_basis({.hop = 0}); }, {"make_mel_basis: hop: found 0", "expected >= 1"});
  test::expect_error([] { make_mel_basis({.n_mels = 0}); }, {"make_mel_basis: n_mels: found 0", "expected >= 1"});
  test::expect_error([] { make_mel_basis({.sample_rate = 24000, .f_max = 13000}); },
                     {"make_mel_basis: f_max: found 13000", "expected <= sample_rate/2 = 12000"});
  test::expect_error([] { make_mel_basis({.sample_rate = 24000, .f_min = 12000}); },
                     {"make_mel_basis: f_min: found 12000", "expected 0 <= f_min < f_max = 12000"});
  test::expect_error([] { make_mel_basis({.sample_rate = -1}); }, {"make_mel_basis: sample_rate: found -1"});
  const MelBasis m = make_mel_basis({});  // window 1024, hop 256, 64 mels at 24 kHz
  Context ctx;
  std::vector<float> buf(4096);
  test::expect_error([&] { mel_frames(m, 1000); },
                     {"mel_spectrogram: input length: found T=1000", "expected at least window=1024"});
  test::expect_error([&] { mel_spectrogram_forward(ctx, buf.data(), buf.data(), buf.data(), buf.data(), m, 1, 1000); },
                     {"input length: found T=1000"});
  test::expect_error([&] { mel_spectrogram_backward(ctx, buf.data(), buf.data(), buf.data(), buf.data(), m, 1, 1023); },
                     {"mel_spectrogram backward: input length: found T=1023"});
  test::expect_error([&] { mel_spectrogram_forward(ctx, buf.data(), buf.data(), buf.data(), buf.data(), m, 0, 1024); },
                     {"mel_spectrogram: batch: found B=0", "expected >= 1"});
}

}  // namespace tritter::spectral_test
