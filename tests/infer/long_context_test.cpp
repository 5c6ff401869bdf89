// Long context: split-K cached attention at 128K positions against the reference (double sums), the same bits
// whatever the thread count or batching, and the INT4 cache's bytes at 32K/128K equal to `tritter specs`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "infer/kv_cache.h"
#include "kernels/attention.h"
#include "kernels/ref/ref.h"
#include "model/config.h"
#include "util/test_util.h"

namespace tritter {
namespace {

constexpr double kU = 1.0 / (1 << 24);  // fp32 unit roundoff
double gamma(double k) { return k * kU / (1 - k * kU); }

// A random model's layer-0 cache: H = 8 query heads over one kv head (G = 8, the case split-K exists for), d = 64,
// keys and values N(0, 1) for every position, as a random model's projections give them.
struct LongCache {
  TritterConfig c;
  std::unique_ptr<KvCache> cache;
  float max_k = 0, max_v = 0;
  explicit LongCache(int64_t n) {
    c = preset_config("test");
    c.num_hidden_layers = 1;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 1;
    c.hidden_size = 512;
    c.head_dim = 64;
    c.max_position_embeddings = n;
    c.validate();
    cache = std::make_unique<KvCache>(c, n, KvDtype::F32, 1024, nullptr);
    Rng rng(42);
    std::vector<float> k(1024 * 64), v(1024 * 64);
    for (int64_t p = 0; p < n; p += 1024) {
      const int64_t m = std::min<int64_t>(1024, n - p);
      for (int64_t i = 0; i < m * 64; ++i) {
        k[i] = rng.normal();
        v[i] = rng.normal();
        max_k = std::max(max_k, std::fabs(k[i]));
        max_v = std::max(max_v, std::fabs(v[i]));
      }
      cache->write(0, p, m, k.data(), v.data());
    }
  }
};

TEST(LongContext, SplitKAttentionAt128KMatchesTheReference) {
  const int64_t n = 131072, H = 8, d = 64;
  LongCache lc(n);
  const KvRows rows = lc.cache->rows(0);
  const CachedAttnShape shape{H, 1, d, AttnMask::causal()};
  Rng rng(7);
  const int64_t T = 4;  // the last 4 positions as one prefill tile, and the last one alone (decode)
  std::vector<float> q(T * H * d);
  for (auto& x : q) x = rng.normal();
  Context one, two;
  one.threads = 1;
  two.threads = 2;
  std::vector<float> o1(T * H * d), o2(o1.size()), oref(o1.size()), dec(H * d), dec1(H * d);
  attention_cached(one, o1.data(), q.data(), rows, n - T, T, shape);
  attention_cached(two, o2.data(), q.data(), rows, n - T, T, shape);   // split-K: 1 item < 4 · 2 threads
  ref::attention_cached(oref.data(), q.data(), rows, n - T, T, shape);
  const float* qlast = q.data() + (T - 1) * H * d;
  attention_cached(two, dec.data(), qlast, rows, n - 1, 1, shape);
  attention_cached(one, dec1.data(), qlast, rows, n - 1, 1, shape);
  // The same bits on one thread (chunks in turn) and two (chunks spread, then merged), and for decode vs prefill.
  EXPECT_EQ(std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(dec.data(), dec1.data(), dec.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(dec.data(), o2.data() + (T - 1) * H * d, dec.size() * sizeof(float)), 0);

  // Tolerance from fp32 summation: a score q·k/√d carries at most γ(d/16 + 4)·|q||k|/√d (16 lanes, then a tree),
  // exp and the scaling one ulp each; the value sum runs sequentially over ≤ S = kAttnSplitKeys keys in a chunk,
  // then over n/S chunk merges, both for the numerator and the denominator: relative γ(S) + γ(n/S) each. Relative
  // errors of the weights p_j move o = Σ p_j v_j / Σ p_j by at most 2·(that)·max|v|.
  double max_q = 0;
  for (float x : q) max_q = std::max(max_q, static_cast<double>(std::fabs(x)));
  const double max_score_err = gamma(d / 16.0 + 4) * d * max_q * lc.max_k / std::sqrt(double(d));
  const double rel = 2 * (max_score_err + 4 * kU) + 2 * (gamma(kAttnSplitKeys) + gamma(double(n) / kAttnSplitKeys));
  const double tol = 2 * rel * lc.max_v;
  double worst = 0;
  for (size_t i = 0; i < o2.size(); ++i) worst = std::max(worst, std::fabs(double(o2[i]) - double(oref[i])));
  EXPECT_LE(worst, tol);
  EXPECT_GT(worst, 0.0);  // fp32 vs double: some rounding shows (the check is not vacuous)
  std::printf("128K positions: max |o − ref| = %.3g (tolerance %.3g)\n", worst, tol);
}

TEST(LongContext, SplitChunkBoundariesAndWindowsMatchTheReference) {
  // Contexts straddling chunk edges, a sliding window that starts mid-chunk, queries at odd positions.
  const int64_t n = 3 * kAttnSplitKeys + 77, H = 8, d = 64;
  LongCache lc(n);
  const KvRows rows = lc.cache->rows(0);
  Rng rng(3);
  for (const AttnMask& mask : {AttnMask::causal(), AttnMask::causal(kAttnSplitKeys + 5), AttnMask::causal(40)}) {
    for (int64_t T : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{37}}) {
      for (int64_t pos0 : {n - T, kAttnSplitKeys - 2, 2 * kAttnSplitKeys}) {
        if (pos0 + T > n) continue;
        std::vector<float> q(T * H * d), o1(q.size()), o2(q.size()), oref(q.size());
        for (auto& x : q) x = rng.normal();
        const CachedAttnShape shape{H, 1, d, mask};
        Context one, two;
        one.threads = 1;
        two.threads = 2;
        attention_cached(one, o1.data(), q.data(), rows, pos0, T, shape);
        attention_cached(two, o2.data(), q.data(), rows, pos0, T, shape);
        ref::attention_cached(oref.data(), q.data(), rows, pos0, T, shape);
        EXPECT_EQ(std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)), 0) << T << " " << pos0;
        double worst = 0;
        for (size_t i = 0; i < o1.size(); ++i) worst = std::max(worst, std::fabs(double(o1[i]) - double(oref[i])));
        EXPECT_LE(worst, 1e-4 * lc.max_v) << attn_mask_name(mask) << " T " << T << " pos0 " << pos0;
      }
    }
  }
}

// The INT4 cache's bytes at 32K and 128K: what the cache allocates, what `tritter specs` prints, and the layout
// worked out by hand (per position and kv head: d/2 + d/2 bytes of levels, 2·d·4/32 bytes of key min/scale, d/32·2·4
// bytes of value min/scale; per kv head a 32·d·4-byte residual; each region rounded up to 64 bytes).
TEST(LongContext, Int4CacheBytesEqualWhatSpecsPrints) {
  test::TempDir dir;
  for (const char* shape : {"700M-shape", "2B-shape", "7B"}) {
    TritterConfig c = preset_config(shape);
    c.max_position_embeddings = 131072;
    test::write_file(dir / "c.json", config_to_json(c).dump());
    const auto r = test::run_cli("specs --config " + (dir / "c.json").string() + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(r.output);
    nlohmann::json int4;
    for (const auto& k : j.at("kv_cache")) {
      if (k.at("dtype") == "int4") int4 = k;
    }
    ASSERT_FALSE(int4.is_null()) << r.output;
    for (int64_t n : {int64_t{32768}, int64_t{131072}}) {
      // kv_cache_bytes is what the constructor allocates (checked on a small cache below: these are gigabytes).
      const int64_t bytes = static_cast<int64_t>(kv_cache_bytes(c, n, KvDtype::I4, 64));
      const int64_t d = c.head_dim, heads = c.num_hidden_layers * c.num_key_value_heads;
      const int64_t per_head = 2 * (n * d / 2) + (n / 32) * 2 * d * 4 + n * (d / 32) * 2 * 4 + 32 * d * 4;
      EXPECT_EQ(bytes, heads * per_head) << shape << " " << n;
      EXPECT_EQ(int4.at("bytes_at_" + std::to_string(n)).get<int64_t>(), bytes) << shape << " " << n;
    }
  }
  // 3.52 GiB at 128K for the 2B-shape (192 bytes per position and kv head; 6.75 GiB for the 700M-shape's 16 kv heads).
  TritterConfig b = preset_config("2B-shape");
  b.max_position_embeddings = 131072;
  EXPECT_EQ(kv_cache_bytes(b, 131072, KvDtype::I4, 64), size_t{30} * 5 * (131072 * 192 + 16384));
  // The allocation is that size: a 32K int4 cache of the test preset.
  TritterConfig t = preset_config("test");
  t.max_position_embeddings = 32768;
  const KvCache small(t, 32768, KvDtype::I4, 64, nullptr);
  EXPECT_EQ(small.bytes(), kv_cache_bytes(t, 32768, KvDtype::I4, 64));
  // d = 16: one value group of 16 channels (32 does not divide 16).
  EXPECT_EQ(small.bytes(), size_t{2} * 2 * (2 * 32768 * 8 + 1024 * 2 * 16 * 4 + 32768 * 1 * 2 * 4 + 32 * 16 * 4));
}

}  // namespace
}  // namespace tritter
