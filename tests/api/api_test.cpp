// The public API (tritter.h) against the layers it wraps: the same logits as Engine, the same tokens as
// generate(), a callback that stops generation, streaming equal to resident, embeddings that are unit vectors of
// the mean final hidden state (checked through the head: logits ∝ W·e for one token), and train / fine-tune
// entry points whose progress callback can stop the run.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/context.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "model/packed_model.h"
#include "tritter.h"
#include "util/test_util.h"

namespace tritter {
namespace {
using test::error_of;

struct PackedFixture {
  test::TempDir dir;
  std::string pk = (dir / "pk.st").string();
  PackedFixture() {
    const auto r = test::run_cli("init --size test --seed 3 --packed -o " + pk);
    if (r.exit_code != 0) throw std::runtime_error(r.output);
  }
};


TEST(Api, OpenInfoAndTokenizer) {
  PackedFixture f;
  const Model model = Model::open(f.pk);
  const ModelInfo i = model.info();
  const TritterConfig c = PackedModel::open(f.pk).config();
  EXPECT_EQ(i.path, f.pk);
  EXPECT_EQ(i.vocab_size, c.vocab_size);
  EXPECT_EQ(i.num_layers, c.num_hidden_layers);
  EXPECT_EQ(i.hidden_size, c.hidden_size);
  EXPECT_EQ(i.max_context, c.max_position_embeddings);
  EXPECT_FALSE(i.add_bos);  // Tritter's packed files say add_bos_token = false
  EXPECT_FALSE(i.streaming);
  EXPECT_EQ(i.lora_adapters, 0);
  EXPECT_EQ(model.tokenize("Hi", true), (std::vector<int32_t>{token::bos, 'H' + 8, 'i' + 8}));
  EXPECT_EQ(model.tokenize("Hi", false, true), (std::vector<int32_t>{'H' + 8, 'i' + 8, token::eos}));
  const std::vector<int32_t> ids = model.tokenize("a\xff\n", true, true);
  EXPECT_EQ(model.detokenize(ids), "a\xff\n");
  EXPECT_EQ(model.detokenize(ids, true), "<bos>a\xff\n<eos>");
  EXPECT_EQ(model.token_piece(token::eos), "<eos>");
  EXPECT_EQ(model.token_piece('x' + token::byte_offset), "x");
}

TEST(Api, ForwardMatchesEngine) {
  PackedFixture f;
  const Model model = Model::open(f.pk);
  const std::vector<int32_t> ids = model.tokenize("def f(x):", false);
  Session session(model, {.context = 64, .threads = 1});
  const std::vector<float> got = session.forward(ids);
  EXPECT_EQ(session.position(), static_cast<int64_t>(ids.size()));
  EXPECT_EQ(session.context(), 64);

  Context ctx;
  const PackedModel pm = PackedModel::open(f.pk);
  Engine engine(ctx, pm.weights(), EngineOptions{.context = 64});
  std::vector<float> want(static_cast<size_t>(pm.config().vocab_size));
  engine.forward(ids, want.data(), false);
  EXPECT_EQ(got, want);

  // All logits (n, V), and a span too small is an Error, not an overrun.
  session.reset();
  std::vector<float> all(ids.size() * want.size());
  session.forward(ids, all, true);
  EXPECT_EQ(std::vector<float>(all.end() - static_cast<ptrdiff_t>(want.size()), all.end()), want);
  std::vector<float> small(want.size() - 1);
  EXPECT_NE(error_of([&] { session.forward(ids, small); }).find("expected at least"), std::string::npos);
}

TEST(Api, GenerateMatchesGenerateAndCallbackStops) {
  PackedFixture f;
  const Model model = Model::open(f.pk);
  const std::vector<int32_t> prompt = model.tokenize("abc", false);
  GenerationParams p;
  p.max_tokens = 24;
  p.stop_at_eos = false;
  p.sampling.temperature = 0.8f;
  p.sampling.seed = 7;
  Session session(model, {.context = 128, .threads = 1});
  std::vector<int32_t> seen;
  std::string streamed;
  const Generation g = session.generate(prompt, p, [&](int32_t id, std::string_view text) {
    if (id >= 0) seen.push_back(id);
    streamed += text;
    return true;
  });

  Context ctx;
  const PackedModel pm = PackedModel::open(f.pk);
  Engine engine(ctx, pm.weights(), EngineOptions{.context = 128});
  GenerateOptions o;
  o.max_tokens = 24;
  o.stop_at_eos = false;
  o.sampler.temperature = 0.8f;
  o.sampler.seed = 7;
  const GenerateResult want = generate(engine, prompt, o, [](std::string_view) {});
  EXPECT_EQ(g.tokens, want.tokens);
  EXPECT_EQ(g.text, want.text);
  EXPECT_EQ(g.stop_reason, "length");
  EXPECT_EQ(g.decode_steps, want.decode_steps);
  EXPECT_EQ(seen, g.tokens);  // one call per token
  EXPECT_EQ(streamed, g.text);

  // A stop string taken from the text: same cut and reason as generate(), and it is never delivered.
  ASSERT_GE(want.text.size(), 6u);
  const std::string stop = want.text.substr(3, 2);
  p.stop = o.stop = {stop};
  session.reset();
  engine.reset();
  streamed.clear();
  const Generation gs = session.generate(prompt, p, [&](int32_t, std::string_view text) {
    streamed += text;
    return true;
  });
  const GenerateResult ws = generate(engine, prompt, o, [](std::string_view) {});
  EXPECT_EQ(gs.text, ws.text);
  EXPECT_EQ(gs.stop_reason, ws.stop_reason);
  EXPECT_EQ(gs.stop_reason, "stop");
  EXPECT_EQ(streamed, gs.text);
  EXPECT_EQ(streamed.find(stop), std::string::npos);

  // The callback ends generation after its third token.
  p.stop.clear();
  session.reset();
  int calls = 0;
  const Generation gc = session.generate(prompt, p, [&](int32_t, std::string_view) { return ++calls < 3; });
  EXPECT_EQ(gc.tokens.size(), 3u);
  EXPECT_EQ(gc.stop_reason, "callback");
  EXPECT_EQ(std::vector<int32_t>(g.tokens.begin(), g.tokens.begin() + 3), gc.tokens);

  // The prompt's context check, as the CLI words it.
  Session tiny(model, {.context = 4, .threads = 1});
  EXPECT_NE(error_of([&] { tiny.generate(model.tokenize("hello", false), p); })
                .find("the prompt has 5 tokens, more than the context of 4"),
            std::string::npos);
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(s);
}

// Continuous thought through the API: the same tokens as generate()'s latent mode on the engine, the cache holding
// prompt + <bot> + N thoughts + <eot> + the decode steps, and the 264-id vocabulary refused.
TEST(Api, GenerateWithLatentStepsMatchesTheEngine) {
  test::TempDir dir;
  const std::string pk = (dir / "v272.st").string();
  const auto made = test::run_cli("init --size test --vocab 272 --seed 3 --packed -o " + pk);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const Model model = Model::open(pk);
  const std::vector<int32_t> prompt = model.tokenize("abc", false);
  GenerationParams p;
  p.max_tokens = 8;
  p.stop_at_eos = false;
  p.latent_steps = 3;
  Session session(model, {.context = 128, .threads = 1});
  const Generation g = session.generate(prompt, p);
  EXPECT_EQ(g.latent_steps, 3);
  EXPECT_EQ(session.position(), static_cast<int64_t>(prompt.size()) + 3 + 2 + g.decode_steps);

  Context ctx;
  const PackedModel pm = PackedModel::open(pk);
  Engine engine(ctx, pm.weights(), EngineOptions{.context = 128});
  GenerateOptions o;
  o.max_tokens = 8;
  o.stop_at_eos = false;
  o.latent_steps = 3;
  EXPECT_EQ(g.tokens, generate(engine, prompt, o, [](std::string_view) {}).tokens);

  PackedFixture f;  // vocab_size 264
  const Model bytes = Model::open(f.pk);
  Session s264(bytes, {.context = 128, .threads = 1});
  EXPECT_NE(error_of([&] { s264.generate(prompt, p); }).find("vocab_size is 264"), std::string::npos);
}

TEST(Api, EmbedIsTheUnitMeanOfFinalHiddenStates) {
  PackedFixture f;
  const Model model = Model::open(f.pk);
  Session session(model, {.context = 128, .threads = 1});
  const std::string text = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n";
  const std::vector<float> e = session.embed(text);
  ASSERT_EQ(static_cast<int64_t>(e.size()), model.info().hidden_size);
  EXPECT_NEAR(dot(e, e), 1.0f, 1e-5f);
  EXPECT_EQ(session.position(), 0);  // embed leaves the session reset
  EXPECT_EQ(session.embed(text), e);  // deterministic
  const std::vector<float> other = session.embed("SELECT * FROM users WHERE id = 1;");
  EXPECT_LT(dot(e, other), 0.9999f);

  // Every chunk counts: 3 tokens per forward pass gives the vector of 64 (the last chunk alone would not).
  Session chunked(model, {.context = 128, .threads = 1, .batch = 3});
  const std::vector<float> ec = chunked.embed(text);
  EXPECT_GT(dot(e, ec), 1.0f - 1e-5f);
  const std::vector<float> tail = session.embed(text.substr(text.size() - (text.size() % 3 ? text.size() % 3 : 3)));
  EXPECT_LT(dot(ec, tail), 0.999f);

  // One token: the final normalized hidden state h gives logits W·h (f32 head), so W·e ∝ the logits.
  const PackedModel pm = PackedModel::open(f.pk);
  ASSERT_EQ(pm.weights().head.format, HeadFormat::F32);
  const std::vector<int32_t> one = model.tokenize("x", false);
  const std::vector<float> e1 = session.embed_tokens(one);
  const std::vector<float> logits = session.forward(one);
  const int64_t V = pm.config().vocab_size, D = pm.config().hidden_size;
  std::vector<float> projected(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) {
    double s = 0;
    for (int64_t j = 0; j < D; ++j) s += static_cast<double>(pm.weights().head.f32[v * D + j]) * e1[j];
    projected[static_cast<size_t>(v)] = static_cast<float>(s);
  }
  EXPECT_GT(dot(projected, logits) / std::sqrt(dot(projected, projected) * dot(logits, logits)), 0.99999f);

  EXPECT_NE(error_of([&] { session.embed(""); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([&] { session.embed(std::string(200, 'a')); }).find("more than the context of 128"),
            std::string::npos);
}

TEST(Api, StreamingMatchesResident) {
  PackedFixture f;
  const Model resident = Model::open(f.pk);
  const Model streamed = Model::open(f.pk, {.stream = true, .memory_budget = parse_size("400K", "budget"),
                                            .layer_group_size = 1});
  EXPECT_TRUE(streamed.info().streaming);
  const std::vector<int32_t> prompt = resident.tokenize("def f(x):", false);
  GenerationParams p;
  p.max_tokens = 10;
  p.stop_at_eos = false;
  Session a(resident, {.context = 64, .threads = 1});
  Session b(streamed, {.context = 64, .threads = 1});
  EXPECT_EQ(a.generate(prompt, p).tokens, b.generate(prompt, p).tokens);
  EXPECT_EQ(a.embed("hello world"), b.embed("hello world"));
  EXPECT_NE(b.stats().streaming_report, "");
  EXPECT_EQ(a.stats().streaming_report, "");
  const Model starved = Model::open(f.pk, {.stream = true, .memory_budget = parse_size("10K", "budget")});
  EXPECT_NE(error_of([&] { Session s(starved, {.context = 64}); }).find("memory budget: need"), std::string::npos);
}

// The 1.6-bit layout changes the bytes read, not the numbers: every tier's integer sums are the T16 ones, so the
// logits are equal bit for bit and greedy tokens identical.
TEST(Api, TernaryLayoutsGiveTheSameLogitsAndTokens) {
  PackedFixture f;
  const Model t16 = Model::open(f.pk, {.ternary_layout = "t16"});
  const Model t20 = Model::open(f.pk, {.ternary_layout = "t20"});
  EXPECT_EQ(t16.info().ternary_layout, "t16");
  EXPECT_EQ(t20.info().ternary_layout, "t20");
  const std::vector<int32_t> prompt = t16.tokenize("def f(x):\n    return", false);
  for (int threads : {1, 2}) {
    Session a(t16, {.context = 64, .threads = threads});
    Session b(t20, {.context = 64, .threads = threads});
    EXPECT_EQ(a.forward(prompt), b.forward(prompt)) << threads << " threads";
    a.reset();
    b.reset();
    GenerationParams p;
    p.max_tokens = 12;
    p.stop_at_eos = false;
    EXPECT_EQ(a.generate(prompt, p).tokens, b.generate(prompt, p).tokens) << threads << " threads";
  }
  EXPECT_NE(error_of([&] { Model::open(f.pk, {.ternary_layout = "t2"}); }).find("expected auto, t16 or t20"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              Model::open(f.pk, {.stream = true, .ternary_layout = "t20"});
            }).find("ternary layout t20 applies to a resident model"),
            std::string::npos);
  EXPECT_EQ(Model::open(f.pk, {.stream = true}).info().ternary_layout, "t16");  // auto: the file's layout

  // A file stored in T20 (init --ternary-layout t20): the same logits resident in either layout and streamed.
  const std::string pk20 = (f.dir / "pk20.st").string();
  const auto r = test::run_cli("init --size test --seed 3 --packed --ternary-layout t20 -o " + pk20);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Model f20_as16 = Model::open(pk20, {.ternary_layout = "t16"});
  const Model f20 = Model::open(pk20, {.ternary_layout = "t20"});
  const Model f20_streamed = Model::open(pk20, {.stream = true, .memory_budget = parse_size("400K", "budget"),
                                                .layer_group_size = 1});
  EXPECT_EQ(f20_as16.info().ternary_layout, "t16");
  EXPECT_EQ(f20_streamed.info().ternary_layout, "t20");  // streamed as the file stores it
  Session a(t16, {.context = 64, .threads = 1});
  const std::vector<float> want = a.forward(prompt);
  for (const Model* m : {&f20_as16, &f20, &f20_streamed}) {
    Session s(*m, {.context = 64, .threads = 1});
    EXPECT_EQ(s.forward(prompt), want);
  }
}

TEST(Api, ErrorsNameWhatWasWrong) {
  PackedFixture f;
  EXPECT_NE(error_of([&] { Model::open((f.dir / "missing.st").string()); }).find("missing.st"), std::string::npos);
  const Model model = Model::open(f.pk);
  EXPECT_NE(error_of([&] { Session s(model, {.kv_cache = "int3"}); }).find("expected f32, f16, int8 or int4"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Session s(model, {.context = 1 << 20}); }).find("max_position_embeddings"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Model::open(f.pk, {.lora = {(f.dir / "nope").string()}}); }).find("nope"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_size("12Q", "--memory-budget"); }).find("--memory-budget"), std::string::npos);
}

TEST(Api, TrainAndFinetune) {
  PackedFixture f;
  std::string text;
  for (int i = 0; i < 300; ++i) text += "def g" + std::to_string(i) + "(a, b):\n    return a + b\n\n";
  test::write_file(f.dir / "d.py", text);
  TrainParams t;
  t.config = "test";
  t.loop.data = {(f.dir / "d.py").string()};
  t.loop.out = (f.dir / "run").string();
  t.loop.steps = 3;
  t.loop.batch = 2;
  t.loop.seq = 32;
  t.loop.warmup = 1;
  t.loop.eval_every = 0;
  t.loop.checkpoint_every = 100;
  t.loop.log_every = 1;
  t.loop.val_fraction = 0;
  t.loop.threads = 1;
  std::vector<std::string> lines;
  const TrainSummary s = train_model(t, [&](const std::string& line) {
    lines.push_back(line);
    return true;
  });
  EXPECT_EQ(s.steps_done, 3);
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(s.losses.size(), 3u);
  EXPECT_TRUE(std::isfinite(s.last_loss));
  EXPECT_FALSE(lines.empty());
  EXPECT_TRUE(std::filesystem::exists(f.dir / "run" / "latest"));

  // The callback's false stops the run at the next step, with a checkpoint.
  t.loop.out = (f.dir / "stopped").string();
  t.loop.steps = 50;
  const TrainSummary st = train_model(t, [](const std::string&) { return false; });
  EXPECT_TRUE(st.interrupted);
  EXPECT_LT(st.steps_done, 50);
  EXPECT_TRUE(std::filesystem::exists(f.dir / "stopped" / "latest"));
  t.loop.data.clear();
  EXPECT_NE(error_of([&] { train_model(t); }).find("data"), std::string::npos);

  FinetuneParams ft;
  ft.base = f.pk;
  ft.rank = 4;
  ft.loop.data = {(f.dir / "d.py").string()};
  ft.loop.out = (f.dir / "ft").string();
  ft.loop.steps = 2;
  ft.loop.batch = 2;
  ft.loop.seq = 32;
  ft.loop.eval_every = 0;
  ft.loop.val_fraction = 0;
  ft.loop.threads = 1;
  const FinetuneSummary fs = finetune_model(ft);
  EXPECT_EQ(fs.train.steps_done, 2);
  EXPECT_GT(fs.adapter_params, 0);
  EXPECT_TRUE(std::filesystem::exists(f.dir / "ft" / "adapter_config.json"));
  const Model tuned = Model::open(f.pk, {.lora = {(f.dir / "ft").string() + ":0.5"}});
  EXPECT_EQ(tuned.info().lora_adapters, 1);
  Session session(tuned, {.context = 64, .threads = 1});
  GenerationParams p;
  p.max_tokens = 4;
  p.stop_at_eos = false;
  EXPECT_EQ(session.generate(tuned.tokenize("def", false), p).tokens.size(), 4u);
}

}  // namespace
}  // namespace tritter
