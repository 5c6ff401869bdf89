// Layer streaming (issue 7): the streamed engine's logits equal the resident engine's bit for bit — "test" and
// "tiny" presets, group sizes 1, 2 and L, with and without prefetch, f32, int8 and 4-bit heads, prefill (chunked) and
// decode — the group size chosen from the budget, budgets too small failing at start with the numbers, and one
// Engine running either weight source.
#include "infer/streaming_engine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/rng.h"
#include "infer/engine_sizes.h"
#include "infer/kv_cache.h"
#include "infer/weight_source.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "util/test_util.h"

namespace tritter {
namespace {
using test::error_of;

constexpr int64_t kContext = 64;

std::vector<float> stream_params(const TritterConfig& c, uint64_t seed) {
  std::vector<float> p(parameter_count(c));
  init_parameters(p, c, seed);
  Rng rng(seed + 7);
  for (const auto& t : tensor_table(c)) {  // gains off 1, so a mis-wired norm shows
    if (t.role != TensorRole::Norm) continue;
    for (int64_t i = 0; i < t.numel(); ++i) p[t.offset + i] = 1.0f + 0.3f * (rng.uniform() - 0.5f);
  }
  return p;
}

std::vector<int32_t> stream_prompt(const TritterConfig& c, int64_t T, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(T);
  for (auto& id : ids) id = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(c.vocab_size)));
  return ids;
}

EngineOptions engine_options() {
  EngineOptions o;
  o.context = kContext;
  o.max_batch = 4;  // a 9-token prompt runs in three chunks
  return o;
}

// All logits of a 9-token prefill, then the last-token logits of 3 single-token decode steps.
std::vector<float> stream_run(Engine& e, const std::vector<int32_t>& ids) {
  const int64_t V = e.weights().config.vocab_size;
  std::vector<float> z((ids.size() + 3) * V);
  test::poison(std::span<float>(z));
  e.forward(ids, z.data(), true);
  for (int s = 0; s < 3; ++s) {
    const int32_t id = ids[s];
    e.forward(std::span<const int32_t>(&id, 1), z.data() + (ids.size() + s) * V, false);
  }
  return z;
}

struct Fixture {
  TritterConfig c;
  test::TempDir dir;
  std::filesystem::path path;
  std::vector<int32_t> ids;
  std::vector<float> resident;
};

std::unique_ptr<Fixture> make_fixture(const std::string& size, HeadFormat head) {
  auto fp = std::make_unique<Fixture>();
  Fixture& f = *fp;
  ConfigOverrides o;
  o.model_size = size;
  f.c = resolve_config(o);
  f.path = f.dir / "m.safetensors";
  pack_checkpoint(f.path, f.c, stream_params(f.c, 5), {head});
  f.ids = stream_prompt(f.c, 9, 3);
  const PackedModel m = PackedModel::open(f.path);
  Context ctx;
  Engine e(ctx, m.weights(), engine_options());
  f.resident = stream_run(e, f.ids);
  return fp;
}

StreamingOptions streaming(int group, bool prefetch, int64_t budget = int64_t{1} << 30) {
  StreamingOptions s;
  s.engine = engine_options();
  s.memory_budget = budget;
  s.layer_group_size = group;
  s.prefetch = prefetch;
  return s;
}

void expect_same_as_resident(const Fixture& f) {
  const int L = f.c.num_hidden_layers;
  for (int group : {1, 2, L}) {
    for (bool prefetch : {true, false}) {
      Context ctx;
      StreamingEngine e(ctx, f.path, streaming(group, prefetch));
      EXPECT_EQ(e.plan().layer_group_size, group);
      EXPECT_EQ(stream_run(e.engine(), f.ids), f.resident) << f.c.model_size << ": group " << group << ", prefetch " << prefetch;
      const LoaderStats s = e.loader_stats();
      EXPECT_GT(s.loads, 0);
      EXPECT_LE(ctx.memory.total_peak(), e.memory().budget());
    }
  }
}

TEST(Streaming, SameLogitsAsResidentOnTestPreset) {
  expect_same_as_resident(*make_fixture("test", HeadFormat::F32));
}

TEST(Streaming, SameLogitsAsResidentOnTestPresetWithInt8Head) {
  expect_same_as_resident(*make_fixture("test", HeadFormat::I8));
}

TEST(Streaming, SameLogitsAsResidentOnTestPresetWithFourBitHead) {
  expect_same_as_resident(*make_fixture("test", HeadFormat::I4));
}

TEST(Streaming, SameLogitsAsResidentOnTinyPreset) {
  expect_same_as_resident(*make_fixture("tiny", HeadFormat::F32));
}

// Budget = what is resident + two buffers of exactly one layer: the engine picks groups of 1, and the head is
// cut into chunks no larger than a group's buffer; the plan from the config alone is what the engine follows.
TEST(Streaming, GroupSizeChosenFromTheBudget) {
  const auto fp = make_fixture("test", HeadFormat::F32);
  const Fixture& f = *fp;
  const PackedFileLayout layout(f.path);
  EXPECT_EQ(static_cast<int64_t>(layout.group_bytes(0, 2)), streamed_group_bytes(f.c, 0, 2));
  EngineOptions eo = engine_options();
  const StreamingPlan big = plan_streaming(f.c, HeadFormat::F32, eo, int64_t{1} << 30, 0, true);
  EXPECT_TRUE(big.fits);
  EXPECT_EQ(big.layer_group_size, f.c.num_hidden_layers);
  const int64_t fixed = big.kv_cache + big.engine_buffers + big.resident;
  const int64_t one = streamed_group_bytes(f.c, 0, 1);
  const int64_t budget = fixed + 2 * one + 100;
  const StreamingPlan p = plan_streaming(f.c, HeadFormat::F32, eo, budget, 0, true);
  ASSERT_TRUE(p.fits) << p.problem;
  EXPECT_EQ(p.layer_group_size, 1);
  EXPECT_GT(p.head_chunks, 1);
  EXPECT_LE(p.total(), budget);
  Context ctx;
  StreamingEngine e(ctx, f.path, streaming(0, true, budget));
  EXPECT_EQ(e.plan().layer_group_size, 1);
  EXPECT_EQ(e.plan().head_rows, p.head_rows);
  EXPECT_EQ(stream_run(e.engine(), f.ids), f.resident);
  EXPECT_LE(ctx.memory.total_peak(), budget);
}

// A source that forwards to another and records what the engine asked for.
struct Recording final : WeightSource {
  explicit Recording(WeightSource& inner) : inner(inner) {}
  const ModelWeights& weights() const override { return inner.weights(); }
  void embed_rows(const int32_t* tokens, int64_t T, float* out) override {
    embedded += T;
    inner.embed_rows(tokens, T, out);
  }
  LayerGroup acquire_layers(int l, bool head_next) override {
    EXPECT_EQ(held, 0) << "layer " << l << " acquired while a group is held";
    ++held;
    const LayerGroup g = inner.acquire_layers(l, head_next);
    acquired.push_back(l);
    heads_next.push_back(head_next);
    return g;
  }
  void release_layers(const LayerGroup& g) override {
    --held;
    inner.release_layers(g);
  }
  const float* final_norm() const override { return inner.final_norm(); }
  void head_forward(const Context& ctx, float* logits, const float* h, int64_t rows, int8_t* hq,
                    float* hs) override {
    head_rows.push_back(rows);
    inner.head_forward(ctx, logits, h, rows, hq, hs);
  }
  WeightSource& inner;
  int held = 0;
  int64_t embedded = 0;
  std::vector<int> acquired;
  std::vector<bool> heads_next;
  std::vector<int64_t> head_rows;
};

// One Engine runs any source: resident (one group of all layers) and streamed (groups of 1) give the resident
// logits, each group is released before the next is acquired, the head runs only where logits are asked for.
TEST(Streaming, OneEngineRunsEitherWeightSource) {
  const auto fp = make_fixture("test", HeadFormat::F32);
  const Fixture& f = *fp;
  const int L = f.c.num_hidden_layers;
  ASSERT_EQ(L, 2);
  const PackedModel m = PackedModel::open(f.path);
  {
    Context ctx;
    ResidentWeights resident(m.weights());
    Recording rec(resident);
    Engine e(ctx, rec, engine_options());
    EXPECT_EQ(stream_run(e, f.ids), f.resident);
    EXPECT_EQ(rec.held, 0);
    EXPECT_EQ(rec.acquired, std::vector<int>(6, 0));  // 3 prefill chunks + 3 decode steps, one group each
    EXPECT_EQ(rec.head_rows, (std::vector<int64_t>{4, 4, 1, 1, 1, 1}));
    EXPECT_EQ(rec.embedded, 12);
  }
  Context ctx;
  StreamedWeights streamed(ctx, f.path, streaming(1, true));
  Recording rec(streamed);
  Engine e(ctx, rec, streamed.engine_options());
  EXPECT_EQ(ctx.memory.in_use(MemCategory::Activations), streamed.plan().engine_buffers);
  // The plan less the head's input, which lives in the engine's scratch.
  const StreamingPlan& p = streamed.plan();
  EXPECT_EQ(ctx.memory.total_in_use(), p.total() - p.resident + 4 * f.c.hidden_size);
  EXPECT_EQ(&e.weights(), &streamed.weights());
  EXPECT_EQ(stream_run(e, f.ids), f.resident);
  EXPECT_EQ(rec.held, 0);
  EXPECT_EQ(rec.acquired.size(), 12u);
  for (size_t i = 0; i < rec.acquired.size(); ++i) EXPECT_EQ(rec.acquired[i], static_cast<int>(i % 2)) << i;
  // Last-token logits of a 9-token prompt: only the last chunk needs the head (and its first chunk prefetched).
  e.reset();
  rec.acquired.clear();
  rec.heads_next.clear();
  rec.head_rows.clear();
  std::vector<float> z(f.c.vocab_size);
  e.forward(f.ids, z.data(), false);
  EXPECT_EQ(rec.heads_next, (std::vector<bool>{false, false, false, false, true, true}));
  EXPECT_EQ(rec.head_rows, std::vector<int64_t>{1});
  const size_t V = static_cast<size_t>(f.c.vocab_size);
  EXPECT_EQ(z, std::vector<float>(f.resident.begin() + 8 * V, f.resident.begin() + 9 * V));
  EXPECT_GT(streamed.loader_stats().loads, 0);
}


TEST(Streaming, TooSmallBudgetsFailAtStartWithTheNumbers) {
  const auto fp = make_fixture("test", HeadFormat::F32);
  const Fixture& f = *fp;
  const int64_t kv = static_cast<int64_t>(kv_cache_bytes(f.c, kContext, KvDtype::F32, 4));
  const StreamingPlan big = plan_streaming(f.c, HeadFormat::F32, engine_options(), int64_t{1} << 30, 0, true);
  EXPECT_EQ(big.kv_cache, kv);
  EXPECT_EQ(big.engine_buffers, static_cast<int64_t>(engine_buffer_bytes(f.c, engine_options())));
  {  // what the streamed engine's Engine then allocates besides the cache: exactly the planned buffers
    Context ctx;
    StreamingEngine e(ctx, f.path, streaming(0, true, int64_t{1} << 30));
    EXPECT_EQ(ctx.memory.in_use(MemCategory::Activations), big.engine_buffers);
  }
  const int64_t fixed = big.kv_cache + big.engine_buffers + big.resident;
  // Not even the KV cache.
  std::string m = error_of([&] {
    Context ctx;
    StreamingEngine e(ctx, f.path, streaming(0, true, kv / 2));
  });
  EXPECT_NE(m.find("memory budget: need"), std::string::npos) << m;
  EXPECT_NE(m.find("KV cache (f32, 64 positions"), std::string::npos) << m;
  EXPECT_NE(m.find("budget " + format_bytes(static_cast<double>(kv / 2))), std::string::npos) << m;
  // The cache fits, one layer group (with its prefetch buffer) does not: the error names the group and the use.
  m = error_of([&] {
    Context ctx;
    StreamingEngine e(ctx, f.path, streaming(0, true, fixed + 1024));
  });
  EXPECT_NE(m.find("memory budget: need"), std::string::npos) << m;
  EXPECT_NE(m.find("for layer group 0-0 (2 buffers: active + prefetch)"), std::string::npos) << m;
  EXPECT_NE(m.find("in use"), std::string::npos) << m;
  // An explicit group larger than the model.
  m = error_of([&] {
    Context ctx;
    StreamingEngine e(ctx, f.path, streaming(f.c.num_hidden_layers + 1, true));
  });
  EXPECT_NE(m.find("--layer-group-size: found 3, expected 1 .. 2"), std::string::npos) << m;
}

TEST(Streaming, BudgetResolvedAgainstUsableMemory) {
  const int64_t GiB = int64_t{1} << 30;
  const OsReservation os{"headless", 0.1};
  EXPECT_EQ(resolve_memory_budget(512 << 20, 24 * GiB, 20 * GiB, os), 512 << 20);
  const std::string m = error_of([&] { resolve_memory_budget(30 * GiB, 24 * GiB, 20 * GiB, os); });
  EXPECT_NE(m.find("exceeds the usable memory"), std::string::npos) << m;
  EXPECT_NE(m.find("headless"), std::string::npos) << m;
  // 0: the safe budget, 0.9·(24 − 0.1) − 1 GiB.
  EXPECT_NEAR(static_cast<double>(resolve_memory_budget(0, 24 * GiB, 22 * GiB, os)) / GiB, 0.9 * 23.9 - 1.0, 1e-6);
  // ... at most what is available now.
  EXPECT_NEAR(static_cast<double>(resolve_memory_budget(0, 24 * GiB, 20 * GiB, os)) / GiB, 20.0, 1e-6);
}

TEST(Streaming, GenerateCliMatchesResident) {
  test::TempDir dir;
  const std::string pk = (dir / "pk.st").string();
  ASSERT_EQ(test::run_cli("init --size test --seed 3 --packed -o " + pk).exit_code, 0);
  const std::string args = "-q generate -m " + pk + " -p 'def f(x):' -n 10 --ignore-eos --ctx 64 --json --temp 0";
  const auto a = test::run_cli(args);
  const auto b = test::run_cli(args + " --memory-budget 400K --layer-group-size 1");
  const auto c = test::run_cli(args + " --memory-budget 400K --no-prefetch");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  ASSERT_EQ(c.exit_code, 0) << c.output;
  const auto text = [](const std::string& s) { return s.substr(0, s.find("\"stop_reason\"")); };
  EXPECT_EQ(text(a.output), text(b.output));
  EXPECT_EQ(text(a.output), text(c.output));
  const auto bad = test::run_cli(args + " --memory-budget 10K");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("memory budget: need"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace tritter
