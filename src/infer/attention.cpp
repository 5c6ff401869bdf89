#include "infer/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

namespace tritter {

void attention_forward(const Context& ctx, float* o, const float* q, const KvCache& cache, int layer, int64_t pos0,
                       int64_t T, const TritterConfig& c) {
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, G = c.gqa_group(), d = c.head_dim;
  const int64_t W = c.sliding_window.value_or(0);
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t ntiles = (T + kAttnQueryTile - 1) / kAttnQueryTile;
  const int64_t items = K * ntiles;
  // Small problems (short contexts, tiny models) run on one thread: waking a team costs more than it saves, and
  // far more on a loaded machine. Work ≈ query rows × visible keys × d, both dot products and updates.
  const int64_t visible = W > 0 ? std::min(W, pos0 + T) : pos0 + T;
  const double work = static_cast<double>(T) * H * visible * d * 2;
  const int threads = work < double(1 << 19) ? 1 : static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(ctx.threads, items)));

#pragma omp parallel num_threads(threads)
  {
    const int64_t rows_max = kAttnQueryTile * G;
    std::vector<float> kb(kAttnKeyBlock * d), vb(kAttnKeyBlock * d), s(kAttnKeyBlock);
    std::vector<float> m(rows_max), l(rows_max), acc(rows_max * d);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t kv = item / ntiles, tile = item % ntiles;
      const int64_t i0 = tile * kAttnQueryTile, i1 = std::min(T, i0 + kAttnQueryTile);
      const int64_t rows = (i1 - i0) * G;
      std::fill(m.begin(), m.begin() + rows, -std::numeric_limits<float>::infinity());
      std::fill(l.begin(), l.begin() + rows, 0.0f);
      std::fill(acc.begin(), acc.begin() + rows * d, 0.0f);
      // Keys any query of the tile sees: [lo, hi].
      const int64_t hi = pos0 + i1 - 1;
      const int64_t lo = W > 0 ? std::max<int64_t>(0, pos0 + i0 - W + 1) : 0;
      for (int64_t b0 = lo / kAttnKeyBlock * kAttnKeyBlock; b0 <= hi; b0 += kAttnKeyBlock) {
        const int64_t j0 = std::max(b0, lo), j1 = std::min(b0 + kAttnKeyBlock - 1, hi);
        cache.read(layer, static_cast<int>(kv), j0, j1 - j0 + 1, kb.data(), vb.data());
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t p = pos0 + i;
          const int64_t rlo = std::max(j0, W > 0 ? p - W + 1 : int64_t{0}), rhi = std::min(j1, p);
          if (rlo > rhi) continue;  // this block holds nothing this query sees: no rescale either
          for (int64_t g = 0; g < G; ++g) {
            const int64_t r = (i - i0) * G + g;
            const float* qr = q + (i * H + kv * G + g) * d;
            float mb = -std::numeric_limits<float>::infinity();
            for (int64_t j = rlo; j <= rhi; ++j) {
              s[j - rlo] = dot_f32(qr, kb.data() + (j - j0) * d, d) * inv_sqrt_d;
              mb = std::max(mb, s[j - rlo]);
            }
            const float mnew = std::max(m[r], mb);
            const float alpha = std::exp(m[r] - mnew);
            float* ar = acc.data() + r * d;
            for (int64_t x = 0; x < d; ++x) ar[x] *= alpha;
            float sum = 0.0f;
            for (int64_t j = rlo; j <= rhi; ++j) {
              const float pj = std::exp(s[j - rlo] - mnew);
              sum += pj;
              const float* vr = vb.data() + (j - j0) * d;
              for (int64_t x = 0; x < d; ++x) ar[x] += pj * vr[x];
            }
            l[r] = l[r] * alpha + sum;
            m[r] = mnew;
          }
        }
      }
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t g = 0; g < G; ++g) {
          const int64_t r = (i - i0) * G + g;
          float* out = o + (i * H + kv * G + g) * d;
          const float inv = 1.0f / l[r];
          for (int64_t x = 0; x < d; ++x) out[x] = acc[r * d + x] * inv;
        }
      }
    }
  }
}

}  // namespace tritter
