// Training an audio codec of the EnCodec family from scratch (no pretrained codec can be downloaded here): the
// SEANet encoder and decoder of audio/seanet.h, trained on reconstruction (waveform L1 plus a multi-scale log-mel
// distance) with a residual vector quantizer whose codebooks follow exponential moving averages of the vectors
// assigned to them (EnCodec's EMA rule), dead codes restarted from the batch, a commitment loss, and the number of
// codebooks drawn per step from the target bandwidths so one model serves every bitrate. The result is a Hugging
// Face EnCodec folder (config.json + model.safetensors, transformers' names), so `tritter audio encode|decode` and
// transformers' EncodecModel both load it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "audio/encodec.h"
#include "core/context.h"
#include "core/rng.h"
#include "kernels/spectral.h"

namespace tritter::audio {

struct CodecTrainOptions {
  EncodecConfig config;          // the architecture; tiny_codec_config() by default in the CLI
  int64_t steps = 2000;
  int64_t batch = 8;             // clips per step
  double clip_seconds = 1.0;     // rounded to whole frames
  double lr = 1e-3;              // Adam (β 0.5, 0.9: EnCodec's), warmup then cosine to lr/10
  int64_t warmup = 100;
  double grad_clip = 1.0;        // global norm; 0 disables
  double weight_time = 1.0;      // λ_t · mean |x̂ − x|
  double weight_mel = 1.0;       // λ_f · mean over scales of mean |log10(M̂ + ε) − log10(M + ε)|
  double weight_commit = 1.0;    // λ_w · mean over the active codebooks of mean (r − sg(q(r)))²
  double ema_decay = 0.99;
  double dead_code_threshold = 0.1;  // EMA count below which a code is restarted from the batch (a restart sets
                                     // 1, so a code unused for ~230 steps at decay 0.99)
  int codebooks = -1;            // −1: drawn per step from the target bandwidths; 0: no quantizer (an
                                 // autoencoder, e.g. to pretrain); n: always n
  int64_t warm_start = 0;        // steps without the quantizer first (a plain autoencoder): the waveform is
                                 // learned far sooner that way, and the codebooks then start from its latents
  uint64_t seed = 0;
};

// A small codec for the 2-core machines this project trains on: 8 filters, the 24 kHz model's ratios, 1 residual
// layer, a 1-layer LSTM, 64-dimensional latents, 1024-entry codebooks, 1.5–12 kbps.
EncodecConfig tiny_codec_config();

// Mono signals at the codec's rate, cut into random clips.
struct AudioClips {
  std::vector<std::vector<float>> signals;
  // (batch, samples) drawn uniformly: a signal by length-weighted choice, then an offset; signals shorter than a
  // clip are zero-padded at the end.
  std::vector<float> sample(Rng& rng, int64_t batch, int64_t samples) const;
};

struct CodecStepStats {
  double loss = 0, time_l1 = 0, mel = 0, commit = 0, grad_norm = 0, lr = 0;
  int codebooks = 0;         // drawn for this step
  int64_t restarted = 0;     // dead codes restarted, all codebooks
};

class CodecTrainer {
 public:
  CodecTrainer(const CodecTrainOptions& opt, Context& ctx);  // fresh parameters (PyTorch's default initializations)
  // The run saved in `dir` by save(); the options' steps, lr and the like may change, the architecture comes from
  // the folder.
  static CodecTrainer resume(const std::string& dir, const CodecTrainOptions& opt, Context& ctx);

  // One optimizer step on clips (batch, samples); samples must be a whole number of frames.
  CodecStepStats step(const std::vector<float>& clips, int64_t batch, int64_t samples);
  int64_t steps_done() const { return step_; }
  int64_t clip_samples() const;  // clip_seconds at the codec's rate, in whole frames (at least 8)
  // The activations and tapes of one step, estimated: ~160 B per filter per sample of the batch (measured 30 MB a
  // clip-second at 8 filters).
  double step_bytes() const;
  const CodecTrainOptions& options() const { return opt_; }
  // The run's random state (code restarts, codebook draws): clips drawn from it make a resumed run the same as an
  // uninterrupted one, since save() keeps it.
  Rng& rng() { return rng_; }

  Encodec codec() const;  // the current weights, as inference runs them
  // config.json, model.safetensors (transformers' names, with the codebooks' EMA buffers) and trainer_state.safetensors
  // (Adam moments, step, random state) into `dir`, each file written whole or not at all.
  void save(const std::string& dir) const;

  // The loss of the current parameters on clips with `codebooks` codebooks (0: the decoder reads the latents
  // unquantized, an autoencoder), each trained parameter's gradient left in its grad; the EMA update and the code
  // restarts only with update_codebooks. step() is this plus Adam; public for the tests.
  struct Param {
    std::string name;
    Shape shape;
    std::vector<float> value, grad, m, v;
    bool trained = true;  // false: an EMA buffer (codebooks), updated by the quantizer rule
  };
  double loss_and_grads(const std::vector<float>& clips, int64_t batch, int64_t samples, int codebooks,
                        bool update_codebooks, CodecStepStats* stats);
  std::vector<Param>& params() { return params_; }

 private:
  CodecTrainOptions opt_;
  Context& ctx_;
  std::vector<Param> params_;
  int64_t step_ = 0;
  Rng rng_;
  std::vector<MelBasis> scales_;  // the mel distance's, built at the first step
  Param& param(const std::string& name);
  const Param& param(const std::string& name) const;
};

// The mel distance's six scales: windows 32 … 1024 samples, hop a quarter window, 5 … 160 mel bands (fewer bands
// where a short window has few bins), as DAC's multi-scale mel loss.
std::vector<MelBasis> codec_mel_scales(double sample_rate);
// The mean over scales of mean |log10(M̂ + ε) − log10(M + ε)| (ε = 1e-5) between x and xh (B, T); scales longer
// than T are left out. With dxh non-null, weight × its gradient with respect to xh is added to dxh.
double codec_mel_distance(const Context& ctx, const std::vector<MelBasis>& scales, const float* x, const float* xh,
                          int64_t B, int64_t T, float* dxh, double weight);

// Reconstruction quality at one bitrate over whole signals: scale-invariant SNR in dB (the mean over signals), and
// the mean log-mel distance (the training term, 6 scales).
struct CodecQuality {
  double kbps = 0;
  int codebooks = 0;
  double si_snr_db = 0, mel_distance = 0;
};
std::vector<CodecQuality> evaluate_codec(const Context& ctx, const Encodec& codec,
                                         const std::vector<std::vector<float>>& signals);
// 10·log10(‖s‖² / ‖ŝ − s‖²) with s the projection of est on ref (both mean-removed); ref all zero is an Error.
double si_snr_db(const float* ref, const float* est, int64_t n);

}  // namespace tritter::audio
