// LoRA adapters at inference (infer/lora_apply.h, Engine::set_lora): the engine's logits with a random adapter on
// every BitLinear kind against the training side's LoRA forward (train/lora.h, same packed base, same file written
// by model/peft.h), two weighted adapters against one, B = 0 against no adapter (bit-identical), prefill against
// token-by-token decode, and the errors a user can cause (naming the file and tensor).
#include "infer/lora_apply.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "model/lora.h"
#include "model/peft.h"
#include "train/lora.h"
#include "util/test_util.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

TritterConfig lora_variant(bool sub_norm) {
  ConfigOverrides o;
  o.model_size = "test";
  if (!sub_norm) {  // o/down read the attention output / activation; post-norms on
    o.sub_norm = false;
    o.post_norm = PostNorm::Both;
  }
  return resolve_config(o);
}

PackedModel make_base(const TritterConfig& c, uint64_t seed) {
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  init_parameters(p, c, seed);
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, {}, nullptr);
}

LoraConfig all_targets() {
  LoraConfig l;
  l.rank = 4;
  l.alpha = 8;
  l.targets = parse_lora_targets("all");
  return l;
}

// Writes an adapter (A per init, B random unless zero_b) and returns its parameters.
std::vector<float> write_adapter(const fs::path& dir, const TritterConfig& c, const LoraConfig& l,
                                 uint64_t seed, bool zero_b) {
  const auto table = lora_table(c, l);
  std::vector<float> p(static_cast<size_t>(lora_num_params(table, l.rank)));
  lora_init(p, table, l, seed);
  if (!zero_b) {
    Rng rng(seed + 1);
    for (const auto& t : table) {
      for (int64_t i = 0; i < t.O * l.rank; ++i) p[static_cast<size_t>(t.b_offset + i)] = 0.2f * (rng.uniform() - 0.5f);
    }
  }
  save_lora_adapter(dir, c, l, p, "base");
  return p;
}

std::vector<int32_t> lora_prompt(const TritterConfig& c, int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  Rng rng(11);
  for (auto& v : t) v = static_cast<int32_t>(rng.next_below(static_cast<uint32_t>(c.vocab_size)));
  return t;
}

std::vector<float> engine_logits(const ModelWeights& w, const std::vector<int32_t>& tokens, const LoraSet* lora,
                                 bool one_by_one = false) {
  Context ctx;
  EngineOptions o;
  o.context = 16;
  Engine e(ctx, w, o);
  e.set_lora(lora);
  const int64_t V = w.config.vocab_size, T = static_cast<int64_t>(tokens.size());
  std::vector<float> z(static_cast<size_t>(T * V));
  if (one_by_one) {
    for (int64_t t = 0; t < T; ++t) e.forward({tokens.data() + t, 1}, z.data() + t * V, false);
  } else {
    e.forward(tokens, z.data(), true);
  }
  return z;
}

float max_abs_diff(const std::vector<float>& a, const float* b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
using test::max_abs;

void check_against_training(bool sub_norm) {
  const TritterConfig c = lora_variant(sub_norm);
  const PackedModel base = make_base(c, 3);
  TempDir tmp;
  const auto l = all_targets();
  const auto tokens = lora_prompt(c, 7);
  const int64_t T = 7;
  Context ctx;
  train::LoraModel m(base.weights(), l, ctx);
  m.reserve(1, T);

  // Baseline: the engine without adapter against the training forward with B = 0. The two differ only by the fp32
  // summation order of attention/norms and the int8 rounding flips it can cause; the adapter adds no other source.
  m.init_adapters(5);  // B = 0
  m.forward(tokens.data(), nullptr, 1, T, 1.0f, false);
  const auto z0 = engine_logits(base.weights(), tokens, nullptr);
  const float base_err = max_abs_diff(z0, m.logits());

  const auto p = write_adapter(tmp / "a", c, l, 7, false);
  std::copy(p.begin(), p.end(), m.params().begin());
  m.forward(tokens.data(), nullptr, 1, T, 1.0f, false);
  LoraSet set;
  set.add(tmp / "a", 1.0f, c, nullptr);
  const auto z = engine_logits(base.weights(), tokens, &set);
  const float zmax = max_abs(z);
  const float tol = 2 * base_err + 1e-5f * zmax;
  const float err = max_abs_diff(z, m.logits());
  std::fprintf(stderr, "lora (sub_norm %d): engine vs training %.3g (tol %.3g, baseline %.3g), adapter moves logits by %.3g, |z| max %.3g\n",
               sub_norm ? 1 : 0, err, tol, base_err, max_abs_diff(z, z0.data()), zmax);
  EXPECT_LE(err, tol) << "engine vs training LoRA forward (baseline difference " << base_err << ")";
  // Not vacuous: the adapter moves the logits far beyond the tolerance.
  EXPECT_GT(max_abs_diff(z, z0.data()), 20 * tol);

  // Decoding token by token (GEMV path) gives the same logits as the prefill.
  const auto zd = engine_logits(base.weights(), tokens, &set, true);
  EXPECT_LE(max_abs_diff(zd, z.data()), 1e-5f * zmax + base_err);

  // Two adapters with weights 0.25 + 0.75 of the same file: the same sum, up to fp32 rounding of the deltas.
  LoraSet two;
  two.add(parse_lora_spec((tmp / "a").string() + ":0.25").first, 0.25f, c, nullptr);
  two.add(tmp / "a", 0.75f, c, nullptr);
  EXPECT_EQ(two.size(), 2u);
  const auto z2 = engine_logits(base.weights(), tokens, &two);
  EXPECT_LE(max_abs_diff(z2, z.data()), 1e-4f * zmax + base_err);
}

TEST(LoraApply, MatchesTrainingForwardWithSubNorm) { check_against_training(true); }
TEST(LoraApply, MatchesTrainingForwardWithoutSubNorm) { check_against_training(false); }

TEST(LoraApply, ZeroBIsIdenticalToNoAdapter) {
  const TritterConfig c = lora_variant(true);
  const PackedModel base = make_base(c, 4);
  TempDir tmp;
  write_adapter(tmp / "z", c, all_targets(), 9, true);
  LoraSet set;
  set.add(tmp / "z", 1.0f, c, nullptr);
  const auto tokens = lora_prompt(c, 6);
  const auto z0 = engine_logits(base.weights(), tokens, nullptr);
  const auto z1 = engine_logits(base.weights(), tokens, &set);
  ASSERT_EQ(z0.size(), z1.size());
  EXPECT_EQ(0, std::memcmp(z0.data(), z1.data(), z0.size() * sizeof(float)));
}

TEST(LoraApply, ParseSpec) {
  EXPECT_EQ(parse_lora_spec("dir").first, fs::path("dir"));
  EXPECT_EQ(parse_lora_spec("dir").second, 1.0f);
  EXPECT_EQ(parse_lora_spec("a/b:0.5").first, fs::path("a/b"));
  EXPECT_EQ(parse_lora_spec("a/b:0.5").second, 0.5f);
  EXPECT_EQ(parse_lora_spec("c:/x").first, fs::path("c:/x"));  // not a number: all of it is the directory
  EXPECT_THROW(parse_lora_spec(""), Error);
}

void expect_error(const fs::path& dir, const TritterConfig& c, const std::vector<std::string>& parts) {
  LoraSet set;
  try {
    set.add(dir, 1.0f, c, nullptr);
    FAIL() << "no error for " << dir;
  } catch (const Error& e) {
    for (const auto& s : parts) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

void rewrite_config(const fs::path& dir, const std::string& from, const std::string& to) {
  std::string s = test::read_file(dir / "adapter_config.json");
  const size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos);
  s.replace(at, from.size(), to);
  std::ofstream(dir / "adapter_config.json", std::ios::binary | std::ios::trunc) << s;
}

TEST(LoraApply, ErrorsNameTheFileAndTensor) {
  const TritterConfig c = lora_variant(true);
  TempDir tmp;
  expect_error(tmp / "nope", c, {"nope", "not a directory"});
  fs::create_directories(tmp / "empty");
  expect_error(tmp / "empty", c, {"adapter_config.json is missing"});

  // Rank in the config differs from the tensors: shape mismatch naming file and tensor.
  write_adapter(tmp / "r", c, all_targets(), 1, false);
  rewrite_config(tmp / "r", "\"r\": 4", "\"r\": 2");
  expect_error(tmp / "r", c,
               {"adapter_model.safetensors", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                "shape [4, " + std::to_string(c.hidden_size) + "], expected [2, " + std::to_string(c.hidden_size) + "]"});

  // A target listed in the config but not in the file: the missing tensor is named.
  LoraConfig q = all_targets();
  q.targets = {"q_proj"};
  write_adapter(tmp / "q", c, q, 1, false);
  rewrite_config(tmp / "q", "\"q_proj\"", "\"q_proj\", \"k_proj\"");
  expect_error(tmp / "q", c, {"adapter_model.safetensors", "layers.0.self_attn.k_proj.lora_A.weight", "missing"});

  // A tensor the config does not target.
  write_adapter(tmp / "x", c, all_targets(), 1, false);
  rewrite_config(tmp / "x", "\"down_proj\"", "\"up_proj\"");
  expect_error(tmp / "x", c, {"adapter_model.safetensors", "unexpected tensor", "down_proj.lora_A.weight"});

  // Unknown target, bad JSON, another base.
  write_adapter(tmp / "u", c, all_targets(), 1, false);
  rewrite_config(tmp / "u", "\"q_proj\"", "\"qq_proj\"");
  expect_error(tmp / "u", c, {"adapter_config.json", "target_modules", "qq_proj"});
  write_adapter(tmp / "j", c, all_targets(), 1, false);
  rewrite_config(tmp / "j", "{", "{{");
  expect_error(tmp / "j", c, {"adapter_config.json", "not valid JSON"});
  expect_error(tmp / "r", lora_variant(false), {"adapter_model.safetensors", "another base"});
}

// `tritter generate --lora DIR[:w]` end to end: a B = 0 adapter generates the base's text, a random one (two
// weighted copies) runs, a bad directory is named.
TEST(LoraApply, GenerateCli) {
  TempDir tmp;
  const std::string dir = tmp.path().string(), pk = dir + "/base.tpk";
  ASSERT_EQ(test::run_cli("init --size test --packed -o " + pk).exit_code, 0);
  const TritterConfig c = PackedModel::open(pk).config();
  write_adapter(tmp / "zero", c, all_targets(), 2, true);
  write_adapter(tmp / "rand", c, all_targets(), 3, false);
  const std::string gen = "-q -t 1 generate -m " + pk + " -p 'abc' -n 12 --ignore-eos --json --temp 0";
  const auto base = test::run_cli(gen);
  ASSERT_EQ(base.exit_code, 0) << base.output;
  const auto zero = test::run_cli(gen + " --lora " + dir + "/zero");
  ASSERT_EQ(zero.exit_code, 0) << zero.output;
  auto text = [](const std::string& out) { return out.substr(0, out.find("\"prompt_tokens\"")); };
  EXPECT_EQ(text(base.output), text(zero.output));
  const auto two = test::run_cli(gen + " --lora " + dir + "/rand:0.5 --lora " + dir + "/rand:0.5");
  EXPECT_EQ(two.exit_code, 0) << two.output;
  const auto bad = test::run_cli(gen + " --lora " + dir + "/missing:0.5");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("missing"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("not a directory"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace tritter
