// The continuous-batching scheduler: greedy jobs submitted together (more than there are slots, so some wait and
// join a running batch) give the tokens the single-sequence generate loop gives each alone; stop strings, the
// bounded queue, cancellation, timeouts, prefix reuse and a draining stop.
#include "serve/scheduler.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/rng.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "text/byte_tokenizer.h"

namespace tritter::serve {
namespace {

PackedModel scheduler_model(uint64_t seed) {
  ConfigOverrides o;
  o.model_size = "test";
  const TritterConfig c = resolve_config(o);
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  init_parameters(p, c, seed);
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, {HeadFormat::F32}, nullptr);
}

struct Collected {
  std::vector<int32_t> tokens;
  std::string text, finish;
  int64_t cached = 0;
};

// Reads events until the job's Done (or Error), at most 30 s.
Collected scheduler_collect(Channel& ch) {
  Collected c;
  const auto end = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < end) {
    Event e;
    if (!ch.pop(e, std::chrono::milliseconds(100))) continue;
    if (e.kind == Event::Kind::Token) {
      if (e.token >= 0) c.tokens.push_back(e.token);
      c.text += e.text;
    } else if (e.kind == Event::Kind::Done) {
      c.finish = e.finish_reason;
      c.cached = e.cached_tokens;
      return c;
    } else if (e.kind == Event::Kind::Error) {
      c.finish = "error: " + e.error;
      return c;
    }
  }
  c.finish = "no answer";
  return c;
}

Job greedy_job(const std::vector<int32_t>& prompt, int64_t max_tokens, std::shared_ptr<Channel> ch) {
  Job j;
  j.prompt = prompt;
  j.max_tokens = max_tokens;
  j.sampler.temperature = 0;
  j.stop_at_eos = false;
  j.channel = std::move(ch);
  return j;
}

TEST(Scheduler, BatchedJobsEqualTheGenerateLoopAlone) {
  Context ctx;
  ctx.threads = 2;
  const PackedModel m = scheduler_model(21);
  BatchEngine be(ctx, m.weights(), {.slots = 3, .context = 256, .max_batch = 8});
  Metrics metrics;
  Scheduler sched(be, {.max_queue = 16}, metrics);
  Rng rng(4);
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t n : {1, 5, 19, 2, 33, 8, 3}) {  // 7 jobs on 3 slots: some join a running batch
    std::vector<int32_t> p;
    for (int64_t i = 0; i < n; ++i) p.push_back(static_cast<int32_t>(8 + rng.next_u64() % 256));
    prompts.push_back(p);
  }
  std::vector<std::shared_ptr<Channel>> chans;
  std::vector<Job> jobs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    chans.push_back(std::make_shared<Channel>());
    jobs.push_back(greedy_job(prompts[i], 10 + static_cast<int64_t>(i) * 3, chans.back()));
  }
  ASSERT_EQ(sched.submit(std::move(jobs)), Scheduler::Submit::Ok);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Collected got = scheduler_collect(*chans[i]);
    Engine e(ctx, m.weights(), {.context = 256, .max_batch = 8});
    GenerateOptions go;
    go.max_tokens = 10 + static_cast<int64_t>(i) * 3;
    go.stop_at_eos = false;
    go.sampler.temperature = 0;
    const GenerateResult want = generate_tokens(e, prompts[i], go, {});
    EXPECT_EQ(got.finish, "length") << i;
    EXPECT_EQ(got.tokens, want.tokens) << "job " << i << " (prompt " << prompts[i].size() << ")";
    EXPECT_EQ(got.text, want.text) << i;
  }
}

TEST(Scheduler, StopStringsPrefixReuseQueueCancelAndDrain) {
  Context ctx;
  const PackedModel m = scheduler_model(5);
  BatchEngine be(ctx, m.weights(), {.slots = 1, .context = 128, .max_batch = 16});
  Metrics metrics;
  Scheduler sched(be, {.max_queue = 2}, metrics);
  const std::vector<int32_t> prompt = tokenize("hello", {.bos = false, .modality = -1, .eos = false});

  auto ch = std::make_shared<Channel>();
  ASSERT_EQ(sched.submit({greedy_job(prompt, 20, ch)}), Scheduler::Submit::Ok);
  const Collected full = scheduler_collect(*ch);
  ASSERT_EQ(full.finish, "length");
  ASSERT_GE(full.text.size(), 6u);
  // A stop string from the middle of that text: delivered up to it, never including it.
  const std::string stop = full.text.substr(3, 2);
  auto ch2 = std::make_shared<Channel>();
  Job j = greedy_job(prompt, 20, ch2);
  j.stop = {stop};
  ASSERT_EQ(sched.submit({j}), Scheduler::Submit::Ok);
  const Collected cut = scheduler_collect(*ch2);
  EXPECT_EQ(cut.finish, "stop");
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(cut.cached, static_cast<int64_t>(prompt.size()) - 1);  // the same prompt again: all but its last token

  // The queue holds two: three at once are refused together.
  std::vector<Job> three;
  for (int i = 0; i < 3; ++i) three.push_back(greedy_job(prompt, 4, std::make_shared<Channel>()));
  EXPECT_EQ(sched.submit(std::move(three)), Scheduler::Submit::QueueFull);

  // Cancelled before it could finish 100 tokens; a deadline in the past times out.
  auto ch3 = std::make_shared<Channel>();
  ch3->cancel();
  ASSERT_EQ(sched.submit({greedy_job(prompt, 100, ch3)}), Scheduler::Submit::Ok);
  const Collected cancelled = scheduler_collect(*ch3);
  EXPECT_EQ(cancelled.finish, "cancelled");
  EXPECT_LT(cancelled.tokens.size(), 100u);
  auto ch4 = std::make_shared<Channel>();
  Job late = greedy_job(prompt, 100, ch4);
  late.deadline = Clock::now() - std::chrono::seconds(1);
  ASSERT_EQ(sched.submit({late}), Scheduler::Submit::Ok);
  EXPECT_EQ(scheduler_collect(*ch4).finish, "timeout");

  // stop(false) lets a running job finish, then refuses new ones.
  auto ch5 = std::make_shared<Channel>();
  ASSERT_EQ(sched.submit({greedy_job(prompt, 30, ch5)}), Scheduler::Submit::Ok);
  sched.stop(false);
  const Collected drained = scheduler_collect(*ch5);
  EXPECT_EQ(drained.finish, "length");
  EXPECT_EQ(drained.tokens.size(), 30u);
  EXPECT_EQ(sched.submit({greedy_job(prompt, 1, std::make_shared<Channel>())}), Scheduler::Submit::Stopping);
}

TEST(Scheduler, EmbedJobAndPromptErrors) {
  Context ctx;
  const PackedModel m = scheduler_model(5);
  BatchEngine be(ctx, m.weights(), {.slots = 2, .context = 32, .max_batch = 16});
  Metrics metrics;
  Scheduler sched(be, {}, metrics);
  auto ch = std::make_shared<Channel>();
  Job e;
  e.kind = Job::Kind::Embed;
  e.prompt = {10, 11, 12};
  e.channel = ch;
  ASSERT_EQ(sched.submit({e}), Scheduler::Submit::Ok);
  Event ev;
  ASSERT_TRUE(ch->pop(ev, std::chrono::seconds(10)));
  ASSERT_EQ(ev.kind, Event::Kind::Embedding);
  EXPECT_EQ(static_cast<int64_t>(ev.embedding.size()), m.weights().config.hidden_size);
  // A bad token id reaches the engine: an Error event, and the scheduler keeps going.
  auto bad = std::make_shared<Channel>();
  ASSERT_EQ(sched.submit({greedy_job({100000}, 3, bad)}), Scheduler::Submit::Ok);
  EXPECT_EQ(scheduler_collect(*bad).finish.rfind("error: ", 0), 0u);
  auto ok = std::make_shared<Channel>();
  ASSERT_EQ(sched.submit({greedy_job({10, 11}, 3, ok)}), Scheduler::Submit::Ok);
  EXPECT_EQ(scheduler_collect(*ok).finish, "length");
  EXPECT_NE(metrics.render().find("tritter_generated_tokens_total 3"), std::string::npos);
}

}  // namespace
}  // namespace tritter::serve
