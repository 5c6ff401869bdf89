// The mel spectrogram (kernels/spectral.h): frames copied into a (rows, window) block, one gemm_f32 with the
// windowed DFT basis, the magnitude, one gemm_f32 with the filterbank; the backward runs the same products
// transposed and overlap-adds the frames' gradients. Work is done a block of whole signals at a time, so the
// scratch stays ~8 MB however many signals (one signal longer than that gets a block of its own).
#include "kernels/spectral.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/ref/ref.h"

namespace tritter {

namespace {

// Element-wise passes smaller than this run on one thread: a team's start costs more than they do.
constexpr int64_t kSpectralParallelElems = 1 << 15;
// Floats of one scratch block (frames or their gradients); whole signals per block, at least one.
constexpr int64_t kSpectralBlockFloats = 1 << 21;

int spectral_threads(const Context& ctx, int64_t elems) {
  return elems >= kSpectralParallelElems ? std::max(1, ctx.threads) : 1;
}

// Signals per block when each signal's scratch is frames·width floats.
int64_t spectral_block(int64_t B, int64_t frames, int64_t width) {
  return std::clamp<int64_t>(kSpectralBlockFloats / (frames * width), 1, B);
}

int64_t spectral_frames(const MelBasis& m, int64_t T, const char* op) {
  if (T < m.cfg.window) throw_error(op, ": input length: found T=", T, ", expected at least window=", m.cfg.window);
  return 1 + (T - m.cfg.window) / m.cfg.hop;
}

// Returns the frames per signal; B < 1 and T < window are Errors, a basis not from make_mel_basis an invariant.
int64_t spectral_check(const MelBasis& m, int64_t B, int64_t T, const char* op) {
  if (B < 1) throw_error(op, ": batch: found B=", B, ", expected >= 1");
  const int64_t frames = spectral_frames(m, T, op);
  const int64_t W = m.cfg.window, F = m.bins, M = m.cfg.n_mels;
  TRITTER_CHECK(F == W / 2 + 1 && m.dft.size() == static_cast<size_t>(W * 2 * F) &&
                    m.fbank.size() == static_cast<size_t>(F * M),
                "mel basis: window ", W, " bins ", F, " n_mels ", M, " dft ", m.dft.size(), " fbank ", m.fbank.size());
  return frames;
}

double hz_to_mel_htk(double f) { return 2595.0 * std::log10(1.0 + f / 700.0); }
double mel_to_hz_htk(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

void check_config(const MelSpecConfig& c) {
  if (c.window < 2 || c.window > kMelMaxWindow) {
    throw_error("make_mel_basis: window: found ", c.window, ", expected 2 ..= ", kMelMaxWindow,
                " (the dense DFT basis is window*(window+2) floats)");
  }
  if (c.hop < 1) throw_error("make_mel_basis: hop: found ", c.hop, ", expected >= 1");
  if (c.n_mels < 1) throw_error("make_mel_basis: n_mels: found ", c.n_mels, ", expected >= 1");
  if (!(c.sample_rate > 0) || !std::isfinite(c.sample_rate)) {
    throw_error("make_mel_basis: sample_rate: found ", c.sample_rate, ", expected a finite rate > 0");
  }
}

}  // namespace

MelBasis make_mel_basis(const MelSpecConfig& cfg) {
  check_config(cfg);
  MelBasis m;
  m.cfg = cfg;
  const double nyquist = cfg.sample_rate / 2;
  if (m.cfg.f_max == 0) m.cfg.f_max = nyquist;
  const double f_min = m.cfg.f_min, f_max = m.cfg.f_max;
  if (!(f_max <= nyquist)) {
    throw_error("make_mel_basis: f_max: found ", f_max, ", expected <= sample_rate/2 = ", nyquist);
  }
  if (!(f_min >= 0 && f_min < f_max)) {
    throw_error("make_mel_basis: f_min: found ", f_min, ", expected 0 <= f_min < f_max = ", f_max);
  }
  const int64_t W = cfg.window, F = W / 2 + 1, M = cfg.n_mels;
  m.bins = F;
  m.hann.resize(static_cast<size_t>(W));
  m.dft.resize(static_cast<size_t>(W * 2 * F));
  const double turn = 2.0 * std::numbers::pi / static_cast<double>(W);
  for (int64_t n = 0; n < W; ++n) {
    const double h = 0.5 - 0.5 * std::cos(turn * static_cast<double>(n));
    m.hann[static_cast<size_t>(n)] = static_cast<float>(h);
    for (int64_t k = 0; k < F; ++k) {
      const double a = turn * static_cast<double>((k * n) % W);  // reduced exactly: no large angles
      m.dft[static_cast<size_t>(n * 2 * F + k)] = static_cast<float>(h * std::cos(a));
      m.dft[static_cast<size_t>(n * 2 * F + F + k)] = static_cast<float>(-h * std::sin(a));
    }
  }
  // M + 2 edges evenly spaced in mel; filter j rises from edge j to j + 1 and falls to j + 2 (torchaudio's
  // _create_triangular_filterbank, in double).
  std::vector<double> edge(static_cast<size_t>(M + 2));
  const double mel_lo = hz_to_mel_htk(f_min), mel_hi = hz_to_mel_htk(f_max);
  for (int64_t i = 0; i < M + 2; ++i)
    edge[static_cast<size_t>(i)] = mel_to_hz_htk(mel_lo + (mel_hi - mel_lo) * static_cast<double>(i) / (M + 1));
  const double top = std::floor(cfg.sample_rate / 2);  // torchaudio's linspace(0, sample_rate // 2, F)
  m.fbank.resize(static_cast<size_t>(F * M));
  for (int64_t k = 0; k < F; ++k) {
    const double f = top * static_cast<double>(k) / static_cast<double>(F - 1);
    for (int64_t j = 0; j < M; ++j) {
      const double lo = edge[static_cast<size_t>(j)], mid = edge[static_cast<size_t>(j + 1)],
                   hi = edge[static_cast<size_t>(j + 2)];
      const double v = std::max(0.0, std::min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
      m.fbank[static_cast<size_t>(k * M + j)] = static_cast<float>(v);
    }
  }
  return m;
}

int64_t mel_frames(const MelBasis& m, int64_t T) { return spectral_frames(m, T, "mel_spectrogram"); }

MelSizes mel_spectrogram_sizes(const MelBasis& m, int64_t B, int64_t T) {
  MelSizes s;
  s.frames = mel_frames(m, T);
  s.mel = B * s.frames * m.cfg.n_mels;
  s.spec = B * s.frames * 2 * m.bins;
  s.mag = B * s.frames * m.bins;
  return s;
}

void mel_spectrogram_forward(const Context& ctx, float* mel, float* spec, float* mag, const float* x,
                             const MelBasis& m, int64_t B, int64_t T) {
  const int64_t frames = spectral_check(m, B, T, "mel_spectrogram");
  if (ctx.kernels == KernelTier::Reference) return ref::mel_spectrogram_forward(mel, spec, mag, x, m, B, T);
  const int64_t W = m.cfg.window, hop = m.cfg.hop, F = m.bins, M = m.cfg.n_mels;
  const int64_t per = spectral_block(B, frames, W);
  std::vector<float> framed(static_cast<size_t>(per * frames * W));  // (rows, W) of one block of signals
  for (int64_t b0 = 0; b0 < B; b0 += per) {
    const int64_t rows = std::min(per, B - b0) * frames;
    parallel_ranges(spectral_threads(ctx, rows * W), rows, [&](int64_t lo, int64_t hi, int) {
      for (int64_t r = lo; r < hi; ++r) {  // row (b, f) = x[b0 + b, f·hop .. f·hop + W)
        const float* src = x + (b0 + r / frames) * T + (r % frames) * hop;
        std::memcpy(framed.data() + r * W, src, static_cast<size_t>(W) * sizeof(float));
      }
    });
    gemm_f32(ctx, spec + b0 * frames * 2 * F, framed.data(), m.dft.data(), rows, 2 * F, W, false, false, 1.0f,
             0.0f);  // (rows, 2F)
  }
  const int64_t R = B * frames;
  const float eps = static_cast<float>(kMelEps);
  parallel_ranges(spectral_threads(ctx, R * F), R, [&](int64_t lo, int64_t hi, int) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* re = spec + r * 2 * F;
      const float* im = re + F;
      for (int64_t k = 0; k < F; ++k) mag[r * F + k] = std::sqrt(re[k] * re[k] + im[k] * im[k] + eps);
    }
  });
  gemm_f32(ctx, mel, mag, m.fbank.data(), R, M, F, false, false, 1.0f, 0.0f);  // (B·frames, n_mels)
}

void mel_spectrogram_backward(const Context& ctx, float* dx, const float* dmel, const float* spec, const float* mag,
                              const MelBasis& m, int64_t B, int64_t T) {
  const int64_t frames = spectral_check(m, B, T, "mel_spectrogram backward");
  if (ctx.kernels == KernelTier::Reference) return ref::mel_spectrogram_backward(dx, dmel, spec, mag, m, B, T);
  const int64_t W = m.cfg.window, hop = m.cfg.hop, F = m.bins, M = m.cfg.n_mels;
  const int64_t per = spectral_block(B, frames, W + 2 * F);
  std::vector<float> dspec(static_cast<size_t>(per * frames * 2 * F));  // (rows, 2F)
  std::vector<float> dframes(static_cast<size_t>(per * frames * W));    // (rows, W)
  // dx is summed in hop-long segments: segment s receives frames s − reach + 1 .. s (those that overlap it).
  const int64_t segs = (T + hop - 1) / hop, reach = (W + hop - 1) / hop;
  for (int64_t b0 = 0; b0 < B; b0 += per) {
    const int64_t nb = std::min(per, B - b0), rows = nb * frames;
    const float* sp = spec + b0 * frames * 2 * F;
    const float* mg = mag + b0 * frames * F;
    // dmag (rows, F) = dmel·fbankᵀ, written into the re half of each dspec row (row stride 2F)
    gemm_f32(ctx, dspec.data(), dmel + b0 * frames * M, m.fbank.data(), rows, F, M, false, true, 1.0f, 0.0f, M, M,
             2 * F);
    parallel_ranges(spectral_threads(ctx, rows * F), rows, [&](int64_t lo, int64_t hi, int) {
      for (int64_t r = lo; r < hi; ++r) {  // d|z|/d(re, im) = (re, im)/|z|
        float* d = dspec.data() + r * 2 * F;
        for (int64_t k = 0; k < F; ++k) {
          const float g = d[k] / mg[r * F + k];
          d[k] = g * sp[r * 2 * F + k];
          d[F + k] = g * sp[r * 2 * F + F + k];
        }
      }
    });
    gemm_f32(ctx, dframes.data(), dspec.data(), m.dft.data(), rows, W, 2 * F, false, true, 1.0f, 0.0f);  // dspec·dftᵀ
    parallel_ranges(spectral_threads(ctx, nb * T * reach), nb * segs, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i) {  // segments write disjoint ranges of dx, each in ascending frame order
        const int64_t b = i / segs, s = i % segs, t0 = s * hop, len = std::min(hop, T - t0);
        float* out = dx + (b0 + b) * T + t0;
        for (int64_t f = std::max<int64_t>(0, s - reach + 1); f <= std::min(frames - 1, s); ++f) {
          const int64_t n0 = (s - f) * hop, n = std::min(len, W - n0);
          const float* src = dframes.data() + (b * frames + f) * W + n0;
          for (int64_t j = 0; j < n; ++j) out[j] += src[j];
        }
      }
    });
  }
}

}  // namespace tritter
