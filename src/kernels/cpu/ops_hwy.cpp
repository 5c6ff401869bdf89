// Highway bodies of the float kernels: activation quantization (bit-exact with kernels/ref: the same IEEE
// multiply and ties-to-even rounding per element), RMSNorm and its fused quantizing form, RoPE, squared ReLU,
// softmax, and the transposed ternary product dx = dy · Wq / σ over the T16 layout. Compiled for AVX-512 (AVX3),
// AVX2 and the portable baseline (EMU128) only, to keep compile time down; SSSE3/SSE4 are skipped.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4)
#endif

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/quantize.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/ops_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tritter::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

[[noreturn]] void throw_nonfinite(const char* where, const float* row, int64_t r, int64_t n) {
  int64_t k = 0;
  while (k < n && std::isfinite(row[k])) ++k;
  throw_error(where, ": row ", r, " column ", k, ": found ", k < n ? row[k] : 0.0f, ", expected a finite value");
}

// Returns absmax of v[0..n) ⊙ f ⊙ g (g == nullptr: no norm) and whether every element was finite.
float absmax_row(const float* x, const float* g, float f, int64_t n, bool* finite) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  auto vmax = hn::Zero(d), vnf = hn::Zero(d);
  const auto vf = hn::Set(d, f);
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    auto v = hn::LoadU(d, x + k);
    if (g != nullptr) v = hn::Mul(hn::Mul(v, vf), hn::LoadU(d, g + k));
    vmax = hn::Max(vmax, hn::Abs(v));
    vnf = hn::Add(vnf, hn::Sub(v, v));  // 0 for finite lanes, NaN once any lane was NaN or ±Inf
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, vmax));
  float nf = hn::GetLane(hn::SumOfLanes(d, vnf));
  for (; k < n; ++k) {
    const float v = g != nullptr ? x[k] * f * g[k] : x[k];
    m = std::fmax(m, std::fabs(v));
    nf += v - v;
  }
  *finite = (nf == 0.0f);
  return m;
}

// xq[k] = clamp(rne(v · s), −127, 127) with v = x (g == nullptr) or x · f · g.
void quantize_row(int8_t* xq, const float* x, const float* g, float f, float s, int64_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<int32_t, decltype(d)> di;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const auto vs = hn::Set(d, s), vf = hn::Set(d, f), lo = hn::Set(d, -127.0f), hi = hn::Set(d, 127.0f);
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    auto v = hn::LoadU(d, x + k);
    if (g != nullptr) v = hn::Mul(hn::Mul(v, vf), hn::LoadU(d, g + k));
    const auto q = hn::Min(hn::Max(hn::Round(hn::Mul(v, vs)), lo), hi);
    hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(di, q)), d8, xq + k);
  }
  for (; k < n; ++k) {
    const float v = g != nullptr ? x[k] * f * g[k] : x[k];
    xq[k] = static_cast<int8_t>(std::fmin(std::fmax(std::nearbyint(v * s), -127.0f), 127.0f));
  }
}

void QuantizeActivations(int8_t* xq, float* scale, const float* x, int64_t N, int64_t I) {
  for (int64_t r = 0; r < N; ++r) {
    bool finite = true;
    const float m = absmax_row(x + r * I, nullptr, 1.0f, I, &finite);
    if (!finite) throw_nonfinite("quantize_activations", x + r * I, r, I);
    const float s = 127.0f / std::fmax(m, kQuantEps);
    scale[r] = s;
    quantize_row(xq + r * I, x + r * I, nullptr, 1.0f, s, I);
  }
}

// 1/sqrt(mean x² + eps) with a float vector sum of squares.
float rms_factor(const float* x, int64_t n, float eps) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  auto a0 = hn::Zero(d), a1 = hn::Zero(d);
  int64_t k = 0;
  for (; k + 2 * L <= n; k += 2 * L) {
    const auto v0 = hn::LoadU(d, x + k), v1 = hn::LoadU(d, x + k + L);
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
  }
  for (; k + L <= n; k += L) {
    const auto v = hn::LoadU(d, x + k);
    a0 = hn::MulAdd(v, v, a0);
  }
  float ss = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
  for (; k < n; ++k) ss += x[k] * x[k];
  return 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
}

void Rmsnorm(float* y, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r = 0; r < N; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const float f = rms_factor(xr, n, eps);
    const auto vf = hn::Set(d, f);
    int64_t k = 0;
    for (; k + L <= n; k += L) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, xr + k), vf), hn::LoadU(d, g + k)), d, yr + k);
    for (; k < n; ++k) yr[k] = xr[k] * f * g[k];
  }
}

// Training's forward: Rmsnorm that also keeps each row's 1/rms (rstd) for the backward.
void RmsnormForward(float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  for (int64_t r = 0; r < N; ++r) rstd[r] = rms_factor(x + r * n, n, eps);
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r = 0; r < N; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const auto vf = hn::Set(d, rstd[r]);
    int64_t k = 0;
    for (; k + L <= n; k += L) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, xr + k), vf), hn::LoadU(d, g + k)), d, yr + k);
    for (; k < n; ++k) yr[k] = xr[k] * rstd[r] * g[k];
  }
}

// RMSNorm backward of N rows: dx += r·(dn − x·r·c) with dn = dy ⊙ g, c = r·mean(dn ⊙ x); dg += Σ_rows dy ⊙ x·r.
void RmsnormBackward(float* dx, float* dg, const float* dy, const float* x, const float* rstd, const float* g,
                     int64_t N, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t row = 0; row < N; ++row) {
    const float* xr = x + row * n;
    const float* dyr = dy + row * n;
    float* dxr = dx + row * n;
    const float r = rstd[row];
    const auto vr = hn::Set(d, r);
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    int64_t k = 0;
    for (; k + 2 * L <= n; k += 2 * L) {
      const auto x0 = hn::LoadU(d, xr + k), x1 = hn::LoadU(d, xr + k + L);
      const auto y0 = hn::LoadU(d, dyr + k), y1 = hn::LoadU(d, dyr + k + L);
      a0 = hn::MulAdd(hn::Mul(y0, hn::LoadU(d, g + k)), x0, a0);
      a1 = hn::MulAdd(hn::Mul(y1, hn::LoadU(d, g + k + L)), x1, a1);
      hn::StoreU(hn::MulAdd(y0, hn::Mul(x0, vr), hn::LoadU(d, dg + k)), d, dg + k);
      hn::StoreU(hn::MulAdd(y1, hn::Mul(x1, vr), hn::LoadU(d, dg + k + L)), d, dg + k + L);
    }
    for (; k + L <= n; k += L) {
      const auto x0 = hn::LoadU(d, xr + k), y0 = hn::LoadU(d, dyr + k);
      a0 = hn::MulAdd(hn::Mul(y0, hn::LoadU(d, g + k)), x0, a0);
      hn::StoreU(hn::MulAdd(y0, hn::Mul(x0, vr), hn::LoadU(d, dg + k)), d, dg + k);
    }
    float dot = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
    for (; k < n; ++k) {
      dot += dyr[k] * g[k] * xr[k];
      dg[k] += dyr[k] * (xr[k] * r);
    }
    const float rc = r * (r * dot / static_cast<float>(n));
    const auto vrc = hn::Set(d, rc);
    k = 0;
    for (; k + L <= n; k += L) {
      const auto dn = hn::Mul(hn::LoadU(d, dyr + k), hn::LoadU(d, g + k));
      const auto t = hn::NegMulAdd(hn::LoadU(d, xr + k), vrc, dn);  // dn − x·rc
      hn::StoreU(hn::MulAdd(vr, t, hn::LoadU(d, dxr + k)), d, dxr + k);
    }
    for (; k < n; ++k) dxr[k] += r * (dyr[k] * g[k] - xr[k] * rc);
  }
}

void RmsnormQuantize(int8_t* xq, float* scale, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  for (int64_t r = 0; r < N; ++r) {
    const float* xr = x + r * n;
    const float f = rms_factor(xr, n, eps);
    bool finite = true;
    const float m = absmax_row(xr, g, f, n, &finite);
    if (!finite) throw_nonfinite("rmsnorm_quantize", xr, r, n);
    const float s = 127.0f / std::fmax(m, kQuantEps);
    scale[r] = s;
    quantize_row(xq + r * n, xr, g, f, s, n);
  }
}

void RopeApply(float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t dh) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const int64_t h2 = dh / 2;
  for (int64_t t = 0; t < T; ++t) {
    const float* c = cos + t * h2;
    const float* s = sin + t * h2;
    for (int64_t h = 0; h < heads; ++h) {
      float* u = x + (t * heads + h) * dh;
      int64_t j = 0;
      for (; j + L <= h2; j += L) {
        const auto u1 = hn::LoadU(d, u + j), u2 = hn::LoadU(d, u + j + h2);
        const auto vc = hn::LoadU(d, c + j), vs = hn::LoadU(d, s + j);
        hn::StoreU(hn::Sub(hn::Mul(u1, vc), hn::Mul(u2, vs)), d, u + j);
        hn::StoreU(hn::Add(hn::Mul(u2, vc), hn::Mul(u1, vs)), d, u + j + h2);
      }
      for (; j < h2; ++j) {
        const float u1 = u[j], u2 = u[j + h2];
        u[j] = u1 * c[j] - u2 * s[j];
        u[j + h2] = u2 * c[j] + u1 * s[j];
      }
    }
  }
}

void Relu2(float* y, const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const auto r = hn::Max(hn::LoadU(d, x + k), hn::Zero(d));
    hn::StoreU(hn::Mul(r, r), d, y + k);
  }
  for (; k < n; ++k) {
    const float r = x[k] > 0.0f ? x[k] : 0.0f;
    y[k] = r * r;
  }
}

void Relu2Glu(float* y, const float* gate, const float* up, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const auto r = hn::Max(hn::LoadU(d, gate + k), hn::Zero(d));
    hn::StoreU(hn::Mul(hn::Mul(r, r), hn::LoadU(d, up + k)), d, y + k);
  }
  for (; k < n; ++k) {
    const float r = gate[k] > 0.0f ? gate[k] : 0.0f;
    y[k] = r * r * up[k];
  }
}

// ELU: x for x > 0, alpha·expm1(x) otherwise (below −87 expm1 is −1 to float precision: clamped there).
void Elu(float* y, const float* x, int64_t n, float alpha) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, alpha), vlow = hn::Set(d, -87.0f), zero = hn::Zero(d);
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const auto v = hn::LoadU(d, x + k);
    const auto neg = hn::Mul(va, hn::Expm1(d, hn::Min(hn::Max(v, vlow), zero)));
    hn::StoreU(hn::IfThenElse(hn::Gt(v, zero), v, neg), d, y + k);
  }
  for (; k < n; ++k) y[k] = x[k] > 0.0f ? x[k] : alpha * std::expm1(x[k]);
}

// ELU's backward: dx = dy for x > 0, dy·alpha·exp(x) otherwise (dx may be dy).
void EluBackward(float* dx, const float* dy, const float* x, int64_t n, float alpha) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, alpha), vlow = hn::Set(d, -87.0f), zero = hn::Zero(d);
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const auto v = hn::LoadU(d, x + k), g = hn::LoadU(d, dy + k);
    const auto neg = hn::Mul(hn::Mul(g, va), hn::Exp(d, hn::Min(hn::Max(v, vlow), zero)));
    hn::StoreU(hn::IfThenElse(hn::Gt(v, zero), g, neg), d, dx + k);
  }
  for (; k < n; ++k) dx[k] = x[k] > 0.0f ? dy[k] : dy[k] * alpha * std::exp(x[k]);
}

// exp(t) for t ≤ ~0 (a score minus its row's max or log-sum-exp); below kLow it is < 2e-38 and flushed to 0, so
// −inf masks give exactly 0.
constexpr float kExpLow = -87.0f;

// Softmax of row[0..n) in place; returns the row's log-sum-exp m + log Σ exp(row − m).
float SoftmaxRowLse(float* row, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  auto vm = hn::Set(d, -INFINITY);
  int64_t k = 0;
  for (; k + L <= n; k += L) vm = hn::Max(vm, hn::LoadU(d, row + k));
  float m = hn::GetLane(hn::MaxOfLanes(d, vm));
  for (; k < n; ++k) m = std::fmax(m, row[k]);
  const auto vmm = hn::Set(d, m), vlow = hn::Set(d, kExpLow);
  auto vsum = hn::Zero(d);
  k = 0;
  for (; k + L <= n; k += L) {
    const auto t = hn::Sub(hn::LoadU(d, row + k), vmm);
    const auto e = hn::IfThenElseZero(hn::Ge(t, vlow), hn::Exp(d, hn::Max(t, vlow)));
    hn::StoreU(e, d, row + k);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (; k < n; ++k) {
    const float t = row[k] - m;
    row[k] = t >= kExpLow ? std::exp(t) : 0.0f;
    sum += row[k];
  }
  const float inv = 1.0f / sum;
  const auto vinv = hn::Set(d, inv);
  k = 0;
  for (; k + L <= n; k += L) hn::StoreU(hn::Mul(hn::LoadU(d, row + k), vinv), d, row + k);
  for (; k < n; ++k) row[k] *= inv;
  return m + std::log(sum);
}

void SoftmaxRows(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) SoftmaxRowLse(x + r * n, n);
}

// One attention row's softmax backward from its scores s and log-sum-exp: p = exp(s − lse) (in place of s),
// ds ← p ⊙ (ds − delta), with ds = dP on entry and delta = Σ dO·O.
void SoftmaxBackwardRow(float* s, float* ds, int64_t n, float lse, float delta) {
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const auto vl = hn::Set(d, lse), vdelta = hn::Set(d, delta), vlow = hn::Set(d, kExpLow);
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    const auto t = hn::Sub(hn::LoadU(d, s + k), vl);
    const auto p = hn::IfThenElseZero(hn::Ge(t, vlow), hn::Exp(d, hn::Max(t, vlow)));
    hn::StoreU(p, d, s + k);
    hn::StoreU(hn::Mul(p, hn::Sub(hn::LoadU(d, ds + k), vdelta)), d, ds + k);
  }
  for (; k < n; ++k) {
    const float t = s[k] - lse;
    const float p = t >= kExpLow ? std::exp(t) : 0.0f;
    s[k] = p;
    ds[k] = p * (ds[k] - delta);
  }
}

// byte → its 4 weights as floats (−1, 0, +1), bits 0-1 first.
struct CodeFloats {
  float v[256][4];
  constexpr CodeFloats() : v() {
    for (int b = 0; b < 256; ++b) {
      for (int j = 0; j < 4; ++j) v[b][j] = static_cast<float>(((b >> (2 * j)) & 3) - 1);
    }
  }
};
constexpr CodeFloats kCodeFloats{};

// dx columns of S adjacent 16-column strips starting at strip cb, for all N tokens in tiles of up to kNT: each
// 16×16 weight tile is decoded once to floats (table lookup) and applied with one broadcast of dy[n, o] feeding
// S·16/L FMAs, 4 tokens at a time (4 independent FMA chains).
template <int S>
void TCols(float* dx, const float* dy, const TernaryMatrix& w, int64_t N, int64_t cb) {
  constexpr int64_t kNT = 128, W = 16 * S;
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  const int64_t O = w.rows, I = w.cols, ncb = (I + 15) / 16, nrb = (O + 15) / 16;
  HWY_ALIGN float acc[kNT * W];
  HWY_ALIGN float tile[16 * W];
  for (int64_t n0 = 0; n0 < N; n0 += kNT) {
    const int64_t nt = std::min(kNT, N - n0);
    std::fill(acc, acc + nt * W, 0.0f);
    for (int64_t rb = 0; rb < nrb; ++rb) {
      for (int s = 0; s < S; ++s) {
        const uint8_t* t8 = w.data + (rb * ncb + cb + s) * kTernaryTileBytes;
        for (int b = 0; b < 64; ++b) {
          const float* v = kCodeFloats.v[t8[b]];
          float* row = tile + (b >> 2) * W + 16 * s + (b & 3);
          row[0] = v[0];
          row[4] = v[1];
          row[8] = v[2];
          row[12] = v[3];
        }
      }
      const int64_t rows = std::min<int64_t>(16, O - rb * 16);
      const float* dy0 = dy + n0 * O + rb * 16;
      int64_t n = 0;
      for (; n + 4 <= nt; n += 4) {  // 4 tokens × 2 column vectors: 8 chains, each broadcast feeds 2 FMAs
        const float* d0 = dy0 + n * O;
        int64_t c = 0;
        for (; c + 2 * L <= W; c += 2 * L) {
          float* a = acc + n * W + c;
          auto a0 = hn::Load(d, a), a1 = hn::Load(d, a + W), a2 = hn::Load(d, a + 2 * W), a3 = hn::Load(d, a + 3 * W);
          auto b0 = hn::Load(d, a + L), b1 = hn::Load(d, a + W + L), b2 = hn::Load(d, a + 2 * W + L),
               b3 = hn::Load(d, a + 3 * W + L);
          for (int64_t r = 0; r < rows; ++r) {
            const auto t = hn::Load(d, tile + r * W + c), u = hn::Load(d, tile + r * W + c + L);
            const auto y0 = hn::Set(d, d0[r]), y1 = hn::Set(d, d0[O + r]), y2 = hn::Set(d, d0[2 * O + r]),
                       y3 = hn::Set(d, d0[3 * O + r]);
            a0 = hn::MulAdd(y0, t, a0);
            b0 = hn::MulAdd(y0, u, b0);
            a1 = hn::MulAdd(y1, t, a1);
            b1 = hn::MulAdd(y1, u, b1);
            a2 = hn::MulAdd(y2, t, a2);
            b2 = hn::MulAdd(y2, u, b2);
            a3 = hn::MulAdd(y3, t, a3);
            b3 = hn::MulAdd(y3, u, b3);
          }
          hn::Store(a0, d, a);
          hn::Store(a1, d, a + W);
          hn::Store(a2, d, a + 2 * W);
          hn::Store(a3, d, a + 3 * W);
          hn::Store(b0, d, a + L);
          hn::Store(b1, d, a + W + L);
          hn::Store(b2, d, a + 2 * W + L);
          hn::Store(b3, d, a + 3 * W + L);
        }
        for (; c < W; c += L) {  // W = 16 on a 16-lane target: one vector per row
          float* a = acc + n * W + c;
          auto a0 = hn::Load(d, a), a1 = hn::Load(d, a + W), a2 = hn::Load(d, a + 2 * W), a3 = hn::Load(d, a + 3 * W);
          for (int64_t r = 0; r < rows; ++r) {
            const auto t = hn::Load(d, tile + r * W + c);
            a0 = hn::MulAdd(hn::Set(d, d0[r]), t, a0);
            a1 = hn::MulAdd(hn::Set(d, d0[O + r]), t, a1);
            a2 = hn::MulAdd(hn::Set(d, d0[2 * O + r]), t, a2);
            a3 = hn::MulAdd(hn::Set(d, d0[3 * O + r]), t, a3);
          }
          hn::Store(a0, d, a);
          hn::Store(a1, d, a + W);
          hn::Store(a2, d, a + 2 * W);
          hn::Store(a3, d, a + 3 * W);
        }
      }
      for (; n < nt; ++n) {
        const float* dyr = dy0 + n * O;
        for (int64_t c = 0; c < W; c += L) {
          auto a = hn::Load(d, acc + n * W + c);
          for (int64_t r = 0; r < rows; ++r) a = hn::MulAdd(hn::Set(d, dyr[r]), hn::Load(d, tile + r * W + c), a);
          hn::Store(a, d, acc + n * W + c);
        }
      }
    }
    const int64_t lim = std::min<int64_t>(W, I - cb * 16);
    for (int64_t n = 0; n < nt; ++n) {
      float* out = dx + (n0 + n) * I + cb * 16;
      for (int64_t c = 0; c < lim; ++c) out[c] = acc[n * W + c] / w.sigma;
    }
  }
}

void TernaryMatmulTCols(float* dx, const float* dy, const TernaryMatrix& w, int64_t N, int64_t cb_begin,
                        int64_t cb_end) {
  int64_t cb = cb_begin;
  for (; cb + 2 <= cb_end; cb += 2) TCols<2>(dx, dy, w, N, cb);
  if (cb < cb_end) TCols<1>(dx, dy, w, N, cb);
}

}  // namespace HWY_NAMESPACE
}  // namespace tritter::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tritter::cpu {

HWY_EXPORT(QuantizeActivations);
HWY_EXPORT(Rmsnorm);
HWY_EXPORT(RmsnormQuantize);
HWY_EXPORT(RmsnormForward);
HWY_EXPORT(RmsnormBackward);
HWY_EXPORT(RopeApply);
HWY_EXPORT(Relu2);
HWY_EXPORT(Relu2Glu);
HWY_EXPORT(SoftmaxRows);
HWY_EXPORT(Elu);
HWY_EXPORT(EluBackward);
HWY_EXPORT(SoftmaxRowLse);
HWY_EXPORT(SoftmaxBackwardRow);
HWY_EXPORT(TernaryMatmulTCols);

// A forced tier calls that target's copy directly; Auto lets Highway pick. Targets not compiled here (e.g. on Arm)
// fall back to Highway's choice; ternary_kernel_tier() has already refused tiers the CPU lacks.
#if HWY_TARGETS & HWY_AVX3
#define TRITTER_CALL_AVX3(FN, ...) N_AVX3::FN(__VA_ARGS__)
#else
#define TRITTER_CALL_AVX3(FN, ...) HWY_DYNAMIC_DISPATCH(FN)(__VA_ARGS__)
#endif
#if HWY_TARGETS & HWY_AVX2
#define TRITTER_CALL_AVX2(FN, ...) N_AVX2::FN(__VA_ARGS__)
#else
#define TRITTER_CALL_AVX2(FN, ...) HWY_DYNAMIC_DISPATCH(FN)(__VA_ARGS__)
#endif
#define TRITTER_HWY_CALL(tier, FN, ...)                                          \
  switch (tier) {                                                                \
    case KernelTier::Avx512Vnni: return TRITTER_CALL_AVX3(FN, __VA_ARGS__);      \
    case KernelTier::Avx2: return TRITTER_CALL_AVX2(FN, __VA_ARGS__);            \
    case KernelTier::Scalar: return HWY_STATIC_DISPATCH(FN)(__VA_ARGS__);        \
    default: return HWY_DYNAMIC_DISPATCH(FN)(__VA_ARGS__);                       \
  }

void quantize_activations(KernelTier tier, int8_t* xq, float* scale, const float* x, int64_t N, int64_t I) {
  TRITTER_HWY_CALL(tier, QuantizeActivations, xq, scale, x, N, I);
}
void rmsnorm(KernelTier tier, float* y, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  TRITTER_HWY_CALL(tier, Rmsnorm, y, x, g, N, n, eps);
}
void rmsnorm_forward_rows(KernelTier tier, float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n,
                          float eps) {
  TRITTER_HWY_CALL(tier, RmsnormForward, y, rstd, x, g, N, n, eps);
}
void rmsnorm_backward_rows(KernelTier tier, float* dx, float* dg, const float* dy, const float* x, const float* rstd,
                           const float* g, int64_t N, int64_t n) {
  TRITTER_HWY_CALL(tier, RmsnormBackward, dx, dg, dy, x, rstd, g, N, n);
}
void rmsnorm_quantize(KernelTier tier, int8_t* xq, float* scale, const float* x, const float* g, int64_t N,
                      int64_t n, float eps) {
  TRITTER_HWY_CALL(tier, RmsnormQuantize, xq, scale, x, g, N, n, eps);
}
void rope_apply(KernelTier tier, float* x, const float* cos, const float* sin, int64_t T, int64_t heads, int64_t d) {
  TRITTER_HWY_CALL(tier, RopeApply, x, cos, sin, T, heads, d);
}
void relu2(KernelTier tier, float* y, const float* x, int64_t n) { TRITTER_HWY_CALL(tier, Relu2, y, x, n); }
void relu2_glu(KernelTier tier, float* y, const float* gate, const float* up, int64_t n) {
  TRITTER_HWY_CALL(tier, Relu2Glu, y, gate, up, n);
}
void softmax_rows(KernelTier tier, float* x, int64_t rows, int64_t n) {
  TRITTER_HWY_CALL(tier, SoftmaxRows, x, rows, n);
}
void elu(KernelTier tier, float* y, const float* x, int64_t n, float alpha) { TRITTER_HWY_CALL(tier, Elu, y, x, n, alpha); }
void elu_backward(KernelTier tier, float* dx, const float* dy, const float* x, int64_t n, float alpha) {
  TRITTER_HWY_CALL(tier, EluBackward, dx, dy, x, n, alpha);
}
float softmax_row_lse(KernelTier tier, float* row, int64_t n) { TRITTER_HWY_CALL(tier, SoftmaxRowLse, row, n); }
void softmax_backward_row(KernelTier tier, float* s, float* ds, int64_t n, float lse, float delta) {
  TRITTER_HWY_CALL(tier, SoftmaxBackwardRow, s, ds, n, lse, delta);
}
void ternary_matmul_t_cols(KernelTier tier, float* dx, const float* dy, const TernaryMatrix& w, int64_t N,
                           int64_t cb_begin, int64_t cb_end) {
  TRITTER_HWY_CALL(tier, TernaryMatmulTCols, dx, dy, w, N, cb_begin, cb_end);
}

}  // namespace tritter::cpu
#endif  // HWY_ONCE
