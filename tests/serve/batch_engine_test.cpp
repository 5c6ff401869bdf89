// The batched engine against the single-sequence Engine: sequences of different prompt lengths that join a
// running batch at different steps (and leave it at different steps) get the same logits, bit for bit, and so
// the same greedy tokens, as each decoded alone. Also prefix reuse (truncate), embeddings and the errors.
#include "infer/batch_engine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "core/error.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "infer/sampler.h"
#include "model/init.h"
#include "model/packed_model.h"

namespace tritter {
namespace {

TritterConfig variant(const std::string& name) {
  ConfigOverrides o;
  o.model_size = "test";
  if (name == "bitnet") {  // gated, no QK-norm, tied head, a sliding window shorter than the prompts
    o.mlp_act = MlpAct::Relu2Glu;
    o.qk_norm = false;
    o.post_norm = PostNorm::None;
    o.tie_word_embeddings = true;
    o.sliding_window = 5;
  }
  return resolve_config(o);
}

PackedModel batch_model(const TritterConfig& c, uint64_t seed, HeadFormat head) {
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  init_parameters(p, c, seed);
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, {head}, nullptr);
}

std::vector<int32_t> random_prompt(Rng& rng, int64_t n, int64_t V) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(V));
  return t;
}

struct Seq {
  std::vector<int32_t> prompt;
  int join = 0;       // the decode step at which it is prefilled
  int64_t steps = 0;  // tokens it generates
};

// Greedy decode of one sequence alone: the logits of every generated token (steps, V) and the tokens.
std::pair<std::vector<float>, std::vector<int32_t>> batch_alone(Context& ctx, const ModelWeights& w, const Seq& s,
                                                          int64_t chunk) {
  const int64_t V = w.config.vocab_size;
  Engine e(ctx, w, {.context = 128, .kv_dtype = KvDtype::F32, .max_batch = chunk});
  std::vector<float> all, logits(static_cast<size_t>(V));
  std::vector<int32_t> out;
  e.forward(s.prompt, logits.data(), false);
  for (int64_t i = 0; i < s.steps; ++i) {
    all.insert(all.end(), logits.begin(), logits.end());
    const int32_t t = argmax(logits.data(), V);
    out.push_back(t);
    if (i + 1 < s.steps) e.forward(std::span<const int32_t>(&t, 1), logits.data(), false);
  }
  return {all, out};
}

void check_batched_equals_alone(const std::string& name, HeadFormat head, KvDtype kv) {
  Context ctx;
  ctx.threads = 2;
  const TritterConfig c = variant(name);
  const PackedModel m = batch_model(c, 7, head);
  const ModelWeights& w = m.weights();
  const int64_t V = c.vocab_size;
  Rng rng(11);
  // Different prompt lengths (1 .. beyond a prefill chunk), join steps and lengths of generation.
  std::vector<Seq> seqs;
  const int64_t lens[] = {1, 3, 17, 7, 40, 2};
  const int joins[] = {0, 0, 2, 3, 3, 9};
  const int64_t steps[] = {12, 5, 9, 14, 6, 4};
  for (int i = 0; i < 6; ++i) seqs.push_back({random_prompt(rng, lens[i], V), joins[i], steps[i]});

  BatchEngine be(ctx, w, {.slots = 4, .context = 128, .kv_dtype = kv, .max_batch = 16});
  std::vector<std::vector<float>> got_logits(seqs.size());
  std::vector<std::vector<int32_t>> got(seqs.size());
  std::map<int, int> slot_of;  // sequence → slot while active
  std::vector<int> free_slots = {3, 2, 1, 0};
  std::vector<float> logits(static_cast<size_t>(4 * V));
  std::vector<int32_t> next(seqs.size());
  size_t waiting = 0;  // sequences join in order when their step has come and a slot is free
  for (int step = 0; waiting < seqs.size() || !slot_of.empty(); ++step) {
    while (waiting < seqs.size() && seqs[waiting].join <= step && !free_slots.empty()) {
      const int s = free_slots.back();
      free_slots.pop_back();
      be.reset(s);
      be.prefill(s, seqs[waiting].prompt, logits.data());
      got_logits[waiting].assign(logits.begin(), logits.begin() + V);
      next[waiting] = argmax(logits.data(), V);
      got[waiting].push_back(next[waiting]);
      slot_of[static_cast<int>(waiting)] = s;
      ++waiting;
    }
    std::vector<int> ids, slots;
    std::vector<int32_t> toks;
    for (auto it = slot_of.begin(); it != slot_of.end();) {
      if (static_cast<int64_t>(got[it->first].size()) >= seqs[it->first].steps) {  // done: leaves the batch
        free_slots.push_back(it->second);
        it = slot_of.erase(it);
      } else {
        ids.push_back(it->first);
        slots.push_back(it->second);
        toks.push_back(next[it->first]);
        ++it;
      }
    }
    if (slots.empty()) continue;
    be.decode(slots, toks, logits.data());
    for (size_t b = 0; b < ids.size(); ++b) {
      const float* row = logits.data() + b * V;
      got_logits[ids[b]].insert(got_logits[ids[b]].end(), row, row + V);
      next[ids[b]] = argmax(row, V);
      got[ids[b]].push_back(next[ids[b]]);
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (kv != KvDtype::F32) continue;  // the single engine below runs an f32 cache
    const auto [want_logits, want] = batch_alone(ctx, w, seqs[i], 16);
    EXPECT_EQ(got[i], want) << name << ": sequence " << i << " (prompt " << seqs[i].prompt.size() << ")";
    ASSERT_EQ(got_logits[i].size(), want_logits.size());
    size_t bad = 0;
    for (size_t j = 0; j < want_logits.size(); ++j) bad += got_logits[i][j] != want_logits[j];
    EXPECT_EQ(bad, 0u) << name << ": sequence " << i << ": logits differ from the single-sequence engine";
  }
}

TEST(BatchEngine, BatchedDecodeEqualsAloneF32Head) { check_batched_equals_alone("test", HeadFormat::F32, KvDtype::F32); }
TEST(BatchEngine, BatchedDecodeEqualsAloneI8HeadWindow) {
  check_batched_equals_alone("bitnet", HeadFormat::I8, KvDtype::F32);
}
TEST(BatchEngine, BatchedDecodeEqualsAloneFourBitHead) {
  check_batched_equals_alone("test", HeadFormat::I4, KvDtype::F32);
}
TEST(BatchEngine, QuantizedCacheRuns) { check_batched_equals_alone("test", HeadFormat::I8, KvDtype::I8); }

// A prompt run as rows of a step (beside another slot's decode) gives the logits prefill() gives, bit for bit.
TEST(BatchEngine, PromptRowsInAStepEqualPrefill) {
  Context ctx;
  ctx.threads = 2;
  const TritterConfig c = variant("bitnet");  // with the sliding window
  const PackedModel m = batch_model(c, 13, HeadFormat::I8);
  const int64_t V = c.vocab_size;
  Rng rng(2);
  const auto other = random_prompt(rng, 9, V), prompt = random_prompt(rng, 12, V);
  BatchEngine be(ctx, m.weights(), {.slots = 3, .context = 64, .max_batch = 16});
  std::vector<float> want(static_cast<size_t>(V)), got(static_cast<size_t>(2 * V)), alone(static_cast<size_t>(V));
  be.prefill(2, prompt, want.data());
  be.prefill(0, other, alone.data());
  // Slot 0 decodes one token while slot 1 runs its whole prompt as rows; logits for slot 0 and slot 1's last row.
  std::vector<int> slots = {0};
  std::vector<int32_t> toks = {argmax(alone.data(), V)};
  std::vector<uint8_t> wants = {1};
  for (size_t i = 0; i < prompt.size(); ++i) {
    slots.push_back(1);
    toks.push_back(prompt[i]);
    wants.push_back(i + 1 == prompt.size());
  }
  be.step(slots, toks, wants.data(), got.data());
  EXPECT_EQ(be.position(1), 12);
  EXPECT_EQ(be.position(0), 10);
  EXPECT_EQ(std::memcmp(got.data() + V, want.data(), static_cast<size_t>(V) * sizeof(float)), 0);
  // Slot 0's row equals the same decode run alone.
  be.reset(2);
  be.prefill(2, other, nullptr);
  const std::vector<int> one = {2};
  be.decode(one, std::span<const int32_t>(toks.data(), 1), alone.data());
  EXPECT_EQ(std::memcmp(got.data(), alone.data(), static_cast<size_t>(V) * sizeof(float)), 0);
}

TEST(BatchEngine, TruncateReusesThePrefix) {
  Context ctx;
  const TritterConfig c = variant("test");
  const PackedModel m = batch_model(c, 3, HeadFormat::F32);
  const int64_t V = c.vocab_size;
  Rng rng(5);
  const auto a = random_prompt(rng, 20, V), tail = random_prompt(rng, 6, V);
  std::vector<int32_t> ab = a;
  ab.insert(ab.end(), tail.begin(), tail.end());
  BatchEngine be(ctx, m.weights(), {.slots = 2, .context = 64, .max_batch = 8});
  std::vector<float> fresh(static_cast<size_t>(V)), reused(static_cast<size_t>(V));
  be.prefill(0, ab, fresh.data());
  be.reset(1);
  be.prefill(1, random_prompt(rng, 30, V), nullptr);  // a longer previous turn that diverges after 20 tokens
  be.reset(1);
  be.prefill(1, a, nullptr);
  be.prefill(1, random_prompt(rng, 5, V), nullptr);
  EXPECT_EQ(be.truncate(1, 20), 20);
  EXPECT_EQ(be.position(1), 20);
  be.prefill(1, tail, reused.data());
  EXPECT_EQ(std::memcmp(fresh.data(), reused.data(), fresh.size() * sizeof(float)), 0);
  EXPECT_EQ(be.truncate(1, 1000), 26);  // never more than it holds
}

TEST(BatchEngine, EmbedIsUnitAndMatchesAcrossSlots) {
  Context ctx;
  const TritterConfig c = variant("test");
  const PackedModel m = batch_model(c, 3, HeadFormat::F32);
  Rng rng(9);
  const auto t = random_prompt(rng, 37, c.vocab_size);
  BatchEngine be(ctx, m.weights(), {.slots = 2, .context = 64, .max_batch = 8});
  const auto e0 = be.embed(0, t), e1 = be.embed(1, t);
  ASSERT_EQ(static_cast<int64_t>(e0.size()), c.hidden_size);
  double n = 0;
  for (float v : e0) n += double(v) * v;
  EXPECT_NEAR(n, 1.0, 1e-5);
  EXPECT_EQ(e0, e1);
  EXPECT_EQ(be.position(0), 0);
}

TEST(BatchEngine, Errors) {
  Context ctx;
  const TritterConfig c = variant("test");
  const PackedModel m = batch_model(c, 3, HeadFormat::F32);
  BatchEngine be(ctx, m.weights(), {.slots = 2, .context = 16, .max_batch = 8});
  std::vector<float> logits(static_cast<size_t>(2 * c.vocab_size));
  const std::vector<int32_t> long_prompt(17, 9), bad = {static_cast<int32_t>(c.vocab_size)};
  EXPECT_THROW(be.prefill(0, long_prompt, logits.data()), Error);
  EXPECT_THROW(be.prefill(0, bad, logits.data()), Error);
  const std::vector<int> bad_slot = {1, 2};
  const std::vector<int32_t> toks = {9, 9};
  EXPECT_THROW(be.decode(bad_slot, toks, logits.data()), Error);
  EXPECT_EQ(be.position(1), 0);
  EXPECT_THROW(BatchEngine(ctx, m.weights(), {.slots = 0}), Error);
}

}  // namespace
}  // namespace tritter
