// Whole-model tests of train/model (training-spec §10 tiers T1/T2): loss and logits against the double reference,
// every parameter tensor's gradient against central differences of the reference along two directions, the
// STE surrogate with quant=true, recompute equal bit for bit, and the arena size function.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "model/config.h"
#include "reference_model.h"
#include "train/model.h"
#include "train/parallel.h"

namespace tritter::train {
namespace {

using Vec = std::vector<double>;

TritterConfig test_config(bool quant) {
  TritterConfig c = preset_config("test");
  c.quant = quant;
  return c;
}

// A config exercising the other flags: GLU, post_norm both, tied head, sliding window, z-loss, no sub/qk norm.
TritterConfig variant_config(bool quant) {
  TritterConfig c = preset_config("test");
  c.quant = quant;
  c.mlp_act = MlpAct::Relu2Glu;
  c.post_norm = PostNorm::Both;
  c.tie_word_embeddings = true;
  c.sliding_window = 3;
  c.z_loss = 1e-2;
  c.sub_norm = false;
  c.qk_norm = false;
  c.validate();
  return c;
}

// BitNet-2B4T's layer: no post norm, GLU, no QK-norm, sub-norms kept; GQA 2:1 from the preset.
TritterConfig bitnet_config(bool quant) {
  TritterConfig c = preset_config("test");
  c.quant = quant;
  c.post_norm = PostNorm::None;
  c.mlp_act = MlpAct::Relu2Glu;
  c.qk_norm = false;
  c.validate();
  return c;
}

struct Batch {
  int64_t B, T;
  std::vector<int32_t> in, tg;
};
Batch make_batch(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  Rng rng(seed);
  Batch b{B, T, std::vector<int32_t>(B * T), std::vector<int32_t>(B * T)};
  for (auto& v : b.in) v = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(V)));
  for (auto& v : b.tg) v = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(V)));
  b.tg[1] = -100;  // one ignored target
  return b;
}

// Checks loss, logits and each tensor's gradient against the reference. For each tensor t: the directional
// derivative of the reference along ĝ_t (the analytic gradient's direction, so it measures |g_t|) and along a
// random unit direction r_t, by central differences in double (h = 1e-4 on O(0.02–1) weights: truncation
// ~h²·|f'''| ≈ 1e-8, rounding ~1e-16/h). Pass: |FD − g·u| ≤ tol·|g_t| (tol 1e-4 for quant=false, tier T1).
void check_model(const TritterConfig& c, double grad_tol, double loss_tol, bool surrogate, double beta = 0,
                 const AttnMask* mask = nullptr, std::vector<int64_t> prefix = {}) {
  Context ctx;
  ctx.threads = 2;
  TrainModel model(c, ctx);
  model.init_weights(7);
  // Gains away from 1 so their gradients are not special.
  Rng rng(3);
  auto params = model.params();
  for (const auto& t : model.table())
    if (t.role == TensorRole::Norm)
      for (int64_t j = 0; j < t.numel(); ++j) params[t.offset + j] = 1.0f + 0.2f * rng.normal();
  const Batch b = make_batch(2, 9, c.vocab_size, 11);
  model.reserve(b.B, b.T, false);
  model.zero_grad();
  model.set_embed_pred_beta(beta);
  Batch masked = b;
  if (mask) {
    model.set_mask(*mask, prefix);
    if (!prefix.empty()) mask_prefix_targets(masked.tg.data(), b.B, b.T, prefix);
  }
  const Batch& bb = masked;
  const double loss = model.forward(bb.in.data(), bb.tg.data(), b.B, b.T);
  model.backward();

  test::ReferenceModel ref(c);
  if (mask) {
    ref.bidirectional = mask->kind == AttnMask::Kind::Bidirectional;
    ref.prefix = prefix;
  }
  const Vec p0(params.begin(), params.end());
  Vec logits;
  const double ref_loss = ref.loss(p0, bb.in, bb.tg, b.B, b.T, surrogate, false, &logits);
  EXPECT_NEAR(loss, ref_loss, loss_tol);  // the cross-entropy (forward() leaves the auxiliary term out)
  if (beta > 0) {  // from here on the reference is CE + β·aux, the function the gradient is of
    ref.aux_beta = beta;
    if (c.embed_pred_stopgrad) ref.freeze_aux_targets(p0);
    EXPECT_NEAR(loss + model.embed_pred_loss(), ref.loss(p0, bb.in, bb.tg, b.B, b.T, surrogate, surrogate), loss_tol);
  }
  double zmax = 0, dmax = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    zmax = std::max(zmax, std::abs(logits[i]));
    dmax = std::max(dmax, std::abs(logits[i] - model.logits()[i]));
  }
  EXPECT_LE(dmax, (surrogate ? 1e-2 : 1e-4) * zmax) << "logits";

  const auto grads = model.grads();
  for (const auto& t : model.table()) {
    const int64_t n = t.numel();
    double gnorm = 0;
    for (int64_t j = 0; j < n; ++j) gnorm += static_cast<double>(grads[t.offset + j]) * grads[t.offset + j];
    gnorm = std::sqrt(gnorm);
    ASSERT_GT(gnorm, 0.0) << t.name;
    Vec rdir(n);
    double rn = 0;
    for (auto& v : rdir) v = rng.normal(), rn += v * v;
    for (auto& v : rdir) v /= std::sqrt(rn);
    for (int dir = 0; dir < 2; ++dir) {
      Vec u(n);
      double expect = 0;
      for (int64_t j = 0; j < n; ++j) {
        u[j] = dir == 0 ? grads[t.offset + j] / gnorm : rdir[j];
        expect += grads[t.offset + j] * u[j];
      }
      const double h = 1e-4;
      Vec pp = p0, pm = p0;
      for (int64_t j = 0; j < n; ++j) pp[t.offset + j] += h * u[j], pm[t.offset + j] -= h * u[j];
      const double fd = (ref.loss(pp, bb.in, bb.tg, b.B, b.T, false, surrogate) -
                         ref.loss(pm, bb.in, bb.tg, b.B, b.T, false, surrogate)) / (2 * h);
      EXPECT_LE(std::abs(fd - expect), grad_tol * gnorm)
          << t.name << (dir == 0 ? " along its gradient" : " along a random direction") << ": finite difference "
          << fd << ", analytic " << expect << ", |g| " << gnorm;
    }
  }
}

TEST(TrainModel, FullPrecisionGradientsMatchReference) {
  check_model(test_config(false), 1e-4, 1e-5, false);
}

TEST(TrainModel, FullPrecisionVariantFlagsMatchReference) {
  check_model(variant_config(false), 1e-4, 1e-5, false);
}

TEST(TrainModel, FullPrecisionBitNetLayerMatchesReference) {
  check_model(bitnet_config(false), 1e-4, 1e-5, false);
}

TritterConfig cosine_config(bool stopgrad) {
  TritterConfig c = preset_config("test");
  c.quant = false;
  c.head_type = HeadType::CosineTied;
  c.tie_word_embeddings = true;
  c.embed_pred_loss = EmbedPredLoss::Cosine;
  c.embed_pred_stopgrad = stopgrad;
  c.validate();
  return c;
}

// The cosine head through the whole model: h, E (tied: CE, and the auxiliary term unless stop-gradient) and the
// scale, all against central differences of the double reference.
TEST(TrainModel, CosineHeadGradientsMatchReference) {
  check_model(cosine_config(true), 1e-4, 1e-5, false, 0.0);
  check_model(cosine_config(true), 1e-4, 1e-5, false, 0.7);
  check_model(cosine_config(false), 1e-4, 1e-5, false, 0.7);
}

// Attention modes in training: bidirectional documents and prefix-LM with a prefix length per sequence (loss only
// after the prefix), gradients against the reference under the same masks; prefix 0 is causal.
TEST(TrainModel, BidirectionalAndPrefixLmGradientsMatchReference) {
  const AttnMask bi = AttnMask::bidirectional();
  check_model(test_config(false), 1e-4, 1e-5, false, 0.0, &bi);
  const AttnMask pre = AttnMask::prefix_lm(0);
  check_model(test_config(false), 1e-4, 1e-5, false, 0.0, &pre, {3, 6});
  check_model(cosine_config(true), 1e-4, 1e-5, false, 0.3, &pre, {0, 9});
}

// Outside [cos_scale_min, cos_scale_max] the scale is clamped: logits use the bound and log s gets no gradient.
TEST(TrainModel, CosineScaleClampStopsItsGradient) {
  TritterConfig c = cosine_config(true);
  c.cos_scale_init = 3.0;
  c.cos_scale_max = 4.0;
  Context ctx;
  TrainModel model(c, ctx);
  model.init_weights(1);
  const TensorInfo* ls = find_tensor(model.table(), "lm_head.log_scale");
  ASSERT_NE(ls, nullptr);
  EXPECT_FLOAT_EQ(model.params()[ls->offset], static_cast<float>(std::log(3.0)));  // log cos_scale_init
  model.params()[ls->offset] = static_cast<float>(std::log(10.0));
  EXPECT_FLOAT_EQ(model.cos_scale(), 4.0f);
  const Batch b = make_batch(1, 5, c.vocab_size, 2);
  model.zero_grad();
  model.forward(b.in.data(), b.tg.data(), b.B, b.T);
  model.backward();
  EXPECT_EQ(model.grads()[ls->offset], 0.0f);
  model.params()[ls->offset] = static_cast<float>(std::log(2.0));
  model.zero_grad();
  model.forward(b.in.data(), b.tg.data(), b.B, b.T);
  model.backward();
  EXPECT_NE(model.grads()[ls->offset], 0.0f);
}

TEST(TrainModel, QuantizedGradientsMatchStraightThroughSurrogate) {
  // Tier T2: a rare activation-level flip between fp32 and double moves values by ~1e-3 relative.
  check_model(test_config(true), 5e-2, 1e-3, true);
  check_model(variant_config(true), 5e-2, 1e-3, true);
}

TEST(TrainModel, RecomputeIsBitwiseIdentical) {
  for (bool quant : {true, false}) {
    const TritterConfig c = test_config(quant);
    const Batch b = make_batch(2, 13, c.vocab_size, 5);
    std::vector<float> g[2];
    double loss[2];
    for (int r = 0; r < 2; ++r) {
      Context ctx;
      ctx.threads = 2;
      TrainModel model(c, ctx);
      model.init_weights(1);
      model.reserve(b.B, b.T, r == 1);
      model.zero_grad();
      loss[r] = model.forward(b.in.data(), b.tg.data(), b.B, b.T);
      model.backward();
      g[r].assign(model.grads().begin(), model.grads().end());
    }
    EXPECT_EQ(loss[0], loss[1]);
    EXPECT_EQ(0, std::memcmp(g[0].data(), g[1].data(), g[0].size() * sizeof(float))) << "quant=" << quant;
  }
}

TEST(TrainModel, DataParallelStepEqualsTheWholeBatch) {
  // 3 sequences over 2 workers (2 + 1 rows) with ignored targets only in the first: the shard weighting must
  // reproduce the whole-batch mean. Sums run in another order, so fp32 agreement (1e-5 relative), not bits.
  for (bool quant : {true, false}) {
    const TritterConfig c = test_config(quant);
    Batch b = make_batch(3, 11, c.vocab_size, 21);
    for (int j = 0; j < 7; ++j) b.tg[j] = -100;
    Context ctx1;
    ctx1.threads = 1;
    TrainModel one(c, ctx1);
    one.init_weights(5);
    one.zero_grad();
    const double l1 = one.forward(b.in.data(), b.tg.data(), b.B, b.T, 0.5f);
    one.backward();
    Context ctx2;
    ctx2.threads = 2;
    ParallelTrainModel two(c, ctx2);
    ASSERT_EQ(two.workers(), 2);
    two.primary().init_weights(5);
    two.primary().zero_grad();
    const double l2 = two.step(b.in.data(), b.tg.data(), b.B, b.T, 0.5f, true);
    EXPECT_NEAR(l1, l2, 1e-5 * l1);
    double num = 0, den = 0;
    for (int64_t j = 0; j < one.num_params(); ++j) {
      const double d = one.grads()[j] - two.primary().grads()[j];
      num += d * d;
      den += static_cast<double>(one.grads()[j]) * one.grads()[j];
    }
    EXPECT_LE(std::sqrt(num / den), 1e-5) << "quant=" << quant;
  }
}

TEST(TrainModel, ArenaSizeFunctionIsWhatIsAllocated) {
  const TritterConfig c = test_config(true);
  Context ctx;
  TrainModel model(c, ctx);
  model.reserve(3, 17, false);
  EXPECT_EQ(model.arena_bytes(), train_activation_bytes(c, 3, 17, false));
  EXPECT_LT(train_activation_bytes(c, 3, 17, true), train_activation_bytes(c, 3, 17, false));
  EXPECT_THROW(model.reserve(1, c.max_position_embeddings + 1, false), Error);
}

}  // namespace
}  // namespace tritter::train
