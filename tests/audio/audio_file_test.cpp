// Audio files: WAV/FLAC/OGG round trips within the error each encoding allows, the mono mix, resampling that keeps a
// tone's frequency and level, and errors that name the file, the field and the values (corrupt, truncated, too
// long, wrong extension, non-finite samples), with an existing file left untouched by a failed write.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "core/error.h"
#include "util/test_util.h"

namespace tritter::audio {
namespace {
using test::error_of;
using test::TempDir;

std::vector<float> tone(double hz, int rate, int64_t frames, float amplitude) {
  std::vector<float> x(static_cast<size_t>(frames));
  for (int64_t t = 0; t < frames; ++t) {
    x[static_cast<size_t>(t)] = amplitude * static_cast<float>(std::sin(2 * std::numbers::pi * hz * t / rate));
  }
  return x;
}

// Amplitude of the `hz` component of x by least squares on sin and cos over the whole signal: 1 for a unit sine.
double amplitude_at(const std::vector<float>& x, double hz, int rate, size_t skip = 0) {
  double ss = 0, sc = 0, cc = 0, xs = 0, xc = 0;
  for (size_t t = skip; t + skip < x.size(); ++t) {
    const double s = std::sin(2 * std::numbers::pi * hz * static_cast<double>(t) / rate);
    const double c = std::cos(2 * std::numbers::pi * hz * static_cast<double>(t) / rate);
    ss += s * s, sc += s * c, cc += c * c, xs += x[t] * s, xc += x[t] * c;
  }
  const double det = ss * cc - sc * sc;
  const double a = (xs * cc - xc * sc) / det, b = (xc * ss - xs * sc) / det;
  return std::hypot(a, b);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}


TEST(AudioFile, PcmRoundTripsWithinHalfAStepOfSixteenBits) {
  TempDir dir;
  // Stereo: a 440 Hz tone at 0.5 and a ramp through the full range, including ±1 (clipped to the int16 range).
  const int rate = 24000;
  const int64_t frames = 4801;
  std::vector<float> x(static_cast<size_t>(2 * frames));
  const auto a = tone(440, rate, frames, 0.5f);
  for (int64_t t = 0; t < frames; ++t) {
    x[static_cast<size_t>(2 * t)] = a[static_cast<size_t>(t)];
    x[static_cast<size_t>(2 * t + 1)] = -1.0f + 2.0f * static_cast<float>(t) / static_cast<float>(frames - 1);
  }
  for (const char* ext : {".wav", ".flac"}) {
    const std::string path = (dir.path() / (std::string("x") + ext)).string();
    write_audio(path, x, rate, 2);
    const AudioInfo info = probe_audio(path);
    EXPECT_EQ(info.frames, frames);
    EXPECT_EQ(info.sample_rate, rate);
    EXPECT_EQ(info.channels, 2);
    EXPECT_EQ(info.encoding, "PCM_16");
    EXPECT_EQ(info.container, std::string(ext) == ".wav" ? "WAV" : "FLAC");
    const Audio back = read_audio(path, {.sample_rate = 0, .mono = false});
    ASSERT_EQ(back.channels, 2);
    ASSERT_EQ(back.samples.size(), x.size());
    // Levels q/32768, q ∈ [−32768, 32767], written as the nearest: |x̂ − x| ≤ half a step, except above the top
    // level, where x clips to 32767/32768 (+1 reads back 1/32768 low).
    for (size_t k = 0; k < x.size(); ++k) {
      const double top = 32767.0 / 32768.0;
      const double bound = x[k] > top ? x[k] - top : 0.5 / 32768.0;
      ASSERT_LE(std::fabs(back.samples[k] - x[k]), bound) << ext << " sample " << k << " of " << x[k];
    }
  }
}

TEST(AudioFile, VorbisKeepsAToneWithinAFewPercent) {
  TempDir dir;
  const int rate = 24000;
  const auto x = tone(440, rate, rate, 0.5f);
  const std::string path = (dir.path() / "x.ogg").string();
  write_audio(path, x, rate);
  const AudioInfo info = probe_audio(path);
  EXPECT_EQ(info.container, "OGG");
  EXPECT_EQ(info.encoding, "VORBIS");
  const Audio back = read_audio(path, {.sample_rate = 0});
  ASSERT_NEAR(static_cast<double>(back.frames()), static_cast<double>(x.size()), 0.0);
  // A lossy codec: the tone's level within 5 % and everything else (the residual) 30 dB below it.
  const double amp = amplitude_at(back.samples, 440, rate, 256);
  EXPECT_NEAR(amp, 0.5, 0.025);
  double err = 0, sig = 0;
  for (size_t t = 256; t + 256 < x.size(); ++t) {
    err += (back.samples[t] - x[t]) * (back.samples[t] - x[t]);
    sig += x[t] * x[t];
  }
  EXPECT_LT(10 * std::log10(err / sig), -30.0);
}

TEST(AudioFile, MonoIsTheMeanOfTheChannels) {
  const std::vector<float> st = {0.5f, -0.5f, 1.0f, 0.0f, -0.25f, -0.75f};
  EXPECT_EQ(downmix(st, 2), (std::vector<float>{0.0f, 0.5f, -0.5f}));
  EXPECT_EQ(downmix(st, 3), (std::vector<float>{1.0f / 3.0f, -1.0f / 3.0f}));
  TempDir dir;
  const std::string path = (dir.path() / "st.wav").string();
  write_audio(path, st, 8000, 2);
  const Audio m = read_audio(path, {.sample_rate = 0, .mono = true});
  ASSERT_EQ(m.channels, 1);
  ASSERT_EQ(m.samples.size(), 3u);
  for (size_t f = 0; f < 3; ++f) EXPECT_NEAR(m.samples[f], downmix(st, 2)[f], 1.0 / 32768) << f;
}

TEST(AudioFile, ResamplingKeepsFrequencyAndLevel) {
  // 1 kHz at 48 kHz → 24 kHz and 44.1 kHz → 24 kHz (a fractional ratio): the frame count is the ratio's, the tone
  // stays at 1 kHz at the same level (soxr's passband is flat to 0.01 dB: 0.1 % in amplitude; 0.5 % allowed), and
  // a tone above the new Nyquist (15 kHz from 48 kHz) is filtered out (below 1 % of its level).
  for (int from : {48000, 44100}) {
    const int64_t frames = from / 2;
    const auto x = tone(1000, from, frames, 0.5f);
    const std::vector<float> y = resample(x, 1, from, 24000);
    EXPECT_NEAR(static_cast<double>(y.size()), frames * 24000.0 / from, 1.0) << from;
    EXPECT_NEAR(amplitude_at(y, 1000, 24000, 200), 0.5, 0.0025) << from;
    EXPECT_LT(amplitude_at(y, 990, 24000, 200), 0.05) << from;  // no energy moved to a neighbouring frequency
  }
  const auto hi = tone(15000, 48000, 24000, 0.5f);
  EXPECT_LT(amplitude_at(resample(hi, 1, 48000, 24000), 15000 - 24000, 24000, 200), 0.005);
  double rms = 0;
  const auto y = resample(hi, 1, 48000, 24000);
  for (size_t t = 200; t + 200 < y.size(); ++t) rms += y[t] * y[t];
  EXPECT_LT(std::sqrt(rms / static_cast<double>(y.size() - 400)), 0.005);
  // read_audio resamples to the rate asked (24 kHz by default) after the mix.
  TempDir dir;
  const std::string path = (dir.path() / "48k.flac").string();
  write_audio(path, tone(1000, 48000, 48000, 0.5f), 48000);
  const Audio a = read_audio(path);
  EXPECT_EQ(a.sample_rate, 24000);
  EXPECT_NEAR(static_cast<double>(a.frames()), 24000.0, 1.0);
  EXPECT_NEAR(amplitude_at(a.samples, 1000, 24000, 200), 0.5, 0.0025);
}

TEST(AudioFile, BytesInMemoryReadAsTheFile) {
  TempDir dir;
  const std::string path = (dir.path() / "x.wav").string();
  write_audio(path, tone(300, 16000, 1600, 0.25f), 16000);
  const std::string bytes = slurp(path);
  const Audio a = read_audio_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "mem.wav",
                                   {.sample_rate = 0});
  const Audio b = read_audio(path, {.sample_rate = 0});
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(a.sample_rate, 16000);
}

TEST(AudioFile, BadFilesAreNamedWithWhatWasFound) {
  TempDir dir;
  const std::string missing = (dir.path() / "missing.wav").string();
  EXPECT_NE(error_of([&] { read_audio(missing); }).find("audio file '" + missing + "'"), std::string::npos);
  // Not audio at all.
  const std::string junk = (dir.path() / "junk.wav").string();
  std::ofstream(junk) << "this is not a RIFF header, just text that goes on for a while .......";
  const std::string m1 = error_of([&] { read_audio(junk); });
  EXPECT_NE(m1.find("audio file '" + junk + "': cannot be read as audio"), std::string::npos) << m1;
  // A WAV cut in the middle of its data.
  const std::string whole = (dir.path() / "whole.wav").string();
  write_audio(whole, tone(440, 24000, 24000, 0.5f), 24000);
  const std::string bytes = slurp(whole);
  const std::string cut = (dir.path() / "cut.wav").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const std::string m2 = error_of([&] { read_audio(cut, {.sample_rate = 0}); });
  // libsndfile either refuses the header or reads what is there: never more frames than the bytes hold.
  if (!m2.empty()) {
    EXPECT_NE(m2.find("audio file '" + cut + "'"), std::string::npos) << m2;
  } else {
    EXPECT_LE(read_audio(cut, {.sample_rate = 0}).frames(), static_cast<int64_t>(bytes.size() / 2 / 2));
  }
  // Too long for the limit: refused from the header, before decoding.
  const std::string m3 = error_of([&] { read_audio(whole, {.max_seconds = 0.5}); });
  EXPECT_NE(m3.find("length: found 1 s (24000 frames at 24000 Hz), expected at most 0.5 s"), std::string::npos) << m3;
  // A directory is not a file.
  EXPECT_NE(error_of([&] { read_audio(dir.path().string()); }).find("not a regular file"), std::string::npos);
  // A bad target rate.
  EXPECT_NE(error_of([&] { read_audio(whole, {.sample_rate = -5}); }).find("target sample rate: found -5 Hz"),
            std::string::npos);
}

TEST(AudioFile, BadWritesLeaveTheExistingFileAsItWas) {
  TempDir dir;
  const std::string path = (dir.path() / "keep.wav").string();
  write_audio(path, tone(440, 8000, 800, 0.5f), 8000);
  const std::string before = slurp(path);
  std::vector<float> bad = tone(440, 8000, 800, 0.5f);
  bad[123] = NAN;
  EXPECT_NE(error_of([&] { write_audio(path, bad, 8000); }).find("sample 123: found nan, expected a finite value"),
            std::string::npos);
  EXPECT_NE(error_of([&] { write_audio(path, std::vector<float>{0.1f, 0.2f, 0.3f}, 8000, 2); })
                .find("samples: found 3, expected a multiple of the 2 channels"),
            std::string::npos);
  EXPECT_NE(error_of([&] { write_audio(path, std::vector<float>{0.1f}, 0); }).find("sample rate: found 0 Hz"), std::string::npos);
  const std::string mp3 = (dir.path() / "x.mp3").string();
  EXPECT_NE(error_of([&] { write_audio(mp3, std::vector<float>{0.1f}, 8000); }).find("extension: found '.mp3', expected .wav, .flac or .ogg"),
            std::string::npos);
  EXPECT_EQ(slurp(path), before);
  EXPECT_FALSE(std::filesystem::exists(mp3));
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();  // no temporary left behind
  }
}

}  // namespace
}  // namespace tritter::audio

namespace tritter::audio {
namespace {

TEST(AudioCli, ConvertAndInfo) {
  test::TempDir dir;
  const std::string in = (dir.path() / "in.wav").string(), out = (dir.path() / "out.flac").string();
  std::vector<float> st(2 * 44100);
  for (size_t t = 0; t < st.size() / 2; ++t) st[2 * t] = st[2 * t + 1] = 0.25f * std::sin(0.05f * static_cast<float>(t));
  write_audio(in, st, 44100, 2);
  const test::CliResult r = test::run_cli("audio convert " + in + " " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const AudioInfo a = probe_audio(out);
  EXPECT_EQ(a.sample_rate, 24000);
  EXPECT_EQ(a.channels, 1);
  EXPECT_NEAR(static_cast<double>(a.frames), 24000.0, 1.0);
  const test::CliResult i = test::run_cli("audio info " + out);
  ASSERT_EQ(i.exit_code, 0) << i.output;
  EXPECT_NE(i.output.find("FLAC PCM_16, 24000 Hz, 1 channel, "), std::string::npos) << i.output;
  // A failed convert (too long for --max-seconds) exits non-zero, names the input and leaves OUT as it was.
  const std::string before = slurp(out);
  const test::CliResult bad = test::run_cli("audio convert " + in + " " + out + " --max-seconds 0.5");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("audio file '" + in + "': length: found 1 s"), std::string::npos) << bad.output;
  EXPECT_EQ(slurp(out), before);
}

}  // namespace
}  // namespace tritter::audio
