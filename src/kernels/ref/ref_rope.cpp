// Reference RoPE scaling (kernels/ops.h rope_frequencies): Hugging Face's formulas transcribed array by array (its
// variable names, where-selects instead of branches), in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/ref/ref.h"

namespace tritter::ref {

RopeFrequencies rope_frequencies(int64_t dim, double base, const RopeScaling& s, int64_t max_position_embeddings,
                                 int64_t seq_len) {
  const size_t n = static_cast<size_t>(dim / 2);
  const double original_max = s.original_max_position_embeddings > 0
                                  ? static_cast<double>(s.original_max_position_embeddings)
                                  : static_cast<double>(max_position_embeddings);
  std::vector<double> arange(n);  // arange(0, dim, 2) / dim
  for (size_t i = 0; i < n; ++i) arange[i] = 2.0 * static_cast<double>(i) / static_cast<double>(dim);
  const auto default_inv_freq = [&](double b) {
    std::vector<double> inv(n);
    for (size_t i = 0; i < n; ++i) inv[i] = 1.0 / std::pow(b, arange[i]);
    return inv;
  };
  RopeFrequencies out;
  using T = RopeScaling::Type;
  if (s.type == T::None) {
    out.inv_freq = default_inv_freq(base);
  } else if (s.type == T::Linear) {
    out.inv_freq = default_inv_freq(base);
    for (double& v : out.inv_freq) v = v / s.factor;
  } else if (s.type == T::Dynamic) {
    const double L = std::max(static_cast<double>(seq_len), original_max);
    const double b = base * std::pow((s.factor * L / original_max) - (s.factor - 1.0),
                                     static_cast<double>(dim) / static_cast<double>(dim - 2));
    out.inv_freq = default_inv_freq(b);
  } else if (s.type == T::Yarn) {
    const auto get_mscale = [](double scale, double mscale) {
      return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
    };
    double attention_factor;
    if (s.attention_factor) attention_factor = *s.attention_factor;
    else if (s.mscale != 0 && s.mscale_all_dim != 0)
      attention_factor = get_mscale(s.factor, s.mscale) / get_mscale(s.factor, s.mscale_all_dim);
    else attention_factor = get_mscale(s.factor, 1.0);
    const auto find_correction_dim = [&](double num_rotations) {
      return (static_cast<double>(dim) * std::log(original_max / (num_rotations * 2.0 * M_PI))) / (2.0 * std::log(base));
    };
    double low = find_correction_dim(s.beta_fast), high = find_correction_dim(s.beta_slow);
    if (s.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;
    std::vector<double> pos_freqs(n), extrapolation(n), interpolation(n), ramp(n);
    for (size_t i = 0; i < n; ++i) {
      pos_freqs[i] = std::pow(base, arange[i]);
      extrapolation[i] = 1.0 / pos_freqs[i];
      interpolation[i] = 1.0 / (s.factor * pos_freqs[i]);
      ramp[i] = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    }
    out.inv_freq.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const double extrapolation_factor = 1.0 - ramp[i];
      out.inv_freq[i] = interpolation[i] * (1.0 - extrapolation_factor) + extrapolation[i] * extrapolation_factor;
    }
    out.attention_factor = attention_factor;
  } else {  // llama3
    const std::vector<double> inv_freq = default_inv_freq(base);
    const double low_freq_wavelen = original_max / s.low_freq_factor;
    const double high_freq_wavelen = original_max / s.high_freq_factor;
    std::vector<double> wavelen(n), llama(n);
    for (size_t i = 0; i < n; ++i) {
      wavelen[i] = 2.0 * M_PI / inv_freq[i];
      llama[i] = wavelen[i] > low_freq_wavelen ? inv_freq[i] / s.factor : inv_freq[i];
    }
    out.inv_freq.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const double smooth_factor =
          (original_max / wavelen[i] - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      const double smoothed = (1.0 - smooth_factor) * llama[i] / s.factor + smooth_factor * llama[i];
      const bool medium = !(wavelen[i] < high_freq_wavelen) && !(wavelen[i] > low_freq_wavelen);
      out.inv_freq[i] = medium ? smoothed : llama[i];
    }
  }
  return out;
}

}  // namespace tritter::ref
