// Audio files in and out: WAV, FLAC, OGG (Vorbis or Opus), MP3 and the other containers libsndfile reads, decoded to
// float samples, mixed down to mono and resampled (libsoxr, its very-high-quality filter) to the rate a codec
// expects (24 kHz for the EnCodec family). Writes 16-bit WAV/FLAC or Vorbis OGG, atomically. Every failure is an
// Error naming the file, the field, the value found and the one expected.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tritter::audio {

// What a file holds, as its header says (nothing decoded).
struct AudioInfo {
  int64_t frames = 0;        // samples per channel
  int sample_rate = 0;       // Hz
  int channels = 0;
  std::string container;     // "WAV", "FLAC", "OGG", "MPEG", ...
  std::string encoding;      // "PCM_16", "FLOAT", "VORBIS", ...
  double seconds() const { return sample_rate > 0 ? static_cast<double>(frames) / sample_rate : 0.0; }
};

struct ReadOptions {
  int sample_rate = 24000;     // resample to this rate; 0 keeps the file's
  bool mono = true;            // average the channels; false keeps them interleaved
  double max_seconds = 3600;   // longer files are refused before anything is decoded (0: no limit)
};

// Samples as floats in [−1, 1] (a float file may exceed it), interleaved (frames, channels).
struct Audio {
  std::vector<float> samples;
  int sample_rate = 0;
  int channels = 0;
  int64_t frames() const { return channels > 0 ? static_cast<int64_t>(samples.size()) / channels : 0; }
};

inline constexpr int kMaxSampleRate = 768000;  // the largest rate read or written (Hz)
inline constexpr int kMaxChannels = 64;

AudioInfo probe_audio(const std::string& path);
Audio read_audio(const std::string& path, const ReadOptions& options = {});
// The same from bytes in memory (a file's contents); `name` stands for the file in errors.
Audio read_audio_bytes(std::span<const uint8_t> bytes, const std::string& name, const ReadOptions& options = {});

// Writes interleaved samples (frames, channels) to `path`, the format chosen by its extension: .wav and .flac as
// 16-bit PCM (samples clipped to [−1, 1]), .ogg as Vorbis. The file appears whole or not at all: it is encoded in memory and
// written by io's atomic writer, so an existing file is untouched on failure. Non-finite samples are an Error.
void write_audio(const std::string& path, std::span<const float> samples, int sample_rate, int channels = 1);

// Interleaved (frames, channels) at `from_rate` → (frames', channels) at `to_rate`, frames' ≈ frames·to/from as soxr
// gives it once flushed; its very-high-quality filter (28-bit precision, the band kept up to 91.3 % of the lower
// Nyquist).
std::vector<float> resample(std::span<const float> samples, int channels, int from_rate, int to_rate);
// Interleaved (frames, channels) → (frames) mono: the mean of the channels.
std::vector<float> downmix(std::span<const float> samples, int channels);

}  // namespace tritter::audio
