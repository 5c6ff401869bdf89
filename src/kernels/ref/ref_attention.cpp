// Reference attention (kernels/attention.h contracts): the full score matrix of each (sequence, head), the mask
// asked pair by pair through AttnMask::visible, softmax and every product in double, the backward through the
// materialized P and dS. Grouped queries: query head h reads kv head h / G.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace tritter::ref {

namespace {
double dot(const float* a, const float* b, int64_t d) {
  double s = 0.0;
  for (int64_t x = 0; x < d; ++x) s += static_cast<double>(a[x]) * b[x];
  return s;
}
}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const AttnShape& s) {
  const int64_t T = s.T, H = s.H, K = s.K, d = s.d, G = H / K;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> p(static_cast<size_t>(T));
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kv = h / G;
      for (int64_t i = 0; i < T; ++i) {
        const float* qi = q + ((b * T + i) * H + h) * d;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < T; ++j) {
          p[j] = s.mask_of(b).visible(i, j, T) ? scale * dot(qi, k + ((b * T + j) * K + kv) * d, d)
                                         : -std::numeric_limits<double>::infinity();
          m = std::fmax(m, p[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < T; ++j) sum += std::exp(p[j] - m);  // exp(−inf) = 0 for masked pairs
        for (int64_t j = 0; j < T; ++j) p[j] = std::exp(p[j] - m) / sum;
        lse[(b * H + h) * T + i] = static_cast<float>(m + std::log(sum));
        float* oi = out + ((b * T + i) * H + h) * d;
        for (int64_t x = 0; x < d; ++x) {
          double o = 0.0;
          for (int64_t j = 0; j < T; ++j) o += p[j] * v[((b * T + j) * K + kv) * d + x];
          oi[x] = static_cast<float>(o);
        }
      }
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const AttnShape& s) {
  const int64_t T = s.T, H = s.H, K = s.K, d = s.d, G = H / K;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // Sums over query heads and positions in double, rounded once at the end.
  std::vector<double> dka(static_cast<size_t>(s.B * T * K * d), 0.0), dva(dka.size(), 0.0);
  std::vector<double> P(static_cast<size_t>(T * T)), dS(P.size());
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kv = h / G;
      auto qp = [&](int64_t i) { return q + ((b * T + i) * H + h) * d; };
      auto dop = [&](int64_t i) { return dout + ((b * T + i) * H + h) * d; };
      auto kp = [&](int64_t j) { return k + ((b * T + j) * K + kv) * d; };
      auto vp = [&](int64_t j) { return v + ((b * T + j) * K + kv) * d; };
      for (int64_t i = 0; i < T; ++i) {
        const double l = lse[(b * H + h) * T + i];
        const double delta = dot(dop(i), out + ((b * T + i) * H + h) * d, d);  // Σ_x dO·O = Σ_j P·dP
        for (int64_t j = 0; j < T; ++j) {
          const bool vis = s.mask_of(b).visible(i, j, T);
          const double pij = vis ? std::exp(scale * dot(qp(i), kp(j), d) - l) : 0.0;
          P[i * T + j] = pij;
          dS[i * T + j] = vis ? pij * (dot(dop(i), vp(j), d) - delta) : 0.0;
        }
      }
      for (int64_t i = 0; i < T; ++i) {
        for (int64_t x = 0; x < d; ++x) {
          double a = 0.0;
          for (int64_t j = 0; j < T; ++j) a += dS[i * T + j] * kp(j)[x];
          dq[((b * T + i) * H + h) * d + x] = static_cast<float>(scale * a);
        }
      }
      for (int64_t j = 0; j < T; ++j) {
        for (int64_t x = 0; x < d; ++x) {
          double ak = 0.0, av = 0.0;
          for (int64_t i = 0; i < T; ++i) {
            ak += dS[i * T + j] * qp(i)[x];
            av += P[i * T + j] * dop(i)[x];
          }
          dka[((b * T + j) * K + kv) * d + x] += scale * ak;
          dva[((b * T + j) * K + kv) * d + x] += av;
        }
      }
    }
  }
  for (size_t i = 0; i < dka.size(); ++i) {
    dk[i] = static_cast<float>(dka[i]);
    dv[i] = static_cast<float>(dva[i]);
  }
}

void attention_cached(float* o, const float* q, const KvRows& kv_rows, int64_t pos0, int64_t T,
                      const CachedAttnShape& s) {
  const int64_t H = s.H, K = s.K, d = s.d, G = H / K, n = pos0 + T;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i = pos0 + t;
    const int64_t lo = s.mask.lo(i), hi = s.mask.hi(i, n), cnt = hi - lo + 1;
    std::vector<float> kb(static_cast<size_t>(cnt * d)), vb(kb.size());
    std::vector<double> p(static_cast<size_t>(cnt));
    for (int64_t kv = 0; kv < K; ++kv) {
      const float* kr = kb.data();
      const float* vr = vb.data();
      kv_rows.fetch(kv_rows.store, kv_rows.layer, static_cast<int>(kv), lo, cnt, kb.data(), vb.data(), &kr, &vr);
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = kv * G + g;
        const float* qi = q + (t * H + h) * d;
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < cnt; ++j) {
          p[j] = s.mask.visible(i, lo + j, n) ? scale * dot(qi, kr + j * d, d)
                                              : -std::numeric_limits<double>::infinity();
          m = std::fmax(m, p[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < cnt; ++j) sum += std::exp(p[j] - m);
        for (int64_t x = 0; x < d; ++x) {
          double a = 0.0;
          for (int64_t j = 0; j < cnt; ++j) a += std::exp(p[j] - m) * vr[j * d + x];
          o[(t * H + h) * d + x] = static_cast<float>(a / sum);
        }
      }
    }
  }
}

}  // namespace tritter::ref
