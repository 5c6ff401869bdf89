// Reference mel spectrogram (kernels/spectral.h): the Hann window and the DFT by their definitions (cos/sin of
// 2π·k·n/window, k·n reduced mod window in integers), the filterbank as given in the basis, every sum in double
// and one rounding to float per output. Reads neither m.dft nor m.hann, so it checks them too.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "kernels/ref/ref.h"

namespace tritter::ref {

namespace {
// cos and sin of 2π·j/W for j in [0, W): every angle the DFT of size W takes.
struct RefTurns {
  std::vector<double> c, s;
  explicit RefTurns(int64_t W) : c(static_cast<size_t>(W)), s(static_cast<size_t>(W)) {
    for (int64_t j = 0; j < W; ++j) {
      const double a = 2.0 * std::numbers::pi * static_cast<double>(j) / static_cast<double>(W);
      c[static_cast<size_t>(j)] = std::cos(a);
      s[static_cast<size_t>(j)] = std::sin(a);
    }
  }
  double hann(int64_t n) const { return 0.5 - 0.5 * c[static_cast<size_t>(n)]; }  // periodic
};
}  // namespace

void mel_spectrogram_forward(float* mel, float* spec, float* mag, const float* x, const MelBasis& m, int64_t B,
                             int64_t T) {
  const int64_t W = m.cfg.window, hop = m.cfg.hop, F = m.bins, M = m.cfg.n_mels, frames = 1 + (T - W) / hop;
  const RefTurns tw(W);
  const float* fb = m.fbank.data();  // (F, n_mels)
  std::vector<double> frame_v(static_cast<size_t>(W)), md_v(static_cast<size_t>(F));
  double* frame = frame_v.data();
  double* md = md_v.data();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      const int64_t r = b * frames + f;
      for (int64_t n = 0; n < W; ++n) frame[n] = tw.hann(n) * x[b * T + f * hop + n];
      for (int64_t k = 0; k < F; ++k) {
        double re = 0.0, im = 0.0;  // X_k = Σ_n frame_n·e^{−2πi·k·n/W}
        for (int64_t n = 0, j = 0; n < W; ++n) {  // j = k·n mod W
          re += frame[n] * tw.c[j];
          im -= frame[n] * tw.s[j];
          j = j + k >= W ? j + k - W : j + k;
        }
        spec[r * 2 * F + k] = static_cast<float>(re);
        spec[r * 2 * F + F + k] = static_cast<float>(im);
        md[k] = std::sqrt(re * re + im * im + kMelEps);
        mag[r * F + k] = static_cast<float>(md[k]);
      }
      for (int64_t j = 0; j < M; ++j) {
        double acc = 0.0;
        for (int64_t k = 0; k < F; ++k) acc += fb[k * M + j] * md[k];
        mel[r * M + j] = static_cast<float>(acc);
      }
    }
}

void mel_spectrogram_backward(float* dx, const float* dmel, const float* spec, const float* mag, const MelBasis& m,
                              int64_t B, int64_t T) {
  const int64_t W = m.cfg.window, hop = m.cfg.hop, F = m.bins, M = m.cfg.n_mels, frames = 1 + (T - W) / hop;
  const RefTurns tw(W);
  const float* fb = m.fbank.data();  // (F, n_mels)
  std::vector<double> acc_v(static_cast<size_t>(T)), dre_v(static_cast<size_t>(F)), dim_v(static_cast<size_t>(F));
  double* acc = acc_v.data();
  double* dre = dre_v.data();
  double* dim = dim_v.data();
  for (int64_t b = 0; b < B; ++b) {
    std::fill(acc, acc + T, 0.0);
    for (int64_t f = 0; f < frames; ++f) {
      const int64_t r = b * frames + f;
      for (int64_t k = 0; k < F; ++k) {
        double dm = 0.0;  // dmag_k = Σ_j dmel_j·fbank[k, j]
        for (int64_t j = 0; j < M; ++j) dm += static_cast<double>(dmel[r * M + j]) * fb[k * M + j];
        const double g = dm / mag[r * F + k];
        dre[k] = g * spec[r * 2 * F + k];
        dim[k] = g * spec[r * 2 * F + F + k];
      }
      for (int64_t n = 0; n < W; ++n) {
        double g = 0.0;  // ∂/∂frame_n of Σ_k dre_k·re_k + dim_k·im_k
        for (int64_t k = 0, j = 0; k < F; ++k) {  // j = k·n mod W
          g += dre[k] * tw.c[j] - dim[k] * tw.s[j];
          j = j + n >= W ? j + n - W : j + n;
        }
        acc[f * hop + n] += tw.hann(n) * g;
      }
    }
    for (int64_t t = 0; t < T; ++t) dx[b * T + t] += static_cast<float>(acc[t]);
  }
}

}  // namespace tritter::ref
