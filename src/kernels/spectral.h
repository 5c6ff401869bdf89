// Mel spectrogram, forward/backward: the audio codec's multi-scale spectral loss (one MelBasis per scale). Frames
// without centre padding, periodic Hann, |real DFT|, an HTK filterbank equal to torchaudio's melscale_fbanks(norm=None,
// mel_scale="htk"). Not here: the loss (log, L1/L2 over scales), centre padding (pad1d first), power spectra, Slaney
// mels, an FFT: the DFT is one gemm_f32 with a dense (window, 2F) basis over every frame, at BLAS speed for the
// loss's windows (an FFT does fewer flops at large windows: a later change with its benchmark). Reference tier:
// kernels/ref's direct double loops.
#pragma once
#include <cstdint>
#include <vector>

#include "core/context.h"

namespace tritter {

// The floor under the squared magnitude: |z| = sqrt(re² + im² + kMelEps) is ≥ 1e-5, so re/|z| stays finite.
inline constexpr double kMelEps = 1e-10;
// The largest window: the dense DFT basis is window·(window + 2) floats (1 GiB at this size).
inline constexpr int64_t kMelMaxWindow = 16384;

struct MelSpecConfig {
  int64_t window = 1024;  // frame length = DFT size (any size >= 2, not only powers of two)
  int64_t hop = 256;      // step between frames
  int64_t n_mels = 64;
  double sample_rate = 24000, f_min = 0, f_max = 0;  // f_max 0 = sample_rate / 2
};

// Precomputed once per scale (computed in double, stored rounded to float). F = bins = window/2 + 1.
struct MelBasis {
  MelSpecConfig cfg;  // as given, with f_max 0 resolved to sample_rate / 2
  int64_t bins = 0;   // F
  // dft (window, 2F): dft[n, k] = hann[n]·cos(2π·k·n/window), dft[n, F + k] = −hann[n]·sin(2π·k·n/window)
  std::vector<float> dft;
  // fbank (F, n_mels): column j is filter j's triangle over the bins, peak 1 at its centre, no area normalisation.
  // Bin k sits at k·⌊sr/2⌋/(F−1) Hz, torchaudio's linspace(0, sr // 2, F) (for an odd window that is not quite the
  // DFT's k·sr/window; kept so the filterbank is torchaudio's). A filter between two bins is a zero column.
  std::vector<float> fbank;
  std::vector<float> hann;  // (window) periodic Hann 0.5 − 0.5·cos(2π·n/window), folded into dft already
};

// Validates 2 <= window <= kMelMaxWindow, hop >= 1, n_mels >= 1, sample_rate > 0 and
// 0 <= f_min < f_max <= sample_rate/2, throwing an Error that names the value found otherwise.
MelBasis make_mel_basis(const MelSpecConfig& cfg);

// Frames of a length-T signal without centre padding: 1 + (T − window) / hop; T < window is an Error.
int64_t mel_frames(const MelBasis& m, int64_t T);

// Floats of each buffer of one call on (B, T) signals, for the caller to allocate.
struct MelSizes {
  int64_t frames = 0;  // per signal
  int64_t mel = 0;     // B·frames·n_mels
  int64_t spec = 0;    // B·frames·2F
  int64_t mag = 0;     // B·frames·F
};
MelSizes mel_spectrogram_sizes(const MelBasis& m, int64_t B, int64_t T);

// mel (B, frames, n_mels) = fbankᵀ·|DFT(hann · frame)| with |z| = sqrt(re² + im² + kMelEps) (the eps keeps the
// gradient finite at silence). Saves for the backward: spec (B·frames, 2F), re then im of each frame, and
// mag (B·frames, F). x (B, T). Overwrites mel, spec, mag; the results do not depend on ctx.threads.
void mel_spectrogram_forward(const Context& ctx, float* mel, float* spec, float* mag, const float* x,
                             const MelBasis& m, int64_t B, int64_t T);
// dx (B, T) += the gradient of dmel (B, frames, n_mels) back through the filterbank, the magnitude, the DFT and the
// framing (overlap-add). spec and mag are the forward's. Threaded over disjoint ranges of dx: the bits do not
// depend on ctx.threads.
void mel_spectrogram_backward(const Context& ctx, float* dx, const float* dmel, const float* spec, const float* mag,
                              const MelBasis& m, int64_t B, int64_t T);

}  // namespace tritter
