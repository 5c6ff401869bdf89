// `tritter audio info FILES` (what each file holds, from its header), `tritter audio convert IN OUT` (decode, mix to
// mono, resample to the codec's 24 kHz, write WAV/FLAC/OGG), and `tritter audio encode|decode` (samples <-> EnCodec
// codes with a Hugging Face EnCodec folder).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "audio/encodec.h"
#include "commands.h"
#include "core/error.h"
#include "core/memory.h"

namespace tritter::cli {

void add_audio_command(CLI::App& app, GlobalOptions& global) {
  auto* audio = app.add_subcommand("audio", "Audio files as the model reads them: inspect, convert, and EnCodec encode/decode");
  audio->require_subcommand(1);

  auto info_files = std::make_shared<std::vector<std::string>>();
  auto* info = audio->add_subcommand("info", "Print each file's container, encoding, rate, channels and length "
                                             "(from its header; nothing is decoded)");
  info->add_option("files", *info_files, "Audio files (WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF, ...)")->required();
  info->callback([info_files] {
    for (const std::string& f : *info_files) {
      const audio::AudioInfo a = audio::probe_audio(f);
      std::printf("%s: %s %s, %d Hz, %d channel%s, %lld frames (%.3f s)\n", f.c_str(), a.container.c_str(),
                  a.encoding.c_str(), a.sample_rate, a.channels, a.channels == 1 ? "" : "s",
                  static_cast<long long>(a.frames), a.seconds());
    }
  });

  struct ConvertArgs {
    std::string in, out;
    int rate = 24000;
    bool keep_channels = false;
    double max_seconds = 3600;
  };
  auto a = std::make_shared<ConvertArgs>();
  auto* convert = audio->add_subcommand(
      "convert", "Decode IN, mix it to mono and resample it (24 kHz, the EnCodec family's rate, by default), then write "
                 "OUT: .wav or .flac as 16-bit PCM (rounded to the nearest level, clipped to [-1, 1]), .ogg as Vorbis. "
                 "OUT appears whole or not at all");
  convert->add_option("in", a->in, "Input audio file")->required();
  convert->add_option("out", a->out, "Output file (.wav, .flac or .ogg)")->required();
  convert->add_option("--rate", a->rate, "Output sample rate in Hz; 0 keeps the input's")
      ->check(CLI::Range(0, audio::kMaxSampleRate))
      ->capture_default_str();
  convert->add_flag("--keep-channels", a->keep_channels, "Keep every channel instead of mixing to mono");
  convert->add_option("--max-seconds", a->max_seconds, "Refuse longer inputs (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  convert->callback([a] {
    const audio::Audio x =
        audio::read_audio(a->in, {.sample_rate = a->rate, .mono = !a->keep_channels, .max_seconds = a->max_seconds});
    audio::write_audio(a->out, x.samples, x.sample_rate, x.channels);
    std::printf("%s -> %s: %d Hz, %d channel%s, %lld frames (%.3f s)\n", a->in.c_str(), a->out.c_str(), x.sample_rate,
                x.channels, x.channels == 1 ? "" : "s", static_cast<long long>(x.frames()),
                static_cast<double>(x.frames()) / x.sample_rate);
  });

  struct CodecArgs {
    std::string model, in, out;
    double kbps = 6.0, max_seconds = 3600;
  };
  auto e = std::make_shared<CodecArgs>();
  auto* encode = audio->add_subcommand(
      "encode", "Audio file -> EnCodec codes: read IN (any format `info` reads), mix to mono, resample to the model's "
                "rate, run the encoder and the residual quantizer, and write the codes (a safetensors file: codes "
                "I32 [codebooks, frames])");
  encode->add_option("-m,--model", e->model, "A Hugging Face EnCodec folder (config.json, model.safetensors), e.g. "
                                             "a local copy of facebook/encodec_24khz")->required();
  encode->add_option("in", e->in, "Input audio file")->required();
  encode->add_option("-o,--out", e->out, "Output codes (.safetensors)")->required();
  encode->add_option("--bandwidth", e->kbps, "Target bandwidth in kbps: codebooks = bandwidth / (10 bits x frame "
                                             "rate); 24 kHz model: 1.5, 3, 6, 12 or 24 -> 2, 4, 8, 16, 32 codebooks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  encode->add_option("--max-seconds", e->max_seconds, "Refuse longer inputs (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  encode->callback([e, &global] {
    auto ctx = make_context(global);
    const audio::Encodec m = audio::Encodec::load(e->model);
    const int n_q = std::min(m.config().codebooks_for(e->kbps), m.codebooks());
    const audio::Audio x = audio::read_audio(e->in, {.sample_rate = m.config().sampling_rate, .mono = true,
                                                     .max_seconds = e->max_seconds});
    const auto t0 = std::chrono::steady_clock::now();
    audio::AudioCodes c;
    c.codes = m.encode(*ctx, x.samples.data(), x.frames(), n_q, &c.frames);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    c.n_q = n_q;
    c.sample_rate = x.sample_rate;
    c.samples = x.frames();
    audio::write_audio_codes(e->out, c);
    const double dur = static_cast<double>(x.frames()) / x.sample_rate;
    std::printf("%s -> %s: %.3f s of audio, %d codebooks x %lld frames (%.2f kbps), encoded in %.3f s (%.1fx real "
                "time)\n", e->in.c_str(), e->out.c_str(), dur, n_q, static_cast<long long>(c.frames),
                n_q * std::log2(static_cast<double>(m.config().codebook_size)) * m.config().frame_rate() / 1000.0, secs,
                dur / secs);
    if (global.verbose) std::printf("peak RSS %.1f MiB\n", static_cast<double>(process_memory().peak_rss_bytes) / (1 << 20));
  });

  auto d = std::make_shared<CodecArgs>();
  auto* decode = audio->add_subcommand("decode", "EnCodec codes -> audio file: sum each frame's codebook entries, run "
                                                 "the decoder and write OUT (.wav, .flac or .ogg)");
  decode->add_option("-m,--model", d->model, "The Hugging Face EnCodec folder the codes were made with")->required();
  decode->add_option("in", d->in, "Codes from `tritter audio encode`")->required();
  decode->add_option("-o,--out", d->out, "Output audio file")->required();
  decode->callback([d, &global] {
    auto ctx = make_context(global);
    const audio::Encodec m = audio::Encodec::load(d->model);
    const audio::AudioCodes c = audio::read_audio_codes(d->in);
    if (c.sample_rate != m.config().sampling_rate) {
      throw_error("audio decode: '", d->in, "': sampling_rate: found ", c.sample_rate, " Hz, expected the model's ",
                  m.config().sampling_rate, " ('", d->model, "')");
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> y = m.decode(*ctx, c.codes.data(), c.n_q, c.frames);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (static_cast<int64_t>(y.size()) > c.samples) y.resize(static_cast<size_t>(c.samples));  // the last frame's padding
    audio::write_audio(d->out, y, c.sample_rate);
    const double dur = static_cast<double>(y.size()) / c.sample_rate;
    std::printf("%s -> %s: %d codebooks x %lld frames -> %.3f s of audio, decoded in %.3f s (%.1fx real time)\n",
                d->in.c_str(), d->out.c_str(), c.n_q, static_cast<long long>(c.frames), dur, secs, dur / secs);
    if (global.verbose) std::printf("peak RSS %.1f MiB\n", static_cast<double>(process_memory().peak_rss_bytes) / (1 << 20));
  });
  add_codec_training_commands(audio, global);
}

}  // namespace tritter::cli
