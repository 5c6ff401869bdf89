// The codec trainer: the SEANet backward and the whole loss's gradient against finite differences, the EMA codebook
// rule (a Lloyd step: it never raises the quantization error), learning on synthetic tones, bit-exact resume, the
// saved folder as an EnCodec, SI-SNR's definition, and refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "audio/audio_file.h"
#include "audio/codec_train.h"
#include "audio/seanet.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/test_util_kernels.h"
#include "util/test_util.h"

namespace tritter::audio {
namespace {

// hop 4, 2 filters, 4-dimensional latents, 16-entry codebooks: every layer kind, small enough for finite differences.
EncodecConfig codec_test_config() {
  EncodecConfig c;
  c.num_filters = 2;
  c.upsampling_ratios = {2, 2};
  c.num_residual_layers = 1;
  c.num_lstm_layers = 2;
  c.hidden_size = 4;
  c.codebook_size = 16;
  c.sampling_rate = 8000;
  c.trim_right_ratio = 0.5;  // trims on both sides (the published models trim on the right only)
  c.target_bandwidths = {8.0, 16.0, 32.0};  // log2(16)·2000 frames/s = 8 kbps a codebook: 1, 2, 4 codebooks
  return c;
}

// Two sines of random frequency and amplitude, a little noise: what the codec learns in the tests.
std::vector<float> codec_test_tones(Rng& rng, int64_t n, double rate) {
  std::vector<float> x(static_cast<size_t>(n));
  const double f1 = 100 + 900 * rng.uniform_double(), f2 = 100 + 1500 * rng.uniform_double();
  const double a1 = 0.1 + 0.3 * rng.uniform_double(), a2 = 0.2 * rng.uniform_double();
  for (int64_t t = 0; t < n; ++t) {
    const double s = static_cast<double>(t) / rate;
    x[t] = static_cast<float>(a1 * std::sin(2 * M_PI * f1 * s) + a2 * std::sin(2 * M_PI * f2 * s) + 0.01 * rng.normal());
  }
  return x;
}

// B signals of T samples, one after another (B, T).
std::vector<float> codec_test_batch(Rng& rng, int64_t B, int64_t T, double rate) {
  std::vector<float> clips;
  for (int64_t b = 0; b < B; ++b) {
    const auto s = codec_test_tones(rng, T, rate);
    clips.insert(clips.end(), s.begin(), s.end());
  }
  return clips;
}

double codec_test_dot(const std::vector<float>& a, const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * w[i];
  return s;
}

TEST(SeanetBackward, MatchesFiniteDifferencesThroughBothStacks) {
  Context ctx;
  ctx.kernels = KernelTier::Reference;  // double sums: the finite differences see only the float rounding of values
  CodecTrainOptions opt;
  opt.config = codec_test_config();
  CodecTrainer trainer(opt, ctx);
  const Encodec codec = trainer.codec();
  const int64_t B = 2;
  for (const bool decoder : {false, true}) {
    const Seanet& net0 = decoder ? codec.decoder() : codec.encoder();
    const int64_t C = decoder ? opt.config.hidden_size : 1, L0 = decoder ? 10 : 40;
    const std::vector<float> x = test::randn(B * C * L0, 7, 0.5f);
    auto forward = [&](const Seanet& net, const std::vector<float>& in, SeanetTape* tape) {
      int64_t L = L0;
      return seanet_forward(ctx, net, in, B, C, &L, opt.config.trim_right_ratio, tape);
    };
    SeanetTape tape;
    const std::vector<float> y = forward(net0, x, &tape);
    const std::vector<float> w = test::randn(static_cast<int64_t>(y.size()), 11);  // loss = Σ w·y
    Seanet grads = seanet_zeros_like(net0);
    const std::vector<float> dx = seanet_backward(ctx, net0, tape, w, &grads);
    // Central differences with step h on a loss of O(10) computed from float outputs: rounding ~Σ|w·y|·2⁻²⁴/h ≈ 3e-4
    // (the bound allows 2e-3); truncation O(h²·f''') except where an ELU input lies within h of 0 (ELU'' jumps
    // there): 1 % of the slope covers that at h = 2e-3 (at 1e-2 it reached 4.5 % on a bias feeding a whole row).
    const double h = 2e-3;
    auto check = [&](float* p, double analytic, const std::string& what, const Seanet& net, const std::vector<float>& in) {
      const float keep = *p;
      *p = keep + static_cast<float>(h);
      const double up = codec_test_dot(forward(net, in, nullptr), w);
      *p = keep - static_cast<float>(h);
      const double down = codec_test_dot(forward(net, in, nullptr), w);
      *p = keep;
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(analytic, fd, 2e-3 + 1e-2 * std::fabs(fd)) << (decoder ? "decoder " : "encoder ") << what;
    };
    std::vector<float> xin = x;
    for (size_t i : {size_t{0}, x.size() / 3, x.size() - 1}) check(&xin[i], dx[i], "dx[" + std::to_string(i) + "]", net0, xin);
    Seanet net = net0;
    for (size_t li = 0; li < net.size(); ++li) {
      SeanetLayer& l = net[li];
      const SeanetLayer& g = grads[li];
      const std::string at = "layer " + std::to_string(li);
      auto conv = [&](SeanetConv& c, const SeanetConv& gc, const char* which) {
        if (c.cin == 0) return;
        for (size_t i : {size_t{0}, c.w.size() / 2, c.w.size() - 1}) check(&c.w[i], gc.w[i], at + which + " w", net, x);
        check(&c.b.back(), gc.b.back(), at + which + " b", net, x);
      };
      if (l.kind == SeanetLayer::kConv) conv(l.conv, g.conv, "");
      if (l.kind == SeanetLayer::kResBlock) {
        conv(l.res_a, g.res_a, " a");
        conv(l.res_b, g.res_b, " b");
        conv(l.shortcut, g.shortcut, " shortcut");
      }
      if (l.kind == SeanetLayer::kLstm) {
        for (size_t n = 0; n < l.lstm.w_ih.size(); ++n) {
          check(&l.lstm.w_ih[n][3], g.lstm.w_ih[n][3], at + " lstm w_ih", net, x);
          check(&l.lstm.w_hh[n][5], g.lstm.w_hh[n][5], at + " lstm w_hh", net, x);
          // Both biases have the gradient the stack keeps in b_ih.
          check(&l.lstm.b_hh[n][1], g.lstm.b_ih[n][1], at + " lstm b_hh", net, x);
        }
      }
    }
  }
}

TEST(CodecTrainer, LossGradientMatchesFiniteDifferences) {
  // Without the quantizer (codebooks = 0) the loss is a function of the parameters: the gradient of every g, v,
  // bias and LSTM weight, through the weight norm, the stacks and each loss term in turn (waveform L1, mel
  // distance), against a central difference along a random direction. Each |·| term is a kink: a step h moves the
  // difference by ~h·Σ(terms within h of their kink)·slope, so h must be small — at h = 1e-3 the difference was 43 %
  // off, at 1e-4 0.02 %, at 3e-5 exact to 4 digits; float rounding of the loss (~1e-9) over 2h adds < 1e-4.
  for (const bool mel : {false, true}) {
    Context ctx;
    ctx.kernels = KernelTier::Reference;
    CodecTrainOptions opt;
    opt.config = codec_test_config();
    opt.weight_time = mel ? 0.0 : 1.0;
    opt.weight_mel = mel ? 1.0 : 0.0;
    CodecTrainer trainer(opt, ctx);
    Rng rng(3);
    const int64_t B = 2, T = 4 * 40;
    const std::vector<float> clips = codec_test_batch(rng, B, T, opt.config.sampling_rate);
    trainer.loss_and_grads(clips, B, T, 0, false, nullptr);
    std::vector<std::vector<float>> dir;
    double slope = 0;
    uint64_t seed = 100;
    for (auto& p : trainer.params()) {
      if (!p.trained) continue;
      dir.push_back(test::randn(static_cast<int64_t>(p.value.size()), seed++));
      slope += codec_test_dot(p.grad, dir.back());
    }
    auto shifted_loss = [&](double t) {
      std::vector<std::vector<float>> keep;
      size_t k = 0;
      for (auto& p : trainer.params()) {
        if (!p.trained) continue;
        keep.push_back(p.value);
        for (size_t i = 0; i < p.value.size(); ++i) p.value[i] += static_cast<float>(t * dir[k][i]);
        ++k;
      }
      const double l = trainer.loss_and_grads(clips, B, T, 0, false, nullptr);
      k = 0;
      for (auto& p : trainer.params())
        if (p.trained) p.value = keep[k++];
      return l;
    };
    const double h = 3e-5;
    const double fd = (shifted_loss(h) - shifted_loss(-h)) / (2 * h);
    EXPECT_NEAR(slope, fd, 1e-4 + 0.01 * std::fabs(fd)) << (mel ? "mel distance" : "waveform L1");
    EXPECT_GT(std::fabs(fd), 1e-3);  // 10× the absolute bound: the comparison is not 0 against 0
  }
}

TEST(CodecTrainer, MelDistanceGradientMatchesFiniteDifferences) {
  // The mel distance of a signal against a distorted copy, its gradient along a random direction of x̂ against a
  // central difference (Reference kernels: double sums). Kinks of |·| as above: at h = 1e-2 the difference was 25 %
  // off, at 1e-3 7 %, at 3e-5 0.01 %; the mel values are floats, so rounding (~3e-8 in a log) over 2h adds ~5e-4.
  Context ctx;
  ctx.kernels = KernelTier::Reference;
  const std::vector<MelBasis> scales = codec_mel_scales(8000);
  Rng rng(4);
  const int64_t B = 2, T = 1500;  // every scale up to 1024 samples
  const std::vector<float> x = codec_test_batch(rng, B, T, 8000);
  std::vector<float> xh;
  for (float v : x) xh.push_back(0.7f * v + 0.05f * rng.normal());
  std::vector<float> dxh(xh.size(), 0.0f);
  const double base = codec_mel_distance(ctx, scales, x.data(), xh.data(), B, T, dxh.data(), 1.0);
  EXPECT_GT(base, 0.05);
  EXPECT_EQ(codec_mel_distance(ctx, scales, x.data(), x.data(), B, T, nullptr, 1.0), 0.0);
  const std::vector<float> dir = test::randn(B * T, 8);
  const double slope = codec_test_dot(dxh, dir), h = 3e-5;
  auto at = [&](double t) {
    std::vector<float> y = xh;
    for (size_t i = 0; i < y.size(); ++i) y[i] += static_cast<float>(t * dir[i]);
    return codec_mel_distance(ctx, scales, x.data(), y.data(), B, T, nullptr, 1.0);
  };
  const double fd = (at(h) - at(-h)) / (2 * h);
  EXPECT_NEAR(slope, fd, 1e-3 + 0.01 * std::fabs(fd));
  EXPECT_GT(std::fabs(fd), 1e-2);
}

TEST(CodecTrainer, EmaUpdateNeverRaisesTheQuantizationError) {
  // With decay 0 each entry becomes the mean of the vectors assigned to it (Laplace smoothing aside: a factor
  // 1 − O(V·1e-5 / N)): one Lloyd step of k-means, which cannot raise the mean squared distance to the nearest entry.
  Context ctx;
  CodecTrainOptions opt;
  opt.config = codec_test_config();
  opt.ema_decay = 0;
  CodecTrainer trainer(opt, ctx);
  Rng rng(5);
  const int64_t B = 4, T = 4 * 64;
  const std::vector<float> clips = codec_test_batch(rng, B, T, opt.config.sampling_rate);
  CodecStepStats first, after;
  trainer.loss_and_grads(clips, B, T, 1, true, &first);  // restarts every code from the batch, then the EMA update
  EXPECT_EQ(first.restarted, opt.config.codebook_size);
  trainer.loss_and_grads(clips, B, T, 1, false, &after);  // the same latents against the updated entries
  EXPECT_LE(after.commit, first.commit * (1 + 1e-4));
  double counted = 0;
  for (const auto& p : trainer.params())
    if (p.name == "quantizer.layers.0.codebook.cluster_size")
      for (float c : p.value) counted += c;
  EXPECT_NEAR(counted, static_cast<double>(B * T / opt.config.hop()), 1e-3);  // decay 0: this batch's counts
}

TEST(CodecTrainer, LearnsToReconstructTonesAndResumesBitForBit) {
  Context ctx;
  CodecTrainOptions opt;
  opt.config = codec_test_config();
  opt.steps = 80;
  opt.batch = 4;
  opt.lr = 3e-3;
  opt.warmup = 10;
  opt.clip_seconds = 0.05;  // 400 samples, 100 frames
  Rng data_rng(9);
  AudioClips data;
  for (int i = 0; i < 16; ++i) data.signals.push_back(codec_test_tones(data_rng, 4000, opt.config.sampling_rate));
  std::vector<std::vector<float>> held_out;
  for (int i = 0; i < 4; ++i) held_out.push_back(codec_test_tones(data_rng, 2000, opt.config.sampling_rate));
  CodecTrainer trainer(opt, ctx);
  const int64_t T = trainer.clip_samples();
  ASSERT_EQ(T, 400);
  Rng batch_rng(1);
  // Steps 1 … 40, a save, then 41 … 80 in this trainer and in one resumed from the save: the same losses, bit for
  // bit (the random state, the moments and the EMA buffers are all in the folder).
  for (int s = 0; s < 40; ++s) trainer.step(data.sample(batch_rng, opt.batch, T), opt.batch, T);
  test::TempDir dir;
  const std::string saved = (dir.path() / "codec").string();
  trainer.save(saved);
  Rng resumed_rng = batch_rng;
  CodecTrainer resumed = CodecTrainer::resume(saved, opt, ctx);
  EXPECT_EQ(resumed.steps_done(), 40);
  for (int s = 40; s < opt.steps; ++s) {
    const CodecStepStats a = trainer.step(data.sample(batch_rng, opt.batch, T), opt.batch, T);
    const CodecStepStats b = resumed.step(data.sample(resumed_rng, opt.batch, T), opt.batch, T);
    ASSERT_EQ(a.loss, b.loss) << "step " << s + 1;
    ASSERT_EQ(a.codebooks, b.codebooks);
  }
  // Learning, on held-out tones at the largest bandwidth: the mel distance falls to under half the untrained one's
  // (measured: 3.09 → 0.29 in 80 steps) and the SI-SNR rises by 5 dB at least (−60 → −13 dB: the spectrum is
  // learned long before the waveform's phase).
  const std::vector<CodecQuality> before = evaluate_codec(ctx, CodecTrainer(opt, ctx).codec(), held_out);
  const std::vector<CodecQuality> after = evaluate_codec(ctx, trainer.codec(), held_out);
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after.back().codebooks, 4);
  EXPECT_GT(after.back().si_snr_db, before.back().si_snr_db + 5) << before.back().si_snr_db << " -> " << after.back().si_snr_db;
  EXPECT_LT(after.back().mel_distance, 0.5 * before.back().mel_distance);
  // The saved folder is an EnCodec: loaded by the inference path, it codes as the trainer's weights do.
  trainer.save(saved);
  const Encodec loaded = Encodec::load(saved);
  const Encodec mine = trainer.codec();
  int64_t f1 = 0, f2 = 0;
  EXPECT_EQ(loaded.encode(ctx, held_out[0].data(), 2000, 4, &f1), mine.encode(ctx, held_out[0].data(), 2000, 4, &f2));
}

TEST(CodecTrainer, WarmStartTrainsWithoutTheQuantizerFirst) {
  Context ctx;
  CodecTrainOptions opt;
  opt.config = codec_test_config();
  opt.warm_start = 2;
  CodecTrainer trainer(opt, ctx);
  Rng rng(6);
  const int64_t B = 2, T = 4 * 40;
  for (int s = 0; s < 3; ++s) {
    const CodecStepStats st = trainer.step(codec_test_batch(rng, B, T, opt.config.sampling_rate), B, T);
    if (s < 2) {
      EXPECT_EQ(st.codebooks, 0) << s;
      EXPECT_EQ(st.commit, 0.0) << s;
    } else {
      EXPECT_GE(st.codebooks, 1);
      EXPECT_EQ(st.restarted, opt.config.codebook_size * st.codebooks);  // every used codebook starts from the batch
    }
  }
}

TEST(SiSnr, FollowsItsDefinition) {
  Rng rng(2);
  std::vector<float> s(4000), noisy(4000), scaled(4000);
  double ps = 0, pn = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = static_cast<float>(std::sin(0.01 * static_cast<double>(i)));
    const float n = 0.1f * rng.normal();
    noisy[i] = s[i] + n;
    scaled[i] = -3.0f * s[i] + 0.5f;  // gain, sign and offset do not count
    ps += s[i] * s[i];
    pn += n * n;
  }
  // Noise independent of the signal: ≈ 10·log10(P_s / P_n) (the projection takes a share ~1/n of the noise).
  EXPECT_NEAR(si_snr_db(s.data(), noisy.data(), 4000), 10 * std::log10(ps / pn), 0.1);
  EXPECT_GT(si_snr_db(s.data(), scaled.data(), 4000), 100);
  const std::vector<float> silent(100, 0.25f);
  test::expect_error([&] { si_snr_db(silent.data(), s.data(), 100); }, {"the reference signal is silent"});
}

TEST(CodecTrainer, RefusesWhatItCannotTrainOn) {
  Context ctx;
  CodecTrainOptions opt;
  opt.config = codec_test_config();
  CodecTrainer trainer(opt, ctx);
  const std::vector<float> clips(2 * 30, 0.0f);
  test::expect_error([&] { trainer.loss_and_grads(clips, 2, 30, 1, false, nullptr); },
                     {"clips of 30 samples, expected a multiple of 4 (at least 8 frames)"});
  test::expect_error([] {
    Context c;
    CodecTrainer::resume("/nonexistent/codec", CodecTrainOptions{}, c);
  }, {"/nonexistent/codec/config.json"});
  test::TempDir dir;
  trainer.save((dir.path() / "c").string());
  std::filesystem::remove(dir.path() / "c" / "trainer_state.safetensors");
  test::expect_error([&] { CodecTrainer::resume((dir.path() / "c").string(), opt, ctx); }, {"trainer_state.safetensors"});
}

}  // namespace
}  // namespace tritter::audio

namespace tritter::audio {
namespace {

TEST(CodecTrainCli, TrainsResumesEvaluatesAndRefuses) {
  test::TempDir dir;
  Rng rng(12);
  std::filesystem::create_directories(dir.path() / "data");
  for (int i = 0; i < 3; ++i) {
    write_audio((dir.path() / "data" / ("t" + std::to_string(i) + ".wav")).string(),
                codec_test_tones(rng, 12000, 24000), 24000);
  }
  write_audio((dir.path() / "held.wav").string(), codec_test_tones(rng, 9000, 24000), 24000);
  const std::string data = (dir.path() / "data").string(), out = (dir.path() / "codec").string();
  const std::string arch = " --batch 2 --clip-seconds 0.12 --filters 2 --latent-dim 8 --codebook-size 16 -t 1";
  const test::CliResult t = test::run_cli("audio train-codec " + data + " -o " + out + arch + " --steps 4 --log-every 2 --eval " +
                                          (dir.path() / "held.wav").string());
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_TRUE(test::has(t, "data: 3 files, 1.5 s; 2 clips of 0.120 s a step; starting at step 1 of 4")) << t.output;
  EXPECT_TRUE(test::has(t, "step      4  loss")) << t.output;
  EXPECT_TRUE(test::has(t, "held-out 1 file, 0.4 s:")) << t.output;
  EXPECT_TRUE(test::has(t, "   12.00         40")) << t.output;  // 16 entries: 4 bits · 75 frames/s a codebook
  // An existing folder is not overwritten without --resume; --resume continues at the saved step.
  const test::CliResult again = test::run_cli("audio train-codec " + data + " -o " + out + arch + " --steps 4");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(test::has(again, "exists; pass --resume to continue it")) << again.output;
  const test::CliResult more = test::run_cli("audio train-codec " + data + " -o " + out + arch + " --steps 6 --resume");
  ASSERT_EQ(more.exit_code, 0) << more.output;
  EXPECT_TRUE(test::has(more, "resuming at step 5 of 6")) << more.output;
  const test::CliResult done = test::run_cli("audio train-codec " + data + " -o " + out + arch + " --steps 6 --resume");
  ASSERT_EQ(done.exit_code, 0) << done.output;
  EXPECT_TRUE(test::has(done, "is at step 6 already: raise --steps")) << done.output;
  const test::CliResult e = test::run_cli("audio eval -m " + out + " " + (dir.path() / "held.wav").string());
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_TRUE(test::has(e, "SI-SNR (dB)")) << e.output;
  // A step that cannot fit is refused before anything is read.
  const test::CliResult huge = test::run_cli("audio train-codec " + data + " -o " + (dir.path() / "c3").string() +
                                             " --batch 4096 --clip-seconds 60");
  EXPECT_NE(huge.exit_code, 0);
  EXPECT_TRUE(test::has(huge, "out of memory: audio train-codec: a step on 4096 clips of 60")) << huge.output;
  const test::CliResult empty = test::run_cli("audio train-codec " + dir.path().string() + "/nothing -o " +
                                              (dir.path() / "c2").string() + arch);
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_TRUE(test::has(empty, "nothing")) << empty.output;
}

}  // namespace
}  // namespace tritter::audio
