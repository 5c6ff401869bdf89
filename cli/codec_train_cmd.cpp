// `tritter audio train-codec` (train a small EnCodec-family codec on audio files, checkpointed and resumable) and
// `tritter audio eval` (a codec's reconstruction quality per bitrate on audio files).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "audio/codec_train.h"
#include "audio/encodec.h"
#include "commands.h"
#include "core/error.h"
#include "core/memory.h"

namespace tritter::cli {

namespace {

// Audio files named, or found under named folders (recursively; by extension), in a stable order.
std::vector<std::string> audio_files(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  static const std::vector<std::string> exts = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"};
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec)) {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
        if (e.is_regular_file(ec) && std::find(exts.begin(), exts.end(), ext) != exts.end()) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) throw_error("audio: '", p, "': no audio files (.wav, .flac, .ogg, .opus, .mp3, .aiff) in this folder");
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(p);  // read_audio names it if it is missing or not audio
    }
  }
  return out;
}

std::vector<std::vector<float>> read_signals(const std::vector<std::string>& files, int rate, double max_seconds,
                                             double* seconds) {
  std::vector<std::vector<float>> signals;
  *seconds = 0;
  for (const std::string& f : files) {
    audio::Audio a = audio::read_audio(f, {.sample_rate = rate, .mono = true, .max_seconds = max_seconds});
    *seconds += static_cast<double>(a.frames()) / rate;
    signals.push_back(std::move(a.samples));
  }
  return signals;
}

void print_quality(const std::vector<audio::CodecQuality>& q, size_t files, double seconds) {
  std::printf("%zu file%s, %.1f s:\n%8s %10s %12s %14s\n", files, files == 1 ? "" : "s", seconds, "kbps", "codebooks",
              "SI-SNR (dB)", "mel distance");
  for (const auto& r : q) std::printf("%8.2f %10d %12.2f %14.4f\n", r.kbps, r.codebooks, r.si_snr_db, r.mel_distance);
}

}  // namespace

void add_codec_training_commands(CLI::App* audio, GlobalOptions& global) {
  struct TrainArgs {
    std::vector<std::string> data, eval;
    std::string out;
    audio::CodecTrainOptions opt;
    int filters = 8, latent = 64, codebook_size = 1024, lstm_layers = 1;
    std::vector<int> ratios = {8, 5, 4, 2};
    int64_t save_every = 200, log_every = 20;
    double max_seconds = 600;
    bool resume = false;
  };
  auto a = std::make_shared<TrainArgs>();
  auto* train = audio->add_subcommand(
      "train-codec",
      "Train an EnCodec-family codec (SEANet encoder/decoder, LSTM, residual vector quantizer) on audio files: "
      "waveform L1 + multi-scale log-mel distance + commitment, codebooks by EMA with dead codes restarted, the "
      "number of codebooks drawn per step from the target bandwidths. Writes a Hugging Face EnCodec folder "
      "(config.json, model.safetensors) that `audio encode|decode` read, checkpointed every --save-every steps; "
      "--resume continues it");
  train->add_option("data", a->data, "Audio files or folders (searched recursively), mixed to mono and resampled "
                                     "to 24 kHz")->required();
  train->add_option("-o,--out", a->out, "Output folder (replaced whole at each checkpoint)")->required();
  train->add_option("--eval", a->eval, "Held-out audio files or folders: quality per bitrate at the end");
  train->add_option("--steps", a->opt.steps, "Optimizer steps")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--batch", a->opt.batch, "Clips per step")->check(CLI::Range(1, 4096))->capture_default_str();
  train->add_option("--clip-seconds", a->opt.clip_seconds, "Clip length (rounded to whole 320-sample frames, at "
                                                          "least 8)")->check(CLI::Range(0.01, 60.0))->capture_default_str();
  train->add_option("--lr", a->opt.lr, "Peak learning rate (Adam, beta 0.5/0.9; warmup, then cosine to a tenth)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--warmup", a->opt.warmup, "Warmup steps (at most a tenth of --steps)")->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_option("--filters", a->filters, "Width of the first convolution (doubles at each downsampling; the "
                                             "published 24 kHz model has 32)")->check(CLI::Range(1, 256))->capture_default_str();
  train->add_option("--ratios", a->ratios, "Upsampling ratios of the decoder (the encoder downsamples by them in "
                                           "reverse); their product is the samples a frame")
      ->delimiter(',')->check(CLI::Range(1, 64))->capture_default_str();
  train->add_option("--latent-dim", a->latent, "Latent and codebook dimension")->check(CLI::Range(1, 1024))->capture_default_str();
  train->add_option("--codebook-size", a->codebook_size, "Entries per codebook (1024: 10 bits a code)")
      ->check(CLI::Range(2, 65536))->capture_default_str();
  train->add_option("--lstm-layers", a->lstm_layers, "LSTM layers in the encoder and in the decoder")->check(CLI::Range(1, 4))->capture_default_str();
  train->add_option("--weight-time", a->opt.weight_time, "Weight of the waveform L1")->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_option("--weight-mel", a->opt.weight_mel, "Weight of the log-mel distance")->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_option("--weight-commit", a->opt.weight_commit, "Weight of the commitment loss")->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_option("--codebooks", a->opt.codebooks, "Codebooks every step (0: no quantizer); by default drawn per "
                                                    "step from the target bandwidths")->check(CLI::Range(-1, 4096));
  train->add_option("--warm-start", a->opt.warm_start, "Steps without the quantizer first (a plain autoencoder); "
                                                     "the codebooks then start from its latents")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_option("--seed", a->opt.seed, "Initialization and sampling seed")->capture_default_str();
  train->add_option("--save-every", a->save_every, "Checkpoint every N steps (and at the end)")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--log-every", a->log_every, "Print the losses every N steps")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--max-seconds", a->max_seconds, "Refuse longer input files (0: no limit)")->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_flag("--resume", a->resume, "Continue the run saved in --out (its architecture; --steps may grow)");
  train->callback([a, &global] {
    auto ctx = make_context(global);
    audio::CodecTrainOptions opt = a->opt;
    opt.config = audio::tiny_codec_config();
    opt.config.num_filters = a->filters;
    opt.config.hidden_size = a->latent;
    opt.config.codebook_size = a->codebook_size;
    opt.config.num_lstm_layers = a->lstm_layers;
    if (a->ratios.empty() || a->ratios.size() > 8) throw_error("audio train-codec --ratios: found ", a->ratios.size(), " ratios, expected 1 to 8");
    opt.config.upsampling_ratios = a->ratios;
    const bool resuming = a->resume && std::filesystem::exists(std::filesystem::path(a->out) / "trainer_state.safetensors");
    if (a->resume && !resuming) {
      throw_error("audio train-codec --resume: '", a->out, "' holds no trainer_state.safetensors (no run to continue)");
    }
    if (!a->resume && std::filesystem::exists(a->out)) {
      throw_error("audio train-codec: '", a->out, "' exists; pass --resume to continue it or choose another --out");
    }
    audio::CodecTrainer trainer = resuming ? audio::CodecTrainer::resume(a->out, opt, *ctx) : audio::CodecTrainer(opt, *ctx);
    const audio::EncodecConfig& c = trainer.options().config;
    check_allocation(trainer.step_bytes(), "audio train-codec: a step on " + std::to_string(opt.batch) + " clips of " +
                                               std::to_string(opt.clip_seconds) + " s");
    double seconds = 0;
    const std::vector<std::string> files = audio_files(a->data);
    audio::AudioClips data;
    data.signals = read_signals(files, c.sampling_rate, a->max_seconds, &seconds);
    int64_t params = 0;
    for (const auto& p : trainer.params()) params += p.trained ? static_cast<int64_t>(p.value.size()) : 0;
    const int64_t T = trainer.clip_samples();
    std::string ratios;
    for (int r : c.upsampling_ratios) ratios += (ratios.empty() ? "" : "x") + std::to_string(r);
    std::printf("codec: %d filters, ratios %s (%lld samples a frame), %d-dim latents, %d codebooks of %d "
                "(%.2f-%.2f kbps); %lld trained parameters\n",
                c.num_filters, ratios.c_str(), static_cast<long long>(c.hop()), c.hidden_size, c.max_codebooks(),
                c.codebook_size, c.target_bandwidths.front(), c.target_bandwidths.back(), static_cast<long long>(params));
    std::printf("data: %zu files, %.1f s; %lld clips of %.3f s a step; %s step %lld of %lld\n", files.size(), seconds,
                static_cast<long long>(opt.batch), static_cast<double>(T) / c.sampling_rate,
                resuming ? "resuming at" : "starting at", static_cast<long long>(trainer.steps_done() + 1),
                static_cast<long long>(opt.steps));
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t first = trainer.steps_done();
    audio::CodecStepStats sum;
    int64_t n = 0;
    while (trainer.steps_done() < opt.steps) {
      const audio::CodecStepStats s = trainer.step(data.sample(trainer.rng(), opt.batch, T), opt.batch, T);
      sum.loss += s.loss, sum.time_l1 += s.time_l1, sum.mel += s.mel, sum.commit += s.commit, sum.restarted += s.restarted;
      ++n;
      const int64_t done = trainer.steps_done();
      if (done % a->log_every == 0 || done == opt.steps) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double per = el / static_cast<double>(done - first);
        std::printf("step %6lld  loss %.4f  L1 %.4f  mel %.4f  commit %.5f  restarts %lld  lr %.2e  %.2f s/step  "
                    "eta %.0f s\n", static_cast<long long>(done), sum.loss / n, sum.time_l1 / n, sum.mel / n,
                    sum.commit / n, static_cast<long long>(sum.restarted), s.lr, per,
                    per * static_cast<double>(opt.steps - done));
        std::fflush(stdout);
        sum = {};
        n = 0;
      }
      if (done % a->save_every == 0 || done == opt.steps) trainer.save(a->out);
    }
    if (trainer.steps_done() == first) {
      std::printf("%s is at step %lld already: raise --steps to train further\n", a->out.c_str(),
                  static_cast<long long>(first));
    } else {
      std::printf("saved %s (step %lld)\n", a->out.c_str(), static_cast<long long>(trainer.steps_done()));
    }
    if (!a->eval.empty()) {
      double eval_seconds = 0;
      const std::vector<std::string> eval_files = audio_files(a->eval);
      const auto held = read_signals(eval_files, c.sampling_rate, a->max_seconds, &eval_seconds);
      std::printf("held-out ");
      print_quality(audio::evaluate_codec(*ctx, trainer.codec(), held), eval_files.size(), eval_seconds);
    }
    if (global.verbose) std::printf("peak RSS %.1f MiB\n", static_cast<double>(process_memory().peak_rss_bytes) / (1 << 20));
  });

  struct EvalArgs {
    std::string model;
    std::vector<std::string> files;
    double max_seconds = 600;
  };
  auto e = std::make_shared<EvalArgs>();
  auto* eval = audio->add_subcommand("eval", "Reconstruction quality of an EnCodec folder at each of its target "
                                             "bandwidths: encode, decode, and compare with the input (scale-invariant "
                                             "SNR in dB, higher is better; log-mel distance, lower is better)");
  eval->add_option("-m,--model", e->model, "A Hugging Face EnCodec folder (e.g. from `audio train-codec`)")->required();
  eval->add_option("files", e->files, "Audio files or folders")->required();
  eval->add_option("--max-seconds", e->max_seconds, "Refuse longer files (0: no limit)")->check(CLI::NonNegativeNumber)->capture_default_str();
  eval->callback([e, &global] {
    auto ctx = make_context(global);
    const audio::Encodec m = audio::Encodec::load(e->model);
    const std::vector<std::string> files = audio_files(e->files);
    double seconds = 0;
    const auto signals = read_signals(files, m.config().sampling_rate, e->max_seconds, &seconds);
    print_quality(audio::evaluate_codec(*ctx, m, signals), files.size(), seconds);
    if (global.verbose) std::printf("peak RSS %.1f MiB\n", static_cast<double>(process_memory().peak_rss_bytes) / (1 << 20));
  });
}

}  // namespace tritter::cli
