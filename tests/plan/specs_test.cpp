// The spec table, the original's formulas (original.md §3.1–3.4) reproduced, Tritter's counts from the tensor
// table, the KV and activation sizes, and the planner — whose figures are checked against the real allocations
// of a packed model, an Engine, a TrainModel + AdamW and a LoraModel + AdamW. Figures of the issue are checked at
// the tolerance it states (1 % table, 5 % QLoRA table).
#include "plan/specs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "infer/engine_sizes.h"
#include "infer/kv_cache.h"
#include "infer/lora_apply.h"
#include "infer/streaming_engine.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"
#include "train/lora.h"
#include "model/peft.h"
#include "train/model.h"
#include "kernels/attention.h"
#include "train/optim.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using test::expect_error;

// A packed model of `c` (spec init) whose buffers report to `account`.
PackedModel make_packed(const TritterConfig& c, MemoryAccount* account, HeadFormat head = HeadFormat::F32) {
  std::vector<float> p(static_cast<size_t>(parameter_count(c)));
  init_parameters(p, c, 3);
  return PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, {head}, account);
}

const MemoryItem& item_named(const std::vector<MemoryItem>& items, const std::string& prefix) {
  for (const auto& i : items) {
    if (i.name.rfind(prefix, 0) == 0) return i;
  }
  ADD_FAILURE() << "no plan item starts with '" << prefix << "'";
  static const MemoryItem kNone;
  return kNone;
}

void expect_within(double actual, double expected, double rel, const std::string& what) {
  EXPECT_LE(std::fabs(actual - expected), rel * std::fabs(expected))
      << what << ": actual " << actual << ", expected " << expected << " within " << rel * 100 << " %";
}

// The issue's table (the original's documentation): params (B), hidden, layers, packed (MiB below 1 GiB, else GiB).
struct SeedRow {
  const char* size;
  double params_b;
  int64_t hidden, layers;
  double packed;
  bool packed_in_mib;
};
const SeedRow kSeed[] = {
    {"1B", 1.1, 2048, 16, 261, true},    {"3B", 2.4, 2560, 26, 574, true},    {"7B", 6.2, 4096, 32, 1.45, false},
    {"10B", 9.3, 4096, 40, 2.16, false}, {"13B", 11.7, 5120, 40, 2.73, false}, {"30B", 28.5, 6656, 60, 6.66, false},
    {"33B", 30.2, 6912, 60, 7.06, false}, {"40B", 42.2, 8192, 60, 9.87, false}, {"65B", 56.4, 8192, 80, 13.2, false},
    {"70B", 69.5, 8192, 80, 16.3, false},
};

TEST(Specs, SeedTableWithinOnePercent) {
  ASSERT_EQ(spec_size_names().size(), std::size(kSeed));
  for (const auto& row : kSeed) {
    const TritterConfig c = preset_config(row.size);
    EXPECT_EQ(c.hidden_size, row.hidden) << row.size;
    EXPECT_EQ(c.num_hidden_layers, row.layers) << row.size;
    const double tol = 0.01;
    expect_within(original_param_count(c) / 1e9, row.params_b, tol, std::string(row.size) + " params (spec)");
    expect_within(parameter_count(c) / 1e9, row.params_b, tol, std::string(row.size) + " params (Tritter)");
    const double unit = row.packed_in_mib ? kMiB : kGiB;
    expect_within(original_packed_bytes(c) / unit, row.packed, 0.01, std::string(row.size) + " packed (spec)");
    expect_within(weight_bytes(c, WeightStorage::AllPacked) / unit, row.packed, 0.01,
                  std::string(row.size) + " packed (every Tritter tensor at 2 bits)");
  }
}

// original.md §3.1, exact: the formulas reproduce the original's integers (30B differs on purpose, see below).
TEST(Specs, OriginalFormulasReproduceItsIntegers) {
  struct Exact {
    const char* size;
    int64_t params, packed;
  };
  const Exact kExact[] = {
      {"1B", 1090654208, 273728644},    {"3B", 2397578240, 601735945},    {"7B", 6208102400, 1558088200},
      {"10B", 9261686784, 2324466312},  {"13B", 11681966080, 2931899690}, {"33B", 30210098688, 7582026721},
      {"40B", 42221846528, 10596693904}, {"65B", 56441192448, 14165416464}, {"70B", 69527420928, 17449753104},
  };
  for (const auto& e : kExact) {
    const TritterConfig c = preset_config(e.size);
    EXPECT_EQ(original_param_count(c), e.params) << e.size;
    EXPECT_EQ(original_packed_bytes(c), e.packed) << e.size;
  }
  // 30B: 4 kv heads and FFN 18176 instead of 8 and 17920 (52 heads are not divisible by 8): within 0.5 % of the
  // original's 28,477,789,184 parameters.
  const TritterConfig c30 = preset_config("30B");
  EXPECT_EQ(c30.num_attention_heads % c30.num_key_value_heads, 0);
  expect_within(static_cast<double>(original_param_count(c30)), 28477789184.0, 0.005, "30B params");
  expect_within(static_cast<double>(parameter_count(c30)), 28477789184.0, 0.005, "30B Tritter params");
}

// original.md §3.4: the rtx5080_feasibility table. The issue's figures within 5 %; the whole table within 1 %
// (30B within 1 % too despite its changed shape), with the same context fallback.
TEST(Specs, OriginalFeasibilityTable) {
  struct Issue {
    const char* size;
    double full, qlora;
  };
  for (const Issue& i : {Issue{"1B", 12.2, 1.9}, Issue{"7B", 60.8, 3.7}, Issue{"13B", 111.8, 5.1},
                         Issue{"40B", 397.8, 13.7}, Issue{"70B", 652.1, 20.2}}) {
    const TritterConfig c = preset_config(i.size);
    expect_within(original_full_training(c).gib, i.full, 0.05, std::string(i.size) + " full");
    expect_within(original_qlora(c, 16).gib, i.qlora, 0.05, std::string(i.size) + " QLoRA r=16");
  }
  struct Row {
    const char* size;
    double full;
    int64_t full_ctx;
    double r[4];
  };
  const Row kRows[] = {
      {"1B", 12.22, 2048, {1.84, 1.86, 1.91, 2.00}},     {"3B", 24.36, 512, {2.23, 2.28, 2.38, 2.57}},
      {"7B", 60.83, 512, {3.61, 3.70, 3.89, 4.26}},      {"10B", 89.28, 512, {4.36, 4.48, 4.71, 5.18}},
      {"13B", 111.82, 512, {4.96, 5.10, 5.39, 5.98}},    {"30B", 269.75, 512, {10.06, 10.34, 10.92, 12.06}},
      {"33B", 285.88, 512, {10.45, 10.74, 11.34, 12.52}}, {"40B", 397.75, 512, {13.34, 13.69, 14.39, 15.71}},
      {"65B", 530.19, 512, {16.70, 17.17, 18.11, 19.98}}, {"70B", 652.06, 512, {19.76, 20.23, 21.17, 23.04}},
  };
  const int64_t ranks[] = {8, 16, 32, 64};
  for (const auto& row : kRows) {
    const TritterConfig c = preset_config(row.size);
    const OriginalFeasibility full = original_full_training(c);
    expect_within(full.gib, row.full, 0.01, std::string(row.size) + " full");
    EXPECT_EQ(full.context, row.full_ctx) << row.size;
    for (int k = 0; k < 4; ++k) {
      expect_within(original_qlora(c, ranks[k]).gib, row.r[k], 0.01,
                    std::string(row.size) + " QLoRA r=" + std::to_string(ranks[k]));
    }
  }
  // Fits at r=16 up to 40B, not at 65B/70B; 40B r=64 falls back to context 512 and does not fit.
  EXPECT_TRUE(original_qlora(preset_config("40B"), 16).fits);
  EXPECT_FALSE(original_qlora(preset_config("65B"), 16).fits);
  const OriginalFeasibility r64 = original_qlora(preset_config("40B"), 64);
  EXPECT_EQ(r64.context, 512);
  EXPECT_FALSE(r64.fits);
}

// The seed's 7B inference budget: packed 1.45 GB, KV (32K, INT4) ≈ 1 GB, (128K, INT4) ≈ 4 GB — the original's
// formulas (GiB); the `--check` script's 11.6 GB line was packed × 8.
TEST(Specs, SevenBInferenceBudget) {
  const TritterConfig c = preset_config("7B");
  expect_within(original_packed_bytes(c) / kGiB, 1.45, 0.01, "packed");
  EXPECT_EQ(original_kv_bytes(c, 1, 32768, 0.5), int64_t{1} << 30);
  EXPECT_EQ(original_kv_bytes(c, 1, 131072, 0.5), int64_t{4} << 30);
  EXPECT_EQ(original_kv_bytes(c, 1, 131072, 2.0), int64_t{16} << 30);  // fp16 128K: 16 GiB
  expect_within(original_check_kv128k_gib(c), 11.6, 0.01, "the bogus 128K line");
  // Other cross-checks of original.md §3.2: 3B int4 32K 2.031 GiB, 13B int4 128K 5 GiB, 70B 10 GiB.
  expect_within(original_kv_bytes(preset_config("3B"), 1, 32768, 0.5) / kGiB, 2.031, 0.001, "3B kv");
  EXPECT_EQ(original_kv_bytes(preset_config("13B"), 1, 131072, 0.5), int64_t{5} << 30);
  EXPECT_EQ(original_kv_bytes(preset_config("70B"), 1, 131072, 0.5), int64_t{10} << 30);
}

TEST(Specs, ComponentsSumToTheTable) {
  for (const char* size : {"test", "tiny", "7B", "30B"}) {
    const TritterConfig c = preset_config(size);
    int64_t sum = 0, per_layer = 0;
    for (const auto& p : component_params(c)) {
      sum += p.total;
      per_layer += p.per_layer;
      if (p.per_layer) {
        EXPECT_EQ(p.total, p.per_layer * c.num_hidden_layers) << size << " " << p.kind;
      }
    }
    EXPECT_EQ(sum, parameter_count(c)) << size;
    EXPECT_EQ(ternary_param_count(c) + fp_param_count(c), parameter_count(c)) << size;
  }
  // 7B by hand: the original's count + QK-Norm (2d) + sub-norms (H·d + F) + a third D norm − 4D per layer.
  const TritterConfig c = preset_config("7B");
  const int64_t D = 4096, F = 11008, d = 128, L = 32;
  EXPECT_EQ(parameter_count(c), original_param_count(c) + L * (2 * d + D + F + 3 * D - 4 * D) - D);
}

TEST(Specs, WeightBytes) {
  const TritterConfig c = preset_config("7B");
  const int64_t P = parameter_count(c), V = 65536, D = 4096;
  EXPECT_EQ(weight_bytes(c, WeightStorage::F32), 4 * P);
  EXPECT_EQ(weight_bytes(c, WeightStorage::F16), 2 * P);
  // 7B's BitLinear shapes are multiples of 16: the tiles are exactly n/4 bytes, plus 4 bytes of β each.
  const int64_t linears = 7 * c.num_hidden_layers;
  const int64_t packed = ternary_param_count(c) / 4 + 4 * linears + 4 * fp_param_count(c);
  EXPECT_EQ(weight_bytes(c, WeightStorage::Packed), packed);
  EXPECT_EQ(weight_bytes(c, WeightStorage::Packed, HeadFormat::I8), packed - 4 * V * D + V * D + 4 * V);
  EXPECT_EQ(weight_bytes(c, WeightStorage::Packed, HeadFormat::I4),
            packed - 4 * V * D + V * ((D + 31) / 32) * 16 + V * ((D + 31) / 32) + 4 * V);
  int64_t layers = 0;
  for (int i = 0; i < c.num_hidden_layers; ++i) layers += layer_packed_bytes(c, i);
  EXPECT_EQ(layers + 4 * (2 * V * D + D), packed);
  // Shapes that are not multiples of 16 pad to whole 16×16 tiles of 64 bytes: k_proj (36, 72) takes 3·5·64.
  ConfigOverrides o;
  o.hidden_size = 72;
  o.num_hidden_layers = 1;
  o.num_attention_heads = 4;
  o.num_key_value_heads = 2;
  o.intermediate_size = 100;
  const TritterConfig odd = resolve_config(o);
  const int64_t tiles = 5 * 5 * 64 /*q*/ + 2 * 3 * 5 * 64 /*k, v*/ + 5 * 5 * 64 /*o*/ + 7 * 5 * 64 /*up*/ + 5 * 7 * 64;
  const int64_t gains = 72 + 2 * 18 + 72 + 72 + 100 + 72;
  EXPECT_EQ(layer_packed_bytes(odd, 0), tiles + 6 * 4 + 4 * gains);  // six BitLinears, one β each
}

// The planner's KV term is kv_cache_bytes (infer/kv_cache.h); its layout by hand.
TEST(Specs, KvCacheLayout) {
  const TritterConfig c = preset_config("7B");
  const int64_t L = 32, K = 8, d = 128;
  auto kv = [](const TritterConfig& cfg, KvDtype t, int64_t ctx, int64_t chunk = 64) {
    return static_cast<int64_t>(kv_cache_bytes(cfg, ctx, t, chunk));
  };
  // f16 and f32: data only.
  EXPECT_EQ(kv(c, KvDtype::F16, 32768), 2 * L * K * 32768 * d * 2);
  EXPECT_EQ(2 * kv(c, KvDtype::F32, 1024), 2 * 2 * L * K * 1024 * d * 4);
  // int4 at 32K, by hand: K and V data d/2 per position; key (min, scale) per channel per 32 positions; value
  // (min, scale) per 32 channels per position; a 32 × d fp32 key residual. All multiples of 64 here.
  const int64_t T = 32768;
  const int64_t per_head = 2 * T * d / 2 + (T / 32) * 2 * d * 4 + T * (d / 32) * 2 * 4 + 32 * d * 4;
  EXPECT_EQ(kv(c, KvDtype::I4, T), L * K * per_head);
  expect_within(kv(c, KvDtype::I4, T) / kGiB, 1.5, 0.005, "7B int4 32K (the key residual adds 4 MiB)");
  // A sliding window caps the positions: W + chunk − 1, rounded up to 32 for quantized caches.
  TritterConfig w = c;
  w.sliding_window = 4096;
  EXPECT_EQ(kv(w, KvDtype::F16, T, 64), 2 * L * K * (4096 + 63) * d * 2);
  EXPECT_EQ(kv(w, KvDtype::F16, 100, 64), 2 * L * K * 100 * d * 2);
  PlanOptions too_long;
  too_long.context = 262144;
  expect_error([&] { plan_memory(c, too_long); }, {"context 262144", "max_position_embeddings 131072"});
  expect_error([] { kv_dtype_from_name("int3"); }, {"'int3'", "int4"});
  EXPECT_EQ(kv_dtype_from_name("int8"), KvDtype::I8);
}

// The planner's inference terms against a real packed model and Engine: weights as PackedModel::in_memory
// allocates them, the engine's scratch, RoPE tables and KV cache as its constructor allocates them, the LoRA
// buffer as set_lora adds it.
TEST(Specs, InferencePlanMatchesARealEngine) {
  TritterConfig window = preset_config("tiny");
  window.sliding_window = 100;
  TritterConfig gqa = preset_config("test");
  gqa.num_key_value_heads = 1;
  gqa.mlp_act = MlpAct::Relu2Glu;
  for (const TritterConfig& c : {preset_config("test"), preset_config("tiny"), window, gqa}) {
    for (HeadFormat head : {HeadFormat::F32, HeadFormat::I8, HeadFormat::I4}) {
      Context ctx;
      const PackedModel m = make_packed(c, &ctx.memory, head);
      const int64_t weights = ctx.memory.total_in_use();
      EXPECT_EQ(weights, packed_model_bytes(c, {head})) << c.model_size;
      EXPECT_EQ(weights, weight_bytes(c, WeightStorage::Packed, head)) << c.model_size;
      for (KvDtype kv : {KvDtype::F32, KvDtype::F16, KvDtype::I8, KvDtype::I4}) {
        for (auto [context, chunk] : {std::pair<int64_t, int64_t>{1, 64}, {33, 1}, {200, 64}, {512, 16}}) {
          const std::string what = c.model_size + " " + kv_dtype_name(kv) + " ctx " + std::to_string(context) +
                                   " chunk " + std::to_string(chunk);
          const EngineOptions e = resolve_engine_options(c, {context, kv, chunk});
          const Engine engine(ctx, m.weights(), e);
          EXPECT_EQ(engine.scratch_bytes(), engine_scratch_bytes(c, e)) << what;
          EXPECT_EQ(engine.cache().bytes(), kv_cache_bytes(c, context, kv, e.max_batch)) << what;
          EXPECT_EQ(ctx.memory.in_use(MemCategory::Activations),
                    static_cast<int64_t>(engine_buffer_bytes(c, e))) << what;
          PlanOptions o;
          o.context = context;
          o.kv = kv;
          o.prefill_chunk = chunk;
          o.head = head;
          const auto items = plan_memory(c, o);
          EXPECT_EQ(item_named(items, "KV cache").bytes, static_cast<int64_t>(engine.cache().bytes())) << what;
          EXPECT_EQ(item_named(items, "engine").bytes, ctx.memory.total_in_use() - weights -
                                                            static_cast<int64_t>(engine.cache().bytes())) << what;
          EXPECT_EQ(total_bytes(items), ctx.memory.total_in_use()) << what;
        }
      }
    }
  }
}

TEST(Specs, EngineLoraBufferMatchesSetLora) {
  const TritterConfig c = preset_config("test");
  test::TempDir tmp;
  LoraConfig l;
  l.rank = 4;
  l.targets = parse_lora_targets("all");
  const auto table = lora_table(c, l);
  std::vector<float> p(static_cast<size_t>(lora_num_params(table, l.rank)));
  lora_init(p, table, l, 9);
  save_lora_adapter(tmp.path() / "a", c, l, p, "base");
  LoraSet set;
  set.add(tmp.path() / "a", 1.0f, c, nullptr);
  Context ctx;
  const PackedModel m = make_packed(c, nullptr);
  for (int64_t chunk : {1, 7, 64}) {
    const EngineOptions e = resolve_engine_options(c, {128, KvDtype::F32, chunk});
    Engine engine(ctx, m.weights(), e);
    const int64_t before = ctx.memory.in_use(MemCategory::Activations);
    engine.set_lora(&set);
    EXPECT_EQ(ctx.memory.in_use(MemCategory::Activations) - before, static_cast<int64_t>(engine_lora_bytes(c, e)))
        << "chunk " << chunk;
  }
}

// The "test" preset at B=1, T=16 makes every block a multiple of 64 bytes, so training-spec §5's list can be
// summed by hand: D=64, H=4, K=2, d=16, F=256 (relu2), V=264, L=2, qk_norm, sub_norm, post_norm "ffn".
TEST(Specs, TrainingActivationsByHand) {
  const TritterConfig c = preset_config("test");
  ASSERT_EQ(c.hidden_size, 64);
  ASSERT_EQ(c.intermediate_size, 256);
  ASSERT_FALSE(c.gated_mlp());
  const int64_t N = 16, D = 64, Hd = 64, Kd = 32, H = 4, K = 2, F = 256, V = 264, L = 2;
  const int64_t layer_f32 = N /*r_in*/ + N /*s of a*/ + N * Hd + N * H + N * Kd + N * K /*QK-Norm*/ +
                            N * (Hd + 2 * Kd) /*q k v*/ + N * Hd /*attention out*/ + N * H /*lse*/ + N /*r_att*/ +
                            N /*s of õ*/ + N * D + N /*h, r*/ + N /*s of m*/ + N * F /*u*/ + N * F + N /*spre, r*/ +
                            N /*s of s̃*/ + N * D + N /*f, r*/;
  const int64_t layer_i8 = N * D + N * Hd + N * D + N * F;
  const int64_t layer = 4 * layer_f32 + layer_i8;
  const int64_t big = F;
  const int64_t rest = 4 * ((L + 1) * N * D + N + N * D + 2 * N * V + N * big + N * D +
                            N * (3 * D + 4 * Hd + 3 * Kd + 3 * F + big));
  EXPECT_EQ(train::train_activation_bytes(c, 1, 16, false), L * layer + rest);
  EXPECT_EQ(train::train_activation_bytes(c, 1, 16, true), layer + rest);
  PlanOptions o;
  o.mode = PlanMode::Train;
  o.context = 16;
  o.recompute = false;
  EXPECT_EQ(plan_memory(c, o).back().bytes, L * layer + rest);
  o.context = 1024;
  expect_error([&] { plan_memory(c, o); }, {"1024", "max_position_embeddings 512"});
  o.context = 16;
  o.batch = 0;
  expect_error([&] { plan_memory(c, o); }, {"batch 0"});
}

// The training plan against what a TrainModel (arena reserved for (B, T)) and its AdamW allocate, term by term
// and in total.
TEST(Specs, TrainingPlanMatchesTheTrainer) {
  TritterConfig both = preset_config("test");
  both.post_norm = PostNorm::Both;
  both.qk_norm = false;
  TritterConfig fp = preset_config("tiny");
  fp.quant = false;
  fp.sub_norm = false;
  fp.post_norm = PostNorm::None;
  for (const TritterConfig& c : {preset_config("test"), preset_config("tiny"), both, fp}) {
    for (auto [B, T] : {std::pair<int64_t, int64_t>{1, 1}, {2, 7}, {3, 33}, {1, 128}}) {
      for (bool recompute : {false, true}) {
        const std::string what = c.model_size + " B=" + std::to_string(B) + " T=" + std::to_string(T) +
                                 " recompute " + std::to_string(recompute);
        Context ctx;
        train::TrainModel model(c, ctx);
        model.reserve(B, T, recompute);
        const train::AdamW opt(model.num_params(), ctx);
        PlanOptions o;
        o.mode = PlanMode::Train;
        o.batch = B;
        o.context = T;
        o.recompute = recompute;
        o.threads = ctx.threads;
        const auto items = plan_memory(c, o);
        EXPECT_EQ(items.back().bytes, model.arena_bytes()) << what;
        EXPECT_EQ(total_bytes(items), ctx.memory.total_in_use()) << what;
      }
    }
  }
  // The 2B shape's arena without allocating it: the planner's term is the trainer's size function.
  const TritterConfig big = preset_config("2B-shape");
  PlanOptions o;
  o.mode = PlanMode::Train;
  o.context = 128;
  EXPECT_EQ(plan_memory(big, o).back().bytes, train::train_activation_bytes(big, 1, 128, true));
}

// The QLoRA plan against a LoraModel on a packed base and its AdamW: the arena exactly, and the whole total.
TEST(Specs, QloraPlanMatchesTheFinetuner) {
  for (const char* size : {"test", "tiny"}) {
    const TritterConfig c = preset_config(size);
    for (const auto& targets : {default_lora_targets(), std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj",
                                                                                 "gate_proj", "up_proj", "down_proj"}}) {
      for (auto [B, T] : {std::pair<int64_t, int64_t>{1, 5}, {2, 64}}) {
        for (bool recompute : {false, true}) {
          const std::string what = std::string(size) + " targets " + std::to_string(targets.size()) + " B=" +
                                   std::to_string(B) + " T=" + std::to_string(T) + " recompute " +
                                   std::to_string(recompute);
          Context ctx;
          const PackedModel base = make_packed(c, &ctx.memory);
          LoraConfig l;
          l.rank = 8;
          l.targets = targets;
          train::LoraModel model(base.weights(), l, ctx);
          model.reserve(B, T, recompute);
          const train::AdamW opt(model.num_params(), ctx);
          PlanOptions o;
          o.mode = PlanMode::Qlora;
          o.batch = B;
          o.context = T;
          o.recompute = recompute;
          o.lora_rank = 8;
          o.lora_targets = targets;
          o.threads = ctx.threads;
          const auto items = plan_memory(c, o);
          EXPECT_EQ(items.back().bytes, model.arena_bytes()) << what;
          EXPECT_EQ(items.back().bytes, train::lora_activation_bytes(c, l, B, T, recompute)) << what;
          EXPECT_EQ(total_bytes(items), ctx.memory.total_in_use()) << what;
        }
      }
    }
  }
}

TEST(Specs, LoraCountsRespectGqa) {
  const TritterConfig c = preset_config("7B");
  EXPECT_EQ(lora_param_count(c, 16, default_lora_targets()), 13631488);  // original.md §3.4: the real model
  EXPECT_EQ(original_lora_params(c, 16), 16777216);                      // K/V taken as D wide
  // MHA (1B): the two agree.
  const TritterConfig one = preset_config("1B");
  EXPECT_EQ(lora_param_count(one, 8, default_lora_targets()), original_lora_params(one, 8));
  const int64_t D = 4096, F = 11008, r = 4;
  EXPECT_EQ(lora_param_count(c, r, {"down_proj"}), 32 * r * (D + F));
  expect_error([&] { lora_param_count(c, 16, {"q_norm"}); }, {"'q_norm'", "q_proj"});
  expect_error([&] { lora_param_count(c, 0, default_lora_targets()); }, {"rank 0"});
}

TEST(Specs, PlannerTerms) {
  const TritterConfig c = preset_config("7B");
  const int64_t P = parameter_count(c);
  PlanOptions train;
  train.mode = PlanMode::Train;
  train.context = 2048;
  const auto items = plan_memory(c, train);
  ASSERT_GE(items.size(), 5u);
  EXPECT_EQ(items[0].bytes + items[1].bytes + items[2].bytes, 16 * P);
  EXPECT_EQ(items.back().bytes, train::train_activation_bytes(c, 1, 2048, true));

  PlanOptions q = train;
  q.mode = PlanMode::Qlora;
  const int64_t qlora = total_bytes(plan_memory(c, q));
  EXPECT_LT(qlora, total_bytes(items) / 10);
  q.lora_rank = 64;
  EXPECT_EQ(total_bytes(plan_memory(c, q)) - qlora,
            16 * (lora_param_count(c, 64, default_lora_targets()) - lora_param_count(c, 16, default_lora_targets())) +
                2048 * 4 * (4 + 1) * (64 - 16));  // x·Aᵀ of 4 targets, one layer kept (recompute), + the
                                                 // backward's (N, r) gradient scratch

  PlanOptions inf;
  inf.context = 32768;
  inf.kv = KvDtype::I4;
  const auto iitems = plan_memory(c, inf);
  EXPECT_EQ(iitems[0].bytes + iitems[1].bytes, weight_bytes(c, WeightStorage::Packed));
  EXPECT_EQ(iitems[2].bytes, static_cast<int64_t>(kv_cache_bytes(c, 32768, KvDtype::I4, 64)));
  // Streaming: what StreamingEngine would hold — two slots of a group of 4 layers (the head streams through them),
  // the final norm and the head's input; the cache and the engine's buffers as without streaming.
  PlanOptions streamed = inf;
  streamed.stream_group = 4;
  const auto sitems = plan_memory(c, streamed);
  EXPECT_EQ(sitems[0].bytes, 2 * streamed_group_bytes(c, 0, 4));
  const StreamingPlan sp = plan_streaming(c, HeadFormat::F32, resolve_engine_options(c, {32768, KvDtype::I4, 64}),
                                          int64_t{1} << 40, 4, true);
  EXPECT_EQ(total_bytes(sitems), sp.total());
  EXPECT_LT(total_bytes(sitems), total_bytes(iitems));

  EXPECT_EQ(plan_mode_from_name("qlora"), PlanMode::Qlora);
  expect_error([] { plan_mode_from_name("fly"); }, {"'fly'", "infer, qlora, train"});
  PlanOptions bad = inf;
  bad.context = 0;
  expect_error([&] { plan_memory(c, bad); }, {"context 0"});
  bad = inf;
  bad.context = 262144;
  expect_error([&] { plan_memory(c, bad); }, {"262144", "max_position_embeddings"});
}

}  // namespace
}  // namespace tritter
