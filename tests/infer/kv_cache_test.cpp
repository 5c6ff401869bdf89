// KV cache: per-element error bounds of f16 / int8 / int4 (derived from the quantizer), the claimed memory, the
// sliding-window ring, and the errors for writes out of order or past the context.
#include "infer/kv_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/kv_quant.h"
#include "kernels/test_util_kernels.h"

namespace tritter {
namespace {

TritterConfig cfg(std::optional<int64_t> window = std::nullopt) {
  ConfigOverrides o;
  o.model_size = "test";  // L 2, K 2, d 16
  o.sliding_window = window;
  return resolve_config(o);
}

std::vector<float> random_rows(int64_t n, uint64_t seed, float scale) {
  Rng rng(seed);
  std::vector<float> x(n);
  for (auto& v : x) v = scale * rng.normal() + 0.3f * scale;  // offset: asymmetric ranges
  return x;
}

// |x − x̂| for min/max quantization with `levels` steps over the values `group`: s/2 plus float rounding of
// (x − min)/s, q·s and the addition (a few ulps of the range).
double minmax_bound(const std::vector<float>& group, int levels) {
  float mn = group[0], mx = group[0];
  for (float v : group) {
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  const double s = (mx - mn) / levels;
  const double eps = std::numeric_limits<float>::epsilon();
  return s / 2 * (1 + 4 * eps) + 4 * eps * (std::fabs(mn) + std::fabs(mx));
}

// One layer of H = 4 query heads over K = 2 kv heads (grouped queries) at head dim d, 1300 positions.
TritterConfig attention_config(int64_t d, std::optional<int64_t> window) {
  TritterConfig c = preset_config("test");
  c.num_hidden_layers = 1;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = d;
  c.hidden_size = 4 * d;
  c.sliding_window = window;
  c.max_position_embeddings = 1300;
  c.validate();
  return c;
}

// The cached attention over `a` and over `b` (layer 0, the last T of n positions, decode and a short prefill),
// bit for bit, on every tier at 1 and 2 threads. `b` has b_kv_heads kv heads where that is given, c's otherwise.
void expect_same_attention(const KvCache& a, const KvCache& b, const TritterConfig& c, int64_t n, Rng& rng,
                           const std::string& what, int64_t b_kv_heads = 0) {
  CachedAttnShape shape;
  shape.H = c.num_attention_heads;
  shape.K = c.num_key_value_heads;
  shape.d = c.head_dim;
  shape.mask = AttnMask(c.sliding_window);
  CachedAttnShape shape_b = shape;
  if (b_kv_heads > 0) shape_b.K = b_kv_heads;
  for (int64_t T : {1, 3}) {
    std::vector<float> q(T * shape.H * shape.d);
    for (auto& x : q) x = rng.normal();
    for (KernelTier tier : test::supported_tiers()) {
      for (int threads : {1, 2}) {
        Context ctx;
        ctx.kernels = tier;
        ctx.threads = threads;
        std::vector<float> oa(q.size(), -1.0f), ob(q.size(), -2.0f);
        attention_cached(ctx, oa.data(), q.data(), a.rows(0), n - T, T, shape);
        attention_cached(ctx, ob.data(), q.data(), b.rows(0), n - T, T, shape_b);
        for (size_t i = 0; i < oa.size(); ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(oa[i]), std::bit_cast<uint32_t>(ob[i]))
              << what << " " << kernel_tier_name(tier) << " d " << shape.d << " G " << shape.H / shape.K << " window "
              << c.sliding_window.value_or(0) << " T " << T << " threads " << threads << " at " << i << ": " << oa[i]
              << " vs " << ob[i];
        }
      }
    }
  }
}

TEST(KvCache, ErrorBoundsPerDtype) {
  const TritterConfig c = cfg();
  const int64_t K = c.num_key_value_heads, d = c.head_dim, T = 75;  // two full key groups and a partial one
  const auto k = random_rows(T * K * d, 1, 2.0f), v = random_rows(T * K * d, 2, 0.5f);
  for (KvDtype dt : {KvDtype::F32, KvDtype::F16, KvDtype::I8, KvDtype::I4}) {
    KvCache cache(c, 128, dt, 16, nullptr);
    for (int64_t p = 0; p < T; p += 16) {
      const int64_t n = std::min<int64_t>(16, T - p);
      cache.write(0, p, n, k.data() + p * K * d, v.data() + p * K * d);
    }
    const int levels = dt == KvDtype::I8 ? 255 : 15;
    const int64_t gv = kv_value_group(d);
    for (int64_t h = 0; h < K; ++h) {
      std::vector<float> kb(T * d), vb(T * d);
      cache.read(0, static_cast<int>(h), 0, T, kb.data(), vb.data());
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < d; ++i) {
          const float kx = k[(t * K + h) * d + i], vx = v[(t * K + h) * d + i];
          double kbound = 0, vbound = 0;
          if (dt == KvDtype::F16) {
            kbound = std::fabs(kx) * std::ldexp(1.0, -11);
            vbound = std::fabs(vx) * std::ldexp(1.0, -11);
          } else if (dt != KvDtype::F32) {
            const int64_t g0 = t / kKvKeyGroup * kKvKeyGroup;
            if (g0 + kKvKeyGroup <= T) {  // a full group: per channel over its 32 tokens
              std::vector<float> col;
              for (int64_t s = g0; s < g0 + kKvKeyGroup; ++s) col.push_back(k[(s * K + h) * d + i]);
              kbound = minmax_bound(col, levels);
            }  // else the residual: exact
            std::vector<float> row(v.begin() + (t * K + h) * d + i / gv * gv, v.begin() + (t * K + h) * d + i / gv * gv + gv);
            vbound = minmax_bound(row, levels);
          }
          ASSERT_LE(std::fabs(kb[t * d + i] - kx), kbound) << kv_dtype_name(dt) << " key t=" << t << " i=" << i;
          ASSERT_LE(std::fabs(vb[t * d + i] - vx), vbound) << kv_dtype_name(dt) << " value t=" << t << " i=" << i;
        }
      }
    }
  }
}

TEST(KvCache, ClaimedMemory) {
  const TritterConfig c = cfg();
  const int64_t L = c.num_hidden_layers, K = c.num_key_value_heads, d = c.head_dim, ctx = 512;
  auto per_head = [&](KvDtype t) { return kv_cache_bytes(c, ctx, t, 1) / (L * K); };
  EXPECT_EQ(per_head(KvDtype::F32), static_cast<size_t>(2 * ctx * d * 4));
  EXPECT_EQ(per_head(KvDtype::F16), static_cast<size_t>(2 * ctx * d * 2));
  // int8: 1 byte per element + per key group of 32 tokens a (min, scale) per channel + per value group of
  // kv_value_group(d) channels a (min, scale) per token + the f32 residual of one key group.
  const size_t kparams = ctx / kKvKeyGroup * 2 * d * 4, vparams = ctx * (d / kv_value_group(d)) * 2 * 4;
  const size_t residual = kKvKeyGroup * d * 4;
  EXPECT_EQ(per_head(KvDtype::I8), 2 * ctx * d + kparams + vparams + residual);
  EXPECT_EQ(per_head(KvDtype::I4), ctx * d + kparams + vparams + residual);
  KvCache cache(c, ctx, KvDtype::I4, 1, nullptr);
  EXPECT_EQ(cache.bytes(), kv_cache_bytes(c, ctx, KvDtype::I4, 1));
  // At head_dim 128 (2B-shape) int4 stands at 6 bits per element (0.1875 of f32) + the residual (0.004 at 4096).
  const TritterConfig big = preset_config("2B-shape");
  EXPECT_LE(static_cast<double>(kv_cache_bytes(big, 4096, KvDtype::I4, 1)) / kv_cache_bytes(big, 4096, KvDtype::F32, 1),
            0.192);
}

TEST(KvCache, SlidingWindowRingKeepsTheWindow) {
  const int64_t W = 8;
  const TritterConfig c = cfg(W);
  const int64_t K = c.num_key_value_heads, d = c.head_dim, T = 100;
  const auto k = random_rows(T * K * d, 3, 1.0f), v = random_rows(T * K * d, 4, 1.0f);
  for (KvDtype dt : {KvDtype::F32, KvDtype::I8}) {
    KvCache cache(c, 512, dt, 4, nullptr);
    EXPECT_EQ(cache.capacity(), dt == KvDtype::F32 ? W + 3 : 32);
    EXPECT_LT(cache.bytes(), kv_cache_bytes(c, 512, dt, 4) + 1);
    for (int64_t p = 0; p < T; p += 4) {
      cache.write(1, p, 4, k.data() + p * K * d, v.data() + p * K * d);
      // The first token of the chunk still sees its whole window.
      const int64_t lo = std::max<int64_t>(0, p - W + 1), n = p + 4 - lo;
      std::vector<float> kb(n * d), vb(n * d);
      cache.read(1, 1, lo, n, kb.data(), vb.data());
      if (dt == KvDtype::F32) {
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t i = 0; i < d; ++i) ASSERT_EQ(kb[t * d + i], k[((lo + t) * K + 1) * d + i]) << p << " " << t;
        }
      } else {
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t i = 0; i < d; ++i) ASSERT_NEAR(vb[t * d + i], v[((lo + t) * K + 1) * d + i], 0.05) << p;
        }
      }
    }
  }
  EXPECT_LT(kv_cache_bytes(c, 512, KvDtype::F32, 1), kv_cache_bytes(cfg(), 512, KvDtype::F32, 1) / 10);
}

TEST(KvCache, ZeroCopyViewOfAnF32Cache) {
  const TritterConfig c = cfg(8);  // window 8, max batch 1: a ring of 8 slots
  const int64_t K = c.num_key_value_heads, d = c.head_dim;
  const auto k = random_rows(20 * K * d, 5, 1.0f), v = random_rows(20 * K * d, 6, 1.0f);
  KvCache f32(c, 64, KvDtype::F32, 1, nullptr), i8(c, 64, KvDtype::I8, 1, nullptr);
  for (int64_t p = 0; p < 12; ++p) {
    f32.write(0, p, 1, k.data() + p * K * d, v.data() + p * K * d);
    i8.write(0, p, 1, k.data() + p * K * d, v.data() + p * K * d);
  }
  const float *kp = nullptr, *vp = nullptr;
  ASSERT_TRUE(f32.view(0, 1, 8, 4, &kp, &vp));  // slots 0..3
  for (int64_t t = 0; t < 4; ++t) {
    for (int64_t i = 0; i < d; ++i) {
      EXPECT_EQ(kp[t * d + i], k[((8 + t) * K + 1) * d + i]);
      EXPECT_EQ(vp[t * d + i], v[((8 + t) * K + 1) * d + i]);
    }
  }
  EXPECT_FALSE(f32.view(0, 1, 6, 4, &kp, &vp));  // slots 6, 7, 0, 1: wraps
  EXPECT_FALSE(i8.view(0, 1, 8, 4, &kp, &vp));   // quantized: read() dequantizes
}

// The SIMD tiers read an f16 cache's rows in place, converting halves in registers: the same bits as the same
// halves held as floats (an f32 cache written with the decoded halves), for the head dims with an in-place body
// (64, 96, 128) and one without (80, fetched), grouped queries, a ring that wraps (a window) and keys across a
// split chunk, on every tier at 1 and 2 threads; decode (T = 1) and a short prefill (T = 3).
TEST(KvCache, HalfRowsReadInPlaceGiveTheBitsOfTheirFloats) {
  for (int64_t d : {64, 80, 96, 128}) {
    for (const std::optional<int64_t> window : {std::optional<int64_t>{}, std::optional<int64_t>{100}}) {
      const TritterConfig c = attention_config(d, window);
      const int64_t K = 2, B = 8, n = 1290;
      KvCache half(c, 1300, KvDtype::F16, B, nullptr), full(c, 1300, KvDtype::F32, B, nullptr);
      ASSERT_NE(half.rows(0).view_f16, nullptr);
      EXPECT_EQ(full.rows(0).view_f16, nullptr);
      Rng rng(static_cast<uint64_t>(d));
      std::vector<float> k(B * K * d), v(k.size()), kr(k.size()), vr(k.size());
      std::vector<uint16_t> bits(k.size());
      for (int64_t p = 0; p < n; p += B) {
        const int64_t m = std::min(B, n - p);
        for (auto& x : k) x = 3.0f * rng.normal();
        for (auto& x : v) x = rng.normal();
        kv_f16_encode(bits.data(), k.data(), static_cast<int64_t>(k.size()));
        kv_f16_decode(kr.data(), bits.data(), static_cast<int64_t>(k.size()));
        kv_f16_encode(bits.data(), v.data(), static_cast<int64_t>(v.size()));
        kv_f16_decode(vr.data(), bits.data(), static_cast<int64_t>(v.size()));
        half.write(0, p, m, k.data(), v.data());
        full.write(0, p, m, kr.data(), vr.data());
      }
      expect_same_attention(half, full, c, n, rng, "f16");
    }
  }
}

// The SIMD tiers read int8 and int4 rows in place, dequantizing in registers with the cache's arithmetic (the
// product and the sum rounded apart): the same bits as an f32 cache holding what read() dequantizes, for the head
// dims with an in-place body and one without (80), grouped queries, a window's ring, the newest key group still
// in f32, on every tier at 1 and 2 threads.
TEST(KvCache, QuantizedRowsReadInPlaceGiveTheBitsOfTheirDequantizedFloats) {
  for (KvDtype dt : {KvDtype::I8, KvDtype::I4}) {
    for (int64_t d : {64, 80, 96, 128}) {
      for (const std::optional<int64_t> window : {std::optional<int64_t>{}, std::optional<int64_t>{100}}) {
        const TritterConfig c = attention_config(d, window);
        const int64_t K = 2, B = 8, n = 1290;  // 1290: the last 10 keys are the unflushed f32 group
        KvCache quant(c, 1300, dt, B, nullptr), full(c, 1300, KvDtype::F32, B, nullptr);
        ASSERT_NE(quant.rows(0).view_levels, nullptr);
        Rng rng(static_cast<uint64_t>(d) + 7);
        std::vector<float> k(B * K * d), v(k.size());
        for (int64_t p = 0; p < n; p += B) {
          for (auto& x : k) x = 2.0f * rng.normal() + 0.5f;
          for (auto& x : v) x = rng.normal();
          quant.write(0, p, std::min(B, n - p), k.data(), v.data());
        }
        // The f32 cache holds what the quantized one gives back (zeros where its ring no longer holds a position).
        const int64_t held = std::max<int64_t>(0, n - quant.capacity());
        std::vector<float> kf(n * K * d, 0.0f), vf(kf.size(), 0.0f), kb(d), vb(d);
        for (int64_t p = held; p < n; ++p) {
          for (int64_t h = 0; h < K; ++h) {
            quant.read(0, static_cast<int>(h), p, 1, kb.data(), vb.data());
            std::copy(kb.begin(), kb.end(), kf.begin() + (p * K + h) * d);
            std::copy(vb.begin(), vb.end(), vf.begin() + (p * K + h) * d);
          }
        }
        for (int64_t p = 0; p < n; p += B) full.write(0, p, std::min(B, n - p), kf.data() + p * K * d, vf.data() + p * K * d);
        expect_same_attention(quant, full, c, n, rng, kv_dtype_name(dt));
      }
    }
  }
}

// Grouped queries: the G query heads of a kv head are updated together, each key and value row of an f16 or
// quantized cache read (and converted or dequantized) once for the G rows (float rows go a row at a time). Every head must still get the bits it gets alone: the same
// attention with each kv head repeated G times in a cache of H kv heads (one query head per kv head, the one-row
// update), for G = 3, 4, 6 (the updates take 4, 2 and 1 rows at a time: 2 + 1, 4, 4 + 2), the head dims with a fixed-size update
// and one without, every cache dtype (quantization is per kv head, so the repeated heads hold the same levels),
// a window's ring, decode and a short prefill, every tier, 1 and 2 threads.
TEST(KvCache, GroupedQueryHeadsGetTheBitsOfTheSameHeadsAlone) {
  for (KvDtype dt : {KvDtype::F32, KvDtype::F16, KvDtype::I8, KvDtype::I4}) {
    for (int64_t d : {64, 80, 128}) {
      for (int64_t G : {3, 4, 6}) {
        const std::optional<int64_t> window = G == 3 ? std::optional<int64_t>{100} : std::nullopt;
        TritterConfig grouped = attention_config(d, window);
        const int64_t K = 2, H = G * K, B = 8, n = 1100;
        grouped.num_attention_heads = H;
        grouped.hidden_size = H * d;
        grouped.max_position_embeddings = n;
        grouped.validate();
        TritterConfig alone = grouped;
        alone.num_key_value_heads = H;
        alone.validate();
        KvCache a(grouped, n, dt, B, nullptr), b(alone, n, dt, B, nullptr);
        Rng rng(static_cast<uint64_t>(d * 10 + G));
        std::vector<float> k(B * K * d), v(k.size()), kr(B * H * d), vr(kr.size());
        for (int64_t p = 0; p < n; p += B) {
          for (auto& x : k) x = 2.0f * rng.normal() + 0.5f;
          for (auto& x : v) x = rng.normal();
          for (int64_t t = 0; t < B; ++t) {  // kv head h of `alone` is kv head h / G of `grouped`
            for (int64_t h = 0; h < H; ++h) {
              std::copy_n(k.begin() + (t * K + h / G) * d, d, kr.begin() + (t * H + h) * d);
              std::copy_n(v.begin() + (t * K + h / G) * d, d, vr.begin() + (t * H + h) * d);
            }
          }
          const int64_t m = std::min(B, n - p);
          a.write(0, p, m, k.data(), v.data());
          b.write(0, p, m, kr.data(), vr.data());
        }
        expect_same_attention(a, b, grouped, n, rng, kv_dtype_name(dt), H);
      }
    }
  }
}

TEST(KvCache, Errors) {
  const TritterConfig c = cfg();
  KvCache cache(c, 4, KvDtype::F32, 4, nullptr);
  std::vector<float> x(5 * c.kv_dim());
  EXPECT_THROW(cache.write(0, 1, 1, x.data(), x.data()), Error);  // gap
  cache.write(0, 0, 3, x.data(), x.data());
  try {
    cache.write(0, 3, 2, x.data(), x.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceed the context of 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(KvCache(c, c.max_position_embeddings + 1, KvDtype::F32, 1, nullptr), Error);
  EXPECT_THROW(kv_dtype_from_name("int3"), Error);
  EXPECT_EQ(kv_dtype_from_name("int4"), KvDtype::I4);
}

}  // namespace
}  // namespace tritter
