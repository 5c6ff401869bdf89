// `tritter audio info FILES` (what each file holds, from its header) and `tritter audio convert IN OUT` (decode, mix to
// mono, resample to the codec's 24 kHz, write WAV/FLAC/OGG): the audio files the model's audio inputs are read as.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "commands.h"

namespace tritter::cli {

void add_audio_command(CLI::App& app, GlobalOptions& /*global*/) {
  auto* audio = app.add_subcommand("audio", "Audio files as the model reads them: inspect and convert");
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
}

}  // namespace tritter::cli
