// Per-slot LoRA adapters and the prefix cache of the batched engine, against the single-sequence Engine:
// slots with different adapter sets (and one without) share every step, prompt rows and decode rows mixed, and each
// gets the logits, bit for bit, of an Engine with `set_lora(base + its set)`; a prefix copied from another slot
// gives the logits and greedy tokens of recomputing it, without growing the caches' memory; the carve both engines
// bind (EngineViews); and the scheduler's use of both (a job's adapter, a prefix copied from another slot).
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "infer/batch_engine.h"
#include "infer/engine.h"
#include "infer/engine_sizes.h"
#include "infer/generate.h"
#include "infer/lora_apply.h"
#include "infer/sampler.h"
#include "model/init.h"
#include "model/lora.h"
#include "model/packed_model.h"
#include "model/peft.h"
#include "serve/scheduler.h"
#include "util/test_util.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;

PackedModel adapters_model(const TritterConfig& c, uint64_t seed) {
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  init_parameters(p, c, seed);
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, {HeadFormat::I8}, nullptr);
}

TritterConfig test_config() {
  ConfigOverrides o;
  o.model_size = "test";
  return resolve_config(o);
}

// An adapter on `targets` with random A and B (B non-zero, so it changes the logits).
void write_adapter(const fs::path& dir, const TritterConfig& c, const std::string& targets, uint64_t seed) {
  LoraConfig l;
  l.rank = 4;
  l.alpha = 8;
  l.targets = parse_lora_targets(targets);
  const auto table = lora_table(c, l);
  std::vector<float> p(static_cast<size_t>(lora_num_params(table, l.rank)));
  lora_init(p, table, l, seed);
  Rng rng(seed + 1);
  for (const auto& t : table) {
    for (int64_t i = 0; i < t.O * l.rank; ++i) p[static_cast<size_t>(t.b_offset + i)] = 0.3f * (rng.uniform() - 0.5f);
  }
  save_lora_adapter(dir, c, l, p, "base");
}

std::vector<int32_t> adapters_prompt(Rng& rng, int64_t n, int64_t V) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(V));
  return t;
}

// Greedy decode alone with `lora` on the single engine: the logits of each generated token (steps, V).
std::vector<float> adapters_alone(Context& ctx, const ModelWeights& w, const std::vector<int32_t>& prompt, int64_t steps,
                         const LoraSet* lora, int64_t chunk) {
  const int64_t V = w.config.vocab_size;
  Engine e(ctx, w, {.context = 96, .kv_dtype = KvDtype::F32, .max_batch = chunk});
  e.set_lora(lora);
  std::vector<float> all, logits(static_cast<size_t>(V));
  e.forward(prompt, logits.data(), false);
  for (int64_t i = 0; i < steps; ++i) {
    all.insert(all.end(), logits.begin(), logits.end());
    const int32_t t = argmax(logits.data(), V);
    if (i + 1 < steps) e.forward(std::span<const int32_t>(&t, 1), logits.data(), false);
  }
  return all;
}

size_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return a.size() + b.size();
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return n;
}

TEST(BatchAdapters, RowsWithDifferentAdaptersInOneStepEqualTheSingleEngine) {
  Context ctx;
  ctx.threads = 2;
  const TritterConfig c = test_config();
  const PackedModel m = adapters_model(c, 17);
  const ModelWeights& w = m.weights();
  const int64_t V = c.vocab_size;
  test::TempDir tmp;
  write_adapter(tmp.path() / "base", c, "q_proj,v_proj", 1);  // on every row (--lora DIR)
  write_adapter(tmp.path() / "a", c, "all", 2);
  write_adapter(tmp.path() / "b", c, "o_proj,down_proj,up_proj", 3);
  LoraSet base, a, b;
  base.add(tmp.path() / "base", 1.0f, c, nullptr);
  a.add(tmp.path() / "a", 0.7f, c, nullptr);
  b.add(tmp.path() / "b", 1.0f, c, nullptr);
  // What `generate --lora base --lora a` runs: one set, base's adapters first.
  LoraSet base_a, base_b;
  base_a.add(tmp.path() / "base", 1.0f, c, nullptr);
  base_a.add(tmp.path() / "a", 0.7f, c, nullptr);
  base_b.add(tmp.path() / "base", 1.0f, c, nullptr);
  base_b.add(tmp.path() / "b", 1.0f, c, nullptr);

  BatchEngine be(ctx, w, {.slots = 4, .context = 96, .max_batch = 32});
  be.set_lora(&base);
  EXPECT_EQ(be.add_adapter(&a), 0);
  EXPECT_EQ(be.add_adapter(&b), 1);
  const int set_of[4] = {0, 1, -1, 0};  // slots 0 and 3 share set a: their rows are not neighbours in the step
  for (int s = 0; s < 4; ++s) be.set_slot_adapter(s, set_of[s]);
  Rng rng(8);
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t n : {5, 9, 3, 7}) prompts.push_back(adapters_prompt(rng, n, V));
  const int64_t steps = 8;

  // Step 1: every prompt as rows of one step (their last rows want logits); then greedy decode steps together.
  std::vector<int> slots;
  std::vector<int32_t> toks;
  std::vector<uint8_t> want;
  for (int s = 0; s < 4; ++s) {
    for (size_t i = 0; i < prompts[s].size(); ++i) {
      slots.push_back(s);
      toks.push_back(prompts[s][i]);
      want.push_back(i + 1 == prompts[s].size());
    }
  }
  std::vector<float> logits(static_cast<size_t>(4 * V));
  std::vector<std::vector<float>> got(4);
  be.step(slots, toks, want.data(), logits.data());
  const std::vector<int> all = {0, 1, 2, 3};
  for (int64_t i = 0; i < steps; ++i) {
    std::vector<int32_t> next(4);
    for (int s = 0; s < 4; ++s) {
      const float* row = logits.data() + s * V;
      got[s].insert(got[s].end(), row, row + V);
      next[s] = argmax(row, V);
    }
    if (i + 1 < steps) be.decode(all, next, logits.data());
  }
  const LoraSet* single[4] = {&base_a, &base_b, &base, &base_a};
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(differing(got[s], adapters_alone(ctx, w, prompts[s], steps, single[s], 32)), 0u) << "slot " << s;
  }
  // The adapters matter: slot 3's logits (set a) differ from the same prompt with the base alone.
  EXPECT_GT(differing(got[3], adapters_alone(ctx, w, prompts[3], steps, &base, 32)), 0u);

  // prefill() and embed() of a slot run its set too.
  be.reset(1);
  std::vector<float> pre(static_cast<size_t>(V));
  be.prefill(1, prompts[1], pre.data());
  EXPECT_EQ(differing(pre, std::vector<float>(got[1].begin(), got[1].begin() + V)), 0u);

  // Changing a slot's set empties it; an index out of range is an error.
  EXPECT_EQ(be.position(1), 9);
  be.set_slot_adapter(1, 1);
  EXPECT_EQ(be.position(1), 9);  // the same set: kept
  be.set_slot_adapter(1, 0);
  EXPECT_EQ(be.position(1), 0);
  EXPECT_THROW(be.set_slot_adapter(1, 2), Error);
  EXPECT_THROW(be.set_slot_adapter(4, 0), Error);
}

void check_copy_prefix(KvDtype kv) {
  Context ctx;
  ctx.threads = 2;
  const TritterConfig c = test_config();
  const PackedModel m = adapters_model(c, 23);
  const int64_t V = c.vocab_size;
  Rng rng(31);
  const auto system = adapters_prompt(rng, 40, V), q1 = adapters_prompt(rng, 7, V), q2 = adapters_prompt(rng, 5, V);
  std::vector<int32_t> p1 = system, p2 = system;
  p1.insert(p1.end(), q1.begin(), q1.end());
  p2.insert(p2.end(), q2.begin(), q2.end());

  const BatchEngineOptions o{.slots = 3, .context = 96, .kv_dtype = kv, .max_batch = 16};
  BatchEngine be(ctx, m.weights(), o);
  const int64_t cache_bytes = ctx.memory.in_use(MemCategory::KvCache);
  EXPECT_EQ(cache_bytes, 3 * static_cast<int64_t>(be.slot_cache_bytes()));
  std::vector<float> l1(static_cast<size_t>(V)), fresh(static_cast<size_t>(V)), copied(static_cast<size_t>(V));
  be.prefill(0, p1, l1.data());  // slot 0: system prompt + first question
  // Recomputing p2 from scratch in slot 2; copying the system prompt from slot 0 into slot 1.
  be.prefill(2, p2, fresh.data());
  be.prefill(1, adapters_prompt(rng, 11, V), nullptr);  // something else was in slot 1
  const bool quantized = kv == KvDtype::I8 || kv == KvDtype::I4;
  const int64_t kept = be.copy_prefix(0, 1, static_cast<int64_t>(system.size()));
  EXPECT_EQ(kept, quantized ? 32 : 40);  // a quantized cache copies whole 32-token key groups
  EXPECT_EQ(be.position(1), kept);
  be.prefill(1, std::span<const int32_t>(p2).subspan(static_cast<size_t>(kept)), copied.data());
  EXPECT_EQ(differing(fresh, copied), 0u);
  // And the decoding that follows: both slots in one step, bit for bit.
  for (int i = 0; i < 6; ++i) {
    const int32_t t1 = argmax(copied.data(), V), t2 = argmax(fresh.data(), V);
    ASSERT_EQ(t1, t2) << "step " << i;
    std::vector<float> two(static_cast<size_t>(2 * V));
    const std::vector<int> slots = {1, 2};
    const std::vector<int32_t> toks = {t1, t2};
    be.decode(slots, toks, two.data());
    copied.assign(two.begin(), two.begin() + V);
    fresh.assign(two.begin() + V, two.end());
    EXPECT_EQ(differing(fresh, copied), 0u) << "step " << i;
  }
  if (kv == KvDtype::F32) {  // and it is what the single engine gives
    Engine e(ctx, m.weights(), {.context = 96, .max_batch = 16});
    std::vector<float> want(static_cast<size_t>(V));
    e.forward(p2, want.data(), false);
    be.reset(1);
    EXPECT_EQ(be.copy_prefix(0, 1, 1000), static_cast<int64_t>(p1.size()));  // at most what slot 0 holds
    be.truncate(1, static_cast<int64_t>(system.size()));
    be.prefill(1, q2, copied.data());
    EXPECT_EQ(differing(want, copied), 0u);
  }
  EXPECT_EQ(ctx.memory.in_use(MemCategory::KvCache), cache_bytes);  // copies allocate nothing
  // Slots that run different adapter sets share nothing.
  test::TempDir tmp;
  write_adapter(tmp.path() / "a", c, "all", 5);
  LoraSet a;
  a.add(tmp.path() / "a", 1.0f, c, nullptr);
  be.add_adapter(&a);
  be.set_slot_adapter(1, 0);
  EXPECT_EQ(be.copy_prefix(0, 1, 40), 0);
  EXPECT_EQ(be.position(1), 0);
  EXPECT_THROW(be.copy_prefix(0, 3, 4), Error);
}

TEST(BatchAdapters, CopiedPrefixEqualsRecomputingF32) { check_copy_prefix(KvDtype::F32); }
TEST(BatchAdapters, CopiedPrefixEqualsRecomputingF16) { check_copy_prefix(KvDtype::F16); }
TEST(BatchAdapters, CopiedPrefixEqualsRecomputingInt8) { check_copy_prefix(KvDtype::I8); }

TEST(BatchAdapters, CopyPrefixRefusesAnotherShape) {
  const TritterConfig c = test_config();
  KvCache a(c, 64, KvDtype::F32, 8, nullptr), b(c, 64, KvDtype::F16, 8, nullptr), d(c, 32, KvDtype::F32, 8, nullptr);
  EXPECT_THROW(b.copy_prefix(a, 4), Error);
  EXPECT_THROW(d.copy_prefix(a, 4), Error);
  EXPECT_EQ(a.copy_prefix(a, 4), 0);  // itself: a truncate (of an empty cache)
}

// Reads a job's events until Done: its tokens, and the prompt positions it did not compute.
std::pair<std::vector<int32_t>, int64_t> adapters_collect(serve::Channel& ch) {
  std::vector<int32_t> tokens;
  const auto end = serve::Clock::now() + std::chrono::seconds(60);
  while (serve::Clock::now() < end) {
    serve::Event e;
    if (!ch.pop(e, std::chrono::milliseconds(100))) continue;
    if (e.kind == serve::Event::Kind::Token && e.token >= 0) tokens.push_back(e.token);
    if (e.kind == serve::Event::Kind::Done) return {tokens, e.cached_tokens};
    if (e.kind == serve::Event::Kind::Error) ADD_FAILURE() << e.error;
  }
  ADD_FAILURE() << "no answer";
  return {tokens, -1};
}

TEST(BatchAdapters, SchedulerCopiesASharedPrefixAndRunsEachJobsAdapter) {
  Context ctx;
  ctx.threads = 2;
  const TritterConfig c = test_config();
  const PackedModel m = adapters_model(c, 29);
  const int64_t V = c.vocab_size;
  test::TempDir tmp;
  write_adapter(tmp.path() / "a", c, "all", 9);
  LoraSet a;
  a.add(tmp.path() / "a", 1.0f, c, nullptr);
  BatchEngine be(ctx, m.weights(), {.slots = 3, .context = 128, .max_batch = 16});
  be.add_adapter(&a);
  serve::Metrics metrics;
  serve::Scheduler sched(be, {.max_queue = 8}, metrics);
  Rng rng(3);
  const auto system = adapters_prompt(rng, 40, V);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> p = system;
    p.push_back(static_cast<int32_t>(i));  // each question starts differently
    const auto q = adapters_prompt(rng, 5, V);
    p.insert(p.end(), q.begin(), q.end());
    prompts.push_back(p);
  }
  auto job = [&](int i, int adapter) {
    serve::Job j;
    j.prompt = prompts[static_cast<size_t>(i)];
    j.max_tokens = 8;
    j.sampler.temperature = 0;
    j.stop_at_eos = false;
    j.adapter = adapter;
    j.channel = std::make_shared<serve::Channel>();
    return j;
  };
  std::vector<serve::Job> jobs = {job(0, -1)};
  auto ch0 = jobs[0].channel;
  ASSERT_EQ(sched.submit(std::move(jobs)), serve::Scheduler::Submit::Ok);
  const auto r0 = adapters_collect(*ch0);
  // Together: job 1 takes job 0's slot (its own prefix), job 2 another slot and copies the system prompt from
  // job 1's, job 3 runs adapter a: nothing to share.
  jobs = {job(1, -1), job(2, -1), job(3, 0)};
  std::vector<std::shared_ptr<serve::Channel>> chans;
  for (auto& j : jobs) chans.push_back(j.channel);
  ASSERT_EQ(sched.submit(std::move(jobs)), serve::Scheduler::Submit::Ok);
  std::vector<std::pair<std::vector<int32_t>, int64_t>> got = {r0};
  for (auto& ch : chans) got.push_back(adapters_collect(*ch));
  EXPECT_EQ(got[0].second, 0);
  EXPECT_EQ(got[1].second, 40);
  EXPECT_EQ(got[2].second, 40);
  EXPECT_EQ(got[3].second, 0);
  EXPECT_NE(metrics.render().find("tritter_prompt_tokens_copied_total 40\n"), std::string::npos) << metrics.render();
  for (int i = 0; i < 4; ++i) {
    Engine e(ctx, m.weights(), {.context = 128, .max_batch = 16});
    e.set_lora(i == 3 ? &a : nullptr);
    GenerateOptions go;
    go.max_tokens = 8;
    go.stop_at_eos = false;
    go.sampler.temperature = 0;
    EXPECT_EQ(got[static_cast<size_t>(i)].first, generate_tokens(e, prompts[static_cast<size_t>(i)], go, {}).tokens)
        << "job " << i;
  }
  // An adapter index that was never loaded is an error event, and the scheduler goes on.
  jobs = {job(0, 1)};
  auto bad = jobs[0].channel;
  ASSERT_EQ(sched.submit(std::move(jobs)), serve::Scheduler::Submit::Ok);
  serve::Event e;
  ASSERT_TRUE(bad->pop(e, std::chrono::seconds(10)));
  EXPECT_EQ(e.kind, serve::Event::Kind::Error);
}

// The carve Engine and BatchEngine bind: inside the buffer, sized as engine_scratch_bytes says, and the buffers
// that must not alias are apart.
TEST(EngineViews, OneCarveInsideItsBuffer) {
  const TritterConfig c = test_config();
  const int64_t B = 5;
  EngineViews counted, v;
  const size_t bytes = engine_views(nullptr, c, B, counted);
  EXPECT_EQ(bytes, engine_scratch_bytes(c, {.context = 64, .max_batch = B}));
  std::vector<uint8_t> buf(bytes + 64);
  uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  EXPECT_EQ(engine_views(base, c, B, v), bytes);
  const auto inside = [&](const void* p, int64_t n) {
    const auto* q = static_cast<const uint8_t*>(p);
    return q >= base && q + n <= base + bytes;
  };
  const int64_t D = c.hidden_size;
  EXPECT_TRUE(inside(v.x, B * D * 4));
  EXPECT_TRUE(inside(v.acts.q, B * c.q_dim() * 4));
  EXPECT_TRUE(inside(v.acts.u, B * c.intermediate_size * 4));
  EXPECT_TRUE(inside(v.normed, B * D * 4));
  EXPECT_TRUE(inside(v.hq, B * D));
  EXPECT_TRUE(inside(v.hs, B * 4));
  EXPECT_EQ(v.acts.x, v.x);
  EXPECT_NE(v.normed, v.x);
  EXPECT_NE(static_cast<void*>(v.acts.q), static_cast<void*>(v.acts.k));
  EXPECT_EQ(v.scratch.fp, nullptr);  // the LoRA buffer is the engines' own (set_lora)
}

}  // namespace
}  // namespace tritter
