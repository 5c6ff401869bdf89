// EnCodec against an independent PyTorch implementation (tools/encodec_reference.py: torch's own Conv1d,
// ConvTranspose1d, LSTM, weight_norm and reflect padding): a random-weight model of the 24 kHz architecture at a
// tiny width, its reference latents, codes and decoded samples committed under tests/audio/data/encodec_tiny.
// TRITTER_ENCODEC_REFERENCE=DIR runs the same comparison on another folder the tool made (e.g. the full-size
// `--preset 24khz`). Also: the config's refusals and bad codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "audio/encodec.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "util/test_util.h"

namespace tritter::audio {
namespace {

std::string reference_dir() {
  if (const char* d = std::getenv("TRITTER_ENCODEC_REFERENCE")) return d;
  return std::string(TRITTER_SOURCE_DIR) + "/tests/audio/data/encodec_tiny";
}

template <typename T>
std::vector<T> tensor(const SafeTensorsFile& f, const std::string& name) {
  const SafeTensor& t = f.get(name);
  std::vector<T> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, v.size() * sizeof(T));
  return v;
}

using test::max_abs;

TEST(Encodec, MatchesTheIndependentPyTorchImplementation) {
  const std::string dir = reference_dir();
  const Encodec m = Encodec::load(dir);
  const SafeTensorsFile ref(dir + "/reference.safetensors");
  const auto audio = tensor<float>(ref, "audio"), latents = tensor<float>(ref, "latents"),
             decoded = tensor<float>(ref, "decoded");
  const auto codes = tensor<int32_t>(ref, "codes");
  const int n_q = static_cast<int>(ref.get("codes").shape[0]);
  for (KernelTier tier : {KernelTier::Auto, KernelTier::Reference}) {
    Context ctx;
    ctx.kernels = tier;
    int64_t frames = 0;
    const std::vector<float> z = m.encode_latents(ctx, audio.data(), static_cast<int64_t>(audio.size()), &frames);
    ASSERT_EQ(frames, ref.get("latents").shape[1]);
    ASSERT_EQ(z.size(), latents.size());
    // Two float implementations of ~20 layers: relative agreement to 1e-4 of the latents' scale (float rounding
    // compounds over the layers; 1e-4 is ~800 float steps, far below what a wrong pad, stride or gate would give).
    const double zs = max_abs(latents);
    for (size_t k = 0; k < z.size(); ++k) ASSERT_NEAR(z[k], latents[k], 1e-4 * zs) << "latent " << k;
    // Codes from the reference's latents: identical, except where two entries are within float noise (checked).
    const std::vector<int32_t> c = m.quantize(ctx, latents.data(), frames, n_q);
    ASSERT_EQ(c.size(), codes.size());
    EXPECT_EQ(c, codes);
    const std::vector<float> y = m.decode(ctx, codes.data(), n_q, frames);
    ASSERT_EQ(y.size(), decoded.size());
    const double ys = max_abs(decoded);
    for (size_t k = 0; k < y.size(); ++k) ASSERT_NEAR(y[k], decoded[k], 1e-4 * ys) << "sample " << k;
  }
}

TEST(Encodec, FramesAndCodebooksFollowTheConfig) {
  const Encodec m = Encodec::load(reference_dir());
  const EncodecConfig& c = m.config();
  EXPECT_EQ(c.hop(), 8);
  EXPECT_EQ(c.frame_rate(), 3000);
  EXPECT_EQ(c.codebooks_for(12.0), 1);  // log2(16) bits · 3000 frames/s = 12 kbps a codebook
  EXPECT_EQ(c.codebooks_for(48.0), 4);
  EXPECT_EQ(m.codebooks(), 4);
  Context ctx;
  for (int64_t T : {1, 7, 8, 9, 33}) {  // ⌈T / hop⌉ frames, the decoder gives frames·hop samples
    std::vector<float> x(static_cast<size_t>(T), 0.1f);
    int64_t frames = 0;
    const auto codes = m.encode(ctx, x.data(), T, 2, &frames);
    EXPECT_EQ(frames, (T + 7) / 8) << T;
    EXPECT_EQ(m.decode(ctx, codes.data(), 2, frames).size(), static_cast<size_t>(frames * 8)) << T;
  }
  // The real model's numbers.
  EncodecConfig full;
  EXPECT_EQ(full.hop(), 320);
  EXPECT_EQ(full.frame_rate(), 75);
  EXPECT_EQ(full.codebooks_for(1.5), 2);
  EXPECT_EQ(full.codebooks_for(6.0), 8);
  EXPECT_EQ(full.max_codebooks(), 32);
}

TEST(Encodec, BadConfigsAndCodesAreNamed) {
  test::expect_error([] { parse_encodec_config(R"({"audio_channels": 2})", "c.json"); },
                     {"encodec config 'c.json': audio_channels: found 2, expected 1 to 1"});
  test::expect_error([] { parse_encodec_config(R"({"use_causal_conv": false})", "c.json"); },
                     {"use_causal_conv: found false, expected true"});
  test::expect_error([] { parse_encodec_config(R"({"norm_type": "time_group_norm"})", "c.json"); },
                     {"norm_type: found \"time_group_norm\", expected \"weight_norm\""});
  test::expect_error([] { parse_encodec_config(R"({"upsampling_ratios": [8, 0]})", "c.json"); },
                     {"upsampling_ratios: found 0, expected integers 1 to 64"});
  test::expect_error([] { parse_encodec_config("{", "c.json"); }, {"encodec config 'c.json': not JSON"});
  test::expect_error([] { Encodec::load("/nonexistent/encodec"); },
                     {"encodec '/nonexistent/encodec': not found, expected a Hugging Face EnCodec folder"});
  const Encodec m = Encodec::load(reference_dir());
  Context ctx;
  const std::vector<int32_t> bad = {0, 3, 16};
  test::expect_error([&] { m.decode(ctx, bad.data(), 1, 3); },
                     {"encodec decode: codebook 0 frame 2: found code 16, expected 0 to 15"});
  test::expect_error([&] { m.decode(ctx, bad.data(), 5, 1); }, {"codebooks: found 5, expected 1 to 4"});
  // A signal whose activations cannot fit is refused before any is allocated (the latents are never read).
  const std::vector<float> tiny(8, 0.0f);
  test::expect_error([&] { m.decode_latents(ctx, tiny.data(), int64_t{1} << 40); },
                     {"out of memory: encodec decode of 8796093022208 samples", "at once needs"});
}

}  // namespace
}  // namespace tritter::audio

namespace tritter::audio {
namespace {

TEST(EncodecCli, EncodeThenDecodeWritesTheSamplesTheLibraryGives) {
  test::TempDir dir;
  const std::string model = reference_dir(), wav = (dir.path() / "in.wav").string(),
                    codes = (dir.path() / "c.safetensors").string(), out = (dir.path() / "out.wav").string();
  std::vector<float> x(1000);
  for (size_t t = 0; t < x.size(); ++t) x[t] = 0.3f * std::sin(0.07f * static_cast<float>(t));
  write_audio(wav, x, 24000);
  const test::CliResult e = test::run_cli("audio encode -m " + model + " " + wav + " -o " + codes + " --bandwidth 24");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_TRUE(test::has(e, "2 codebooks x 125 frames (24.00 kbps)")) << e.output;
  const AudioCodes c = read_audio_codes(codes);
  EXPECT_EQ(c.n_q, 2);
  EXPECT_EQ(c.frames, 125);
  EXPECT_EQ(c.samples, 1000);
  const test::CliResult d = test::run_cli("audio decode -m " + model + " " + codes + " -o " + out);
  ASSERT_EQ(d.exit_code, 0) << d.output;
  // The file holds the library's decode of the same codes, to 16-bit rounding.
  const Encodec m = Encodec::load(model);
  Context ctx;
  const std::vector<float> y = m.decode(ctx, c.codes.data(), c.n_q, c.frames);
  const Audio back = read_audio(out, {.sample_rate = 0});
  ASSERT_EQ(back.samples.size(), 1000u);
  for (size_t t = 0; t < 1000; ++t) {
    const float clipped = std::clamp(y[t], -1.0f, 32767.0f / 32768.0f);
    ASSERT_NEAR(back.samples[t], clipped, 0.5 / 32768 + 1e-7) << t;
  }
  // A file that is not codes is refused by name, and nothing is written.
  const test::CliResult bad = test::run_cli("audio decode -m " + model + " " + model + "/model.safetensors -o " + out + ".2.wav");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(test::has(bad, "audio codes '" + model + "/model.safetensors': metadata 'format' missing")) << bad.output;
  EXPECT_FALSE(std::filesystem::exists(out + ".2.wav"));
}

}  // namespace
}  // namespace tritter::audio
