// `tritter grads`, `train`, `eval` and `export` end to end through the binary: the grads file holds exactly what
// the library computes (names, shapes, values), both batch layouts work, bad batches fail with a clear message,
// and a tiny training run writes checkpoints that eval and export read.
#include <gtest/gtest.h>

#include <cstring>

#include "core/rng.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "train/model.h"
#include "util/test_util.h"

namespace tritter::train {
namespace {

struct Fixture {
  test::TempDir dir;
  TritterConfig config = preset_config("test");
  std::vector<float> params;
  Fixture() {
    Context ctx;
    TrainModel m(config, ctx);
    m.init_weights(3);
    params.assign(m.params().begin(), m.params().end());
    save_checkpoint(dir / "ck.safetensors", config, params);
  }
};

TEST(TrainCli, GradsWritesLogitsLossAndEveryGradient) {
  Fixture f;
  const int64_t B = 2, T = 7;
  std::vector<int32_t> tokens(B * (T + 1));
  Rng rng(1);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.next_below(264));
  tokens[T] = -100;  // the last token of row 0: only ever a target (inputs are tokens[:, :-1])
  write_safetensors(f.dir / "batch.safetensors", {{"tokens", DType::I32, {B, T + 1}, tokens.data(), {}}}, {});
  const auto r = test::run_cli("-t 1 grads --model " + (f.dir / "ck.safetensors").string() + " --batch " +
                               (f.dir / "batch.safetensors").string() + " -o " + (f.dir / "g.safetensors").string() +
                               " --steps 3 --lr 1e-3");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // The same computation through the library, single thread.
  Context ctx;
  ctx.threads = 1;
  TrainModel m(f.config, ctx);
  std::memcpy(m.params().data(), f.params.data(), f.params.size() * sizeof(float));
  std::vector<int32_t> in(B * T), tg(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) in[b * T + t] = tokens[b * (T + 1) + t], tg[b * T + t] = tokens[b * (T + 1) + t + 1];
  m.reserve(B, T, false);
  m.zero_grad();
  const float loss = static_cast<float>(m.forward(in.data(), tg.data(), B, T));
  m.backward();

  const SafeTensorsFile g(f.dir / "g.safetensors");
  EXPECT_EQ(g.metadata_value("format"), "tritter-grads-v1");
  const SafeTensor& l = g.expect("loss", DType::F32, {});
  EXPECT_EQ(*reinterpret_cast<const float*>(l.data), loss);
  g.expect("logits", DType::F32, {B, T, f.config.vocab_size});
  const SafeTensor& ls = g.expect("losses", DType::F32, {3});
  const float* lv = reinterpret_cast<const float*>(ls.data);
  EXPECT_EQ(lv[0], loss);
  EXPECT_LT(lv[2], lv[0]);
  for (const auto& t : m.table()) {
    const SafeTensor& gt = g.expect("grad." + t.name, DType::F32, t.shape);
    EXPECT_EQ(0, std::memcmp(gt.data, m.grads().data() + t.offset, gt.bytes())) << t.name;
  }
  EXPECT_EQ(g.tensors().size(), m.table().size() + 3);
}

TEST(TrainCli, GradsAcceptsInputIdsAndTargetsAndRejectsBadBatches) {
  Fixture f;
  std::vector<int32_t> ids = {1, 2, 3, 4}, tg = {2, 3, 4, -100};
  write_safetensors(f.dir / "b.safetensors",
                    {{"input_ids", DType::I32, {1, 4}, ids.data(), {}}, {"targets", DType::I32, {1, 4}, tg.data(), {}}},
                    {});
  auto r = test::run_cli("grads --model " + (f.dir / "ck.safetensors").string() + " --batch " +
                         (f.dir / "b.safetensors").string() + " -o " + (f.dir / "g.safetensors").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<float> wrong = {1, 2};
  write_safetensors(f.dir / "bad.safetensors", {{"tokens", DType::F32, {1, 2}, wrong.data(), {}}}, {});
  r = test::run_cli("grads --model " + (f.dir / "ck.safetensors").string() + " --batch " +
                    (f.dir / "bad.safetensors").string() + " -o " + (f.dir / "g2.safetensors").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("expected I32"), std::string::npos) << r.output;
}

TEST(TrainCli, TrainThenEvalAndExport) {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 300; ++i) text += "def g" + std::to_string(i) + "(a, b):\n    return a + b\n\n";
  test::write_file(dir / "d.py", text);
  const std::string out = (dir / "run").string();
  auto r = test::run_cli("-t 1 train --config test --data " + (dir / "d.py").string() + " --out " + out +
                         " --steps 4 --batch 2 --seq 32 --warmup 1 --checkpoint-every 2 --eval-every 2"
                         " --val-fraction 0 --log-json " + (dir / "log.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 4/4"), std::string::npos) << r.output;
  EXPECT_NE(test::read_file(dir / "log.jsonl").find("\"loss\""), std::string::npos);
  r = test::run_cli("-t 1 train --resume " + out + " --steps 6");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 6/6"), std::string::npos) << r.output;
  r = test::run_cli("eval --model " + out + " --data " + (dir / "d.py").string() + " --seq 32 --windows 8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("bits/byte"), std::string::npos) << r.output;
  const std::string ckpt_eval = r.output;
  r = test::run_cli("export " + out + " -o " + (dir / "packed.safetensors").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "packed.safetensors"));
  // The packed model evaluates to the checkpoint's figure: both run the same integer forward (ternary weights,
  // int8 activations); only float summation order differs, and an activation whose int8 rounding flips moves the
  // mean loss over 8·32 tokens by far less than 1e-3 bits.
  const auto bpb_of = [](const std::string& out) {
    const size_t at = out.find(" bits/byte");
    return at == std::string::npos ? -1.0 : std::stod(out.substr(out.rfind(' ', at - 1) + 1));
  };
  const double ckpt_bpb = bpb_of(ckpt_eval);
  r = test::run_cli("eval --model " + (dir / "packed.safetensors").string() + " --data " + (dir / "d.py").string() +
                    " --seq 32 --windows 8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_GT(ckpt_bpb, 0);
  EXPECT_NEAR(bpb_of(r.output), ckpt_bpb, 1e-3) << r.output;
  r = test::run_cli("eval --model " + (dir / "packed.safetensors").string() + " --data " + (dir / "d.py").string() +
                    " --lora " + (dir / "no-such-adapter").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no-such-adapter"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tritter::train
