// Optimizer, schedules, data loader and the training loop: 10 AdamW steps on one batch lower the loss every step
// (llm.c's test, quant on and off), AdamW against a hand-computed step, the BitNet two-stage schedule, clipping,
// JSONL/zst/directory reading and the split, and a run resumed from its step-5 checkpoint equal bit for bit.
#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/rng.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "train/data.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/trainer.h"
#include "util/test_util.h"

namespace tritter::train {
namespace {

TEST(TrainLoop, TenAdamWStepsOnOneBatchLowerTheLossEveryStep) {
  for (bool quant : {false, true}) {
    TritterConfig c = preset_config("test");
    c.quant = quant;
    Context ctx;
    ctx.threads = 2;
    TrainModel model(c, ctx);
    model.init_weights(42);
    AdamW adam(model.num_params(), ctx);
    const int64_t B = 2, T = 16;
    Rng rng(9);
    std::vector<int32_t> in(B * T), tg(B * T);
    for (auto& v : in) v = static_cast<int32_t>(rng.next_below(264));
    for (size_t i = 0; i < in.size(); ++i) tg[i] = in[(i + 1) % in.size()];
    double prev = 1e30;
    for (int s = 0; s < 10; ++s) {
      model.zero_grad();
      const double loss = model.forward(in.data(), tg.data(), B, T);
      model.backward();
      clip_grad_norm(model.grads(), 1.0);
      adam.step(model.params(), model.grads(), model.table(), 3e-3, 0.1);
      EXPECT_LT(loss, prev) << "step " << s << " quant=" << quant;
      prev = loss;
    }
  }
}

TEST(TrainLoop, AdamWMatchesAHandComputedStep) {
  TritterConfig c = preset_config("test");
  auto table = tensor_table(c);
  const int64_t n = parameter_count(c);
  Context ctx;
  AdamW adam(n, ctx);
  std::vector<float> p(n, 0.5f), g(n, 0.25f);
  const double lr = 1e-2, wd = 0.1;
  adam.step(p, g, table, lr, wd);
  adam.step(p, g, table, lr, wd);
  // Two identical steps: m̂ = g, v̂ = g² each time → update lr·g/(|g|+ε) ≈ lr per step; 2-D tensors also decay.
  for (const auto& t : table) {
    double q = 0.5;
    for (int s = 0; s < 2; ++s) q = q * (t.is_matrix() ? 1.0 - lr * wd : 1.0) - lr * 0.25 / (0.25 + 1e-8);
    EXPECT_NEAR(p[t.offset], q, 1e-6) << t.name;
  }
  EXPECT_EQ(adam.steps(), 2);
}

TEST(TrainLoop, ClipScalesToTheNormLikeTorch) {
  std::vector<float> g = {3.0f, 4.0f};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g, 1.0), 5.0);
  EXPECT_NEAR(g[0], 3.0 / (5.0 + 1e-6), 1e-7);
  std::vector<float> small = {0.3f, 0.4f};
  clip_grad_norm(small, 1.0);
  EXPECT_EQ(small[0], 0.3f);
}

TEST(TrainLoop, BitNetTwoStageSchedule) {
  Schedule s;
  s.total_steps = 20000;
  s.validate();
  EXPECT_EQ(s.warmup_steps(), 200);
  EXPECT_NEAR(s.lr(0), 1.5e-3 / 200, 1e-12);
  EXPECT_NEAR(s.lr(199), 1.5e-3, 1e-12);
  EXPECT_NEAR(s.lr(200), 1.5e-3, 1e-9);
  EXPECT_NEAR(s.lr(9999), 8e-4, 1e-7);  // end of stage 1
  EXPECT_NEAR(s.lr(10000), 5e-4, 1e-12);  // stage 2 restarts lower
  EXPECT_NEAR(s.lr(19999), 0.0, 1e-8);
  EXPECT_EQ(s.weight_decay(9999), 0.1);
  EXPECT_EQ(s.weight_decay(10000), 0.0);
  Schedule w;
  w.kind = "wsd";
  w.total_steps = 1000;
  w.warmup = 10;
  EXPECT_EQ(w.lr(500), w.peak_lr);
  EXPECT_NEAR(w.lr(999), w.peak_lr * (1 - 0.9 * 199.0 / 200.0), 1e-12);
  Schedule bad;
  bad.kind = "linear";
  EXPECT_THROW(bad.validate(), Error);
}

std::string zstd_compress(const std::string& s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
  return out;
}

TEST(TrainData, ReadsFilesJsonlZstAndSplitsByHash) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "src/sub");
  test::write_file(dir / "src/a.py", "print('a')\n");
  test::write_file(dir / "src/sub/b.py", "x = 1\n");
  test::write_file(dir / "src/skip.bin", "zzzz");
  test::write_file(dir / "docs.jsonl", "{\"text\": \"hello\"}\n\n{\"text\": \"world\", \"id\": 3}\n");
  test::write_file(dir / "docs.jsonl.zst", zstd_compress("{\"text\": \"zz\"}\n"));
  DataOptions o;
  o.paths = {(dir / "src").string(), (dir / "docs.jsonl").string(), (dir / "docs.jsonl.zst").string()};
  o.val_fraction = 0.0;
  TokenData d(o);
  EXPECT_EQ(d.stats().documents, 5);
  EXPECT_EQ(d.stats().files, 4);
  // Bytes + 8, <eos> (2) after each document, directory files sorted: a.py then sub/b.py.
  EXPECT_EQ(d.train()[0], 'p' + 8);
  EXPECT_EQ(d.train()[11], 2);
  EXPECT_EQ(d.stats().train_tokens, 11 + 1 + 6 + 1 + 5 + 1 + 5 + 1 + 2 + 1);
  // The split is a pure function of the document bytes.
  int64_t val = 0;
  for (int i = 0; i < 2000; ++i) val += document_is_val("doc " + std::to_string(i), 0.05);
  EXPECT_GT(val, 60);
  EXPECT_LT(val, 140);
  EXPECT_EQ(document_hash("a"), 0xaf63dc4c8601ec8cull);  // FNV-1a 64 test vector
  test::write_file(dir / "bad.jsonl", "{\"txt\": 1}\n");
  o.paths = {(dir / "bad.jsonl").string()};
  try {
    TokenData bad(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
}

TEST(TrainLoop, ResumedRunIsBitwiseIdentical) {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + "\n";
  test::write_file(dir / "data.py", text);
  TrainOptions o;
  o.config = preset_config("test");
  o.data.paths = {(dir / "data.py").string()};
  o.data.val_fraction = 0.0;
  o.batch = 2;
  o.seq = 32;
  o.steps = 10;
  o.accum = 2;
  o.schedule.warmup = 2;
  o.schedule.peak_lr = 3e-3;
  o.eval_every = 0;
  o.checkpoint_every = 5;
  o.keep = 5;
  o.out_dir = (dir / "run1").string();
  auto quiet = [](const std::string&) {};
  Context ctx;
  ctx.threads = 1;
  const TrainResult full = run_training(ctx, o, {}, nullptr, quiet);
  ASSERT_EQ(full.losses.size(), 10u);
  EXPECT_LT(full.losses.back(), full.losses.front());
  const auto ck5 = dir / "run1" / "step-00000005";
  ASSERT_TRUE(std::filesystem::exists(ck5 / "model.safetensors"));
  EXPECT_EQ(latest_checkpoint(dir / "run1"), dir / "run1" / "step-00000010");

  TrainOptions r = read_checkpoint_options(ck5);
  r.out_dir = (dir / "run2").string();
  Context ctx2;
  ctx2.threads = 1;
  const TrainResult resumed = run_training(ctx2, r, ck5, nullptr, quiet);
  ASSERT_EQ(resumed.losses.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(resumed.losses[i], full.losses[5 + i]) << "step " << 6 + i;
  EXPECT_EQ(read_file_bytes(dir / "run1/step-00000010/model.safetensors"),
            read_file_bytes(dir / "run2/step-00000010/model.safetensors"));
  EXPECT_EQ(read_file_bytes(dir / "run1/step-00000010/optimizer.safetensors"),
            read_file_bytes(dir / "run2/step-00000010/optimizer.safetensors"));
}

TEST(TrainLoop, StopFlagWritesACheckpointAndKeepLimitsThem) {
  test::TempDir dir;
  std::string text(4000, 'a');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 23);
  test::write_file(dir / "d.txt", text);
  TrainOptions o;
  o.config = preset_config("test");
  o.data.paths = {(dir / "d.txt").string()};
  o.data.val_fraction = 0.0;
  o.batch = 1;
  o.seq = 16;
  o.steps = 6;
  o.eval_every = 0;
  o.checkpoint_every = 1;
  o.keep = 2;
  o.out_dir = (dir / "run").string();
  Context ctx;
  ctx.threads = 1;
  std::atomic<bool> stop{false};
  int lines = 0;
  const TrainResult r = run_training(ctx, o, {}, &stop, [&](const std::string&) {
    if (++lines == 3) stop = true;  // 2 header lines, then the line of step 1
  });
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.steps_done, 1);
  int dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "run")) dirs += e.is_directory();
  EXPECT_EQ(dirs, 1);
  EXPECT_EQ(latest_checkpoint(dir / "run"), dir / "run" / "step-00000001");
  // A full run keeps only the last `keep` checkpoints.
  o.out_dir = (dir / "run_all").string();
  run_training(ctx, o, {}, nullptr, [](const std::string&) {});
  dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "run_all")) dirs += e.is_directory();
  EXPECT_EQ(dirs, 2);
  EXPECT_EQ(latest_checkpoint(dir / "run_all"), dir / "run_all" / "step-00000006");
}

TEST(TrainLoop, NonFiniteStepsAreSkippedThenStopTheRunWithTheCheckpointIntact) {
  test::TempDir dir;
  std::string text(3000, 'x');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 19);
  test::write_file(dir / "d.txt", text);
  TrainOptions o;
  o.config = preset_config("test");
  o.data.paths = {(dir / "d.txt").string()};
  o.data.val_fraction = 0.0;
  o.batch = 1;
  o.seq = 16;
  o.steps = 2;
  o.eval_every = 0;
  o.checkpoint_every = 2;
  o.max_bad_steps = 3;
  o.out_dir = (dir / "run").string();
  Context ctx;
  ctx.threads = 1;
  run_training(ctx, o, {}, nullptr, [](const std::string&) {});
  // Poison one embedding row of the step-2 checkpoint: every later forward sees NaN activations.
  const auto ck = dir / "run" / "step-00000002";
  Checkpoint good = load_checkpoint(ck / "model.safetensors", nullptr);
  auto p = good.params.as<float>();
  for (int64_t j = 0; j < o.config.hidden_size * o.config.vocab_size; ++j) p[j] = std::nanf("");
  save_checkpoint(ck / "model.safetensors", o.config, p, {{"step", "2"}});
  const std::string before = read_file_bytes(ck / "model.safetensors");
  TrainOptions r = read_checkpoint_options(ck);
  r.steps = 10;
  int skipped_lines = 0;
  try {
    run_training(ctx, r, ck, nullptr, [&](const std::string& line) {
      skipped_lines += line.find("update skipped") != std::string::npos;
    });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 consecutive steps"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("intact"), std::string::npos) << e.what();
  }
  EXPECT_EQ(skipped_lines, 3);
  EXPECT_EQ(latest_checkpoint(dir / "run"), ck);
  EXPECT_EQ(read_file_bytes(ck / "model.safetensors"), before);
}

// Training under prefix_lm: P = 1 is the causal run bit for bit (position 0 sees itself, no target is inside the
// prefix), a longer prefix changes the losses, the options round-trip through state.json and a resumed run is
// bitwise the uninterrupted one; bidirectional and out-of-range prefixes are refused.
TEST(TrainLoop, PrefixLmAttentionTrainsResumesAndRefusesBadMasks) {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + "\n";
  test::write_file(dir / "data.py", text);
  auto options = [&](const std::string& out, const std::string& attention, int64_t P) {
    TrainOptions o;
    o.config = preset_config("test");
    o.data.paths = {(dir / "data.py").string()};
    o.data.val_fraction = 0.0;
    o.batch = 2;
    o.seq = 32;
    o.steps = 6;
    o.schedule.warmup = 2;
    o.schedule.peak_lr = 3e-3;
    o.eval_every = 0;
    o.checkpoint_every = 3;
    o.out_dir = (dir / out).string();
    o.attention = attention;
    o.prefix_length = P;
    return o;
  };
  auto quiet = [](const std::string&) {};
  auto run = [&](const TrainOptions& o, const std::filesystem::path& resume = {}) {
    Context ctx;
    ctx.threads = 1;
    return run_training(ctx, o, resume, nullptr, quiet);
  };
  const TrainResult causal = run(options("causal", "causal", 0));
  const TrainResult p1 = run(options("p1", "prefix_lm", 1));
  EXPECT_EQ(p1.losses, causal.losses);
  const TrainResult p16 = run(options("p16", "prefix_lm", 16));
  ASSERT_EQ(p16.losses.size(), 6u);
  EXPECT_NE(p16.losses, causal.losses);
  const auto ck3 = dir / "p16" / "step-00000003";
  TrainOptions r = read_checkpoint_options(ck3);
  EXPECT_EQ(r.attention, "prefix_lm");
  EXPECT_EQ(r.prefix_length, 16);
  EXPECT_EQ(read_checkpoint_options(dir / "causal" / "step-00000003").attention, "causal");
  r.out_dir = (dir / "p16-resumed").string();
  const TrainResult resumed = run(r, ck3);
  ASSERT_EQ(resumed.losses.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(resumed.losses[i], p16.losses[3 + i]) << "step " << 4 + i;
  EXPECT_EQ(read_file_bytes(dir / "p16/step-00000006/model.safetensors"),
            read_file_bytes(dir / "p16-resumed/step-00000006/model.safetensors"));
  test::expect_error([&] { run(options("bi", "bidirectional", 0)); }, {"bidirectional", "visible"});
  test::expect_error([&] { run(options("big", "prefix_lm", 32)); }, {"--prefix-length", "found 32", "1 .. 31"});
  test::expect_error([&] { run(options("zero", "prefix_lm", 0)); }, {"--prefix-length", "found 0"});
  test::expect_error([&] { run(options("odd", "sideways", 0)); }, {"--attention", "sideways"});
}

// Weight decay skips the embedding table when decay_embedding is off (a cosine head: its rows are read
// normalized) and still applies to every other matrix; 1-D gains never decay.
TEST(AdamWDecay, EmbeddingDecayFollowsTheFlag) {
  const TritterConfig c = preset_config("test");
  const auto table = tensor_table(c);
  const int64_t P = table.back().offset + table.back().numel();
  std::vector<float> p0(static_cast<size_t>(P), 1.0f), g(p0.size(), 0.0f);  // zero gradients: decay alone moves p
  Context ctx;
  for (bool decay_embedding : {true, false}) {
    AdamWParams hp;
    hp.decay_embedding = decay_embedding;
    AdamW adam(P, ctx, hp);
    std::vector<float> p = p0;
    adam.step(p, g, table, 0.01, 0.5);
    for (const auto& t : table) {
      const bool want = t.is_matrix() && (decay_embedding || t.role != TensorRole::Embedding);
      const float expect = want ? static_cast<float>(1.0 - 0.01 * 0.5) : 1.0f;
      EXPECT_EQ(p[static_cast<size_t>(t.offset)], expect) << t.name << " decay_embedding " << decay_embedding;
    }
  }
  EXPECT_TRUE(AdamWParams{}.decay_embedding);  // linear models train as before
}

}  // namespace
}  // namespace tritter::train
