// LoRA on the frozen packed base (train/lora.h; training-spec §9): adapter gradients against central differences
// where the path is smooth, every module's dB against the full model's STE gradient, the base bit-identical after
// training, init, and fine-tune/merge through the CLI. Config, table and adapter files: tests/model/lora_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/rng.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "model/peft.h"
#include "train/lora.h"
#include "train/model.h"
#include "train/optim.h"
#include "util/test_util.h"

namespace tritter::train {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

struct LoraFixture {
  TritterConfig config = preset_config("test");
  std::vector<float> params;
  PackedModel base;
  static LoraFixture make(uint64_t seed, const TritterConfig& c) {
    std::vector<float> p(static_cast<size_t>(parameter_count(c)));
    init_parameters(p, c, seed);
    PackedModel m = PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
      std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
    }, {}, nullptr);
    return LoraFixture{c, std::move(p), std::move(m)};
  }
};

void random_batch(const TritterConfig& c, int64_t n, uint64_t seed, std::vector<int32_t>& in, std::vector<int32_t>& tg) {
  Rng rng(seed);
  in.resize(static_cast<size_t>(n));
  tg.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    in[static_cast<size_t>(i)] = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(c.vocab_size)));
    tg[static_cast<size_t>(i)] = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(c.vocab_size)));
  }
}

LoraConfig all_targets(int64_t rank = 4) {
  LoraConfig l;
  l.rank = rank;
  l.alpha = 8;
  l.targets = parse_lora_targets("all");
  return l;
}

TEST(Lora, InitBoundsAndIdentityAtInit) {
  LoraFixture fx = LoraFixture::make(3, preset_config("test"));
  Context ctx;
  LoraModel m(fx.base.weights(), all_targets(), ctx);
  m.init_adapters(5);
  for (const auto& t : m.adapters()) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(t.I));
    float amax = 0;
    for (int64_t j = 0; j < 4 * t.I; ++j) amax = std::max(amax, std::fabs(m.params()[static_cast<size_t>(t.a_offset + j)]));
    EXPECT_LE(amax, bound);
    EXPECT_GT(amax, 0.5f * bound);
    for (int64_t j = 0; j < 4 * t.O; ++j) ASSERT_EQ(m.params()[static_cast<size_t>(t.b_offset + j)], 0.0f);
  }
  // B = 0: the logits are the base's. The full QAT model with the same latent weights quantizes them to the same
  // levels and σ, so the two forwards agree to float rounding.
  const int64_t B = 2, T = 8;
  std::vector<int32_t> in, tg;
  random_batch(fx.config, B * T, 11, in, tg);
  TrainModel full(fx.config, ctx);
  std::memcpy(full.params().data(), fx.params.data(), fx.params.size() * sizeof(float));
  const double lf = full.forward(in.data(), tg.data(), B, T);
  const double ll = m.forward(in.data(), tg.data(), B, T);
  EXPECT_NEAR(ll, lf, 1e-5 * std::fabs(lf));
}

// Every targeted module in every layer: at B = 0, dB = (α/r)·dyᵀ (x Aᵀ) with the same dy the full model's STE
// backward produces, where dW_full = dyᵀ x̃. So dB ≈ (α/r)·dW_full·Aᵀ, off only by x̃ vs x: the int8 rounding of
// the input, |x − x̃| ≤ max|x|/254 per element, a relative error of about 1/(254·√3)·√(I)/√(I) ≈ 0.3 % per entry.
// Tolerance: rel-L2 ≤ 2e-2. dA = 0 at B = 0.
TEST(Lora, GradBMatchesFullModelSteGradientAtInit) {
  LoraFixture fx = LoraFixture::make(7, preset_config("test"));
  Context ctx;
  ctx.threads = 2;
  const LoraConfig l = all_targets();
  LoraModel m(fx.base.weights(), l, ctx);
  m.init_adapters(9);
  const int64_t B = 2, T = 8;
  std::vector<int32_t> in, tg;
  random_batch(fx.config, B * T, 13, in, tg);
  TrainModel full(fx.config, ctx);
  std::memcpy(full.params().data(), fx.params.data(), fx.params.size() * sizeof(float));
  full.zero_grad();
  full.forward(in.data(), tg.data(), B, T);
  full.backward();
  m.zero_grad();
  m.forward(in.data(), tg.data(), B, T);
  m.backward();
  const auto table = tensor_table(fx.config);
  for (const auto& t : m.adapters()) {
    const TensorInfo* w = find_tensor(table, t.base_name);
    ASSERT_NE(w, nullptr);
    const float* dW = full.grads().data() + w->offset;          // (O, I)
    const float* A = m.params().data() + t.a_offset;            // (r, I)
    const float* dB = m.grads().data() + t.b_offset;            // (O, r)
    double num = 0, den = 0;
    for (int64_t o = 0; o < t.O; ++o) {
      for (int64_t k = 0; k < l.rank; ++k) {
        double e = 0;
        for (int64_t i = 0; i < t.I; ++i) e += static_cast<double>(dW[o * t.I + i]) * A[k * t.I + i];
        e *= l.scale();
        num += (dB[o * l.rank + k] - e) * (dB[o * l.rank + k] - e);
        den += e * e;
      }
    }
    ASSERT_GT(den, 0) << t.base_name;
    EXPECT_LE(std::sqrt(num / den), 2e-2) << t.base_name;
    for (int64_t j = 0; j < l.rank * t.I; ++j) ASSERT_EQ(m.grads()[static_cast<size_t>(t.a_offset + j)], 0.0f);
  }
}

// Central differences of the loss along random directions in A and in B of the last layer's down_proj, with every
// module targeted and B ≠ 0. The path from that adapter to the loss (post-FFN norm, residual, final norm, head,
// CE) has no quantizer, so the analytic gradient is the true derivative. Loss in double (CE), logits float: noise
// ≈ 1e-7·|loss|/(2ε) ≈ 3e-5 at ε = 1e-2 along a unit direction; truncation O(ε²) relative. Tolerance on the
// directional derivative: 1e-3·|fd| + 5e-5 (measured agreement: about 1e-4 relative).
TEST(Lora, GradAAndBMatchCentralDifferences) {
  for (const char* mlp : {"relu2", "relu2_glu"}) {
    TritterConfig c = preset_config("test");
    c.mlp_act = mlp_act_from_name(mlp);
    LoraFixture fx = LoraFixture::make(21, c);
    Context ctx;
    LoraModel m(fx.base.weights(), all_targets(), ctx);
    m.init_adapters(4);
    Rng rng(8);
    for (float& x : m.params()) x += 0.05f * rng.normal();  // B ≠ 0 everywhere: the LoRA dx terms are live
    const int64_t B = 2, T = 8;
    std::vector<int32_t> in, tg;
    random_batch(c, B * T, 17, in, tg);
    m.zero_grad();
    m.forward(in.data(), tg.data(), B, T);
    m.backward();
    const LoraTensor& t = m.adapters().back();
    ASSERT_EQ(t.kind, "down_proj");
    ASSERT_EQ(t.layer, c.num_hidden_layers - 1);
    for (int which = 0; which < 2; ++which) {
      const int64_t off = which == 0 ? t.a_offset : t.b_offset, n = which == 0 ? 4 * t.I : 4 * t.O;
      for (int dir = 0; dir < 3; ++dir) {
        std::vector<float> d(static_cast<size_t>(n));
        double dn = 0;
        for (auto& x : d) {
          x = rng.normal();
          dn += static_cast<double>(x) * x;
        }
        for (auto& x : d) x = static_cast<float>(x / std::sqrt(dn));  // unit direction: steps of ε in norm
        double analytic = 0;
        for (int64_t j = 0; j < n; ++j) analytic += static_cast<double>(m.grads()[static_cast<size_t>(off + j)]) * d[static_cast<size_t>(j)];
        const float eps = 1e-2f;
        auto loss_at = [&](float s) {
          std::vector<float> saved(m.params().begin() + off, m.params().begin() + off + n);
          for (int64_t j = 0; j < n; ++j) m.params()[static_cast<size_t>(off + j)] += s * d[static_cast<size_t>(j)];
          const double L = m.forward(in.data(), tg.data(), B, T);
          std::copy(saved.begin(), saved.end(), m.params().begin() + off);
          return L;
        };
        const double fd = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps);
        EXPECT_NEAR(analytic, fd, 1e-3 * std::fabs(fd) + 5e-5) << mlp << (which ? " B" : " A") << " dir " << dir;
      }
    }
  }
}

// Recompute re-runs each layer's forward in backward with the dropout generator rewound: losses and adapter
// gradients are bitwise those of the run that keeps every layer's activations, over several steps (so the
// generator also continues where it would have), and the arena keeps one layer's saved set instead of L.
TEST(Lora, RecomputeIsBitwiseIdentical) {
  LoraFixture fx = LoraFixture::make(9, preset_config("test"));
  const ModelWeights& w = fx.base.weights();
  Context ctx;
  LoraConfig l = all_targets(4);
  l.dropout = 0.2;
  const int64_t B = 2, T = 16;
  std::vector<int32_t> in, tg;
  random_batch(fx.config, B * T, 4, in, tg);
  LoraModel keep(w, l, ctx), redo(w, l, ctx);
  keep.init_adapters(2);
  redo.init_adapters(2);
  keep.reserve(B, T, false);
  redo.reserve(B, T, true);
  EXPECT_LT(redo.arena_bytes(), keep.arena_bytes());
  EXPECT_EQ(lora_activation_bytes(fx.config, l, B, T, true), redo.arena_bytes());
  AdamW adam_keep(keep.num_params(), ctx), adam_redo(redo.num_params(), ctx);
  for (int step = 0; step < 3; ++step) {
    keep.zero_grad();
    redo.zero_grad();
    const double a = keep.forward(in.data(), tg.data(), B, T);
    const double b = redo.forward(in.data(), tg.data(), B, T);
    ASSERT_EQ(a, b) << "step " << step;
    keep.backward();
    redo.backward();
    ASSERT_EQ(0, std::memcmp(keep.grads().data(), redo.grads().data(), keep.grads().size_bytes())) << "step " << step;
    adam_keep.step(keep.params(), keep.grads(), keep.infos(), 1e-2, 0.0);
    adam_redo.step(redo.params(), redo.grads(), redo.infos(), 1e-2, 0.0);
  }
}

TEST(Lora, TrainingLeavesBaseBitIdenticalAndLowersLoss) {
  LoraFixture fx = LoraFixture::make(5, preset_config("test"));
  const ModelWeights& w = fx.base.weights();
  auto snapshot = [&]() {
    std::vector<uint8_t> bytes;
    for (const auto& L : w.layers) {
      for (const TernaryMatrix* t : {&L.q, &L.k, &L.v, &L.o, &L.up, &L.down}) {
        const auto* p = t->data;
        bytes.insert(bytes.end(), p, p + ternary_matrix_bytes(t->rows, t->cols));
        const auto* s = reinterpret_cast<const uint8_t*>(&t->sigma);
        bytes.insert(bytes.end(), s, s + 4);
      }
      const auto* g = reinterpret_cast<const uint8_t*>(L.input_norm);
      bytes.insert(bytes.end(), g, g + 4 * w.config.hidden_size);
    }
    const auto* e = reinterpret_cast<const uint8_t*>(w.embed);
    bytes.insert(bytes.end(), e, e + 4 * w.config.vocab_size * w.config.hidden_size);
    return bytes;
  };
  const auto before = snapshot();
  Context ctx;
  LoraConfig l = all_targets(8);
  l.dropout = 0.1;
  LoraModel m(w, l, ctx);
  m.init_adapters(1);
  AdamW adam(m.num_params(), ctx);
  const int64_t B = 2, T = 16;
  std::vector<int32_t> in, tg;
  random_batch(fx.config, B * T, 3, in, tg);
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    m.zero_grad();
    const double loss = m.forward(in.data(), tg.data(), B, T);
    m.backward();
    clip_grad_norm(m.grads(), 1.0);
    adam.step(m.params(), m.grads(), m.infos(), 1e-2, 0.0);
    if (step == 0) first = loss;
    last = loss;
  }
  EXPECT_LT(last, first - 0.3) << first << " -> " << last;  // memorizing one batch
  EXPECT_EQ(snapshot(), before);
}


// The CLI end to end on the "test" preset: finetune with checkpoints and eval, exact resume to more steps, the
// adapter readable for the base, merge-lora's full-precision checkpoint and its lossy-merge report, a bad target.
TEST(LoraCli, FinetuneResumeMerge) {
  TempDir tmp;
  const std::string dir = tmp.path().string();
  ASSERT_EQ(test::run_cli("init --size test --packed -o " + dir + "/base.tpk").exit_code, 0);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + "\n\n";
  test::write_file(tmp.path() / "a.py", text);
  test::write_file(tmp.path() / "b.py", text + "# b\n");
  const std::string common = "-t 1 finetune --base " + dir + "/base.tpk --data " + dir + "/a.py " + dir +
                             "/b.py --val-fraction 0.5 --rank 4 --alpha 8 --batch 2 --seq 32 --eval-every 2 "
                             "--eval-windows 2 --checkpoint-every 2 --out " + dir + "/ft";
  auto r = test::run_cli(common + " --steps 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("val bpb at step 0 (the base)"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(tmp.path() / "ft" / "step-00000004" / "optimizer.safetensors"));
  r = test::run_cli("-t 1 finetune --resume " + dir + "/ft --steps 6");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("done at step 6"), std::string::npos) << r.output;
  const PackedModel base = PackedModel::open(tmp.path() / "base.tpk");
  const LoraAdapter a = load_lora_adapter(tmp.path() / "ft", base.config(), nullptr);
  EXPECT_EQ(a.config.rank, 4);
  r = test::run_cli("merge-lora --base " + dir + "/base.tpk --lora " + dir + "/ft:0.5 --out " + dir + "/merged.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("lossy"), std::string::npos) << r.output;
  EXPECT_NO_THROW(load_checkpoint(tmp.path() / "merged.safetensors", nullptr));
  r = test::run_cli(common + "2 --steps 1 --targets qkv");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("'qkv'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tritter::train
