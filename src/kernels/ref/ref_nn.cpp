// Reference forward/backward ops (kernels/nn.h contracts): one row at a time, sums in double, one rounding per
// output. What `--kernels ref` trains with.
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/quantize.h"
#include "kernels/ref/ref.h"

namespace tritter::ref {

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* g, int64_t N, int64_t n, float eps) {
  for (int64_t r = 0; r < N; ++r) {
    double ss = 0.0;
    for (int64_t j = 0; j < n; ++j) ss += static_cast<double>(x[r * n + j]) * x[r * n + j];
    const double rs = 1.0 / std::sqrt(ss / static_cast<double>(n) + static_cast<double>(eps));
    rstd[r] = static_cast<float>(rs);
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = static_cast<float>(x[r * n + j] * rs * g[j]);
  }
}

void rmsnorm_backward(float* dx, float* dg, const float* dy, const float* x, const float* rstd, const float* g,
                      int64_t N, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double s = 0.0;
    for (int64_t r = 0; r < N; ++r) s += static_cast<double>(dy[r * n + j]) * x[r * n + j] * rstd[r];
    dg[j] = static_cast<float>(dg[j] + s);
  }
  for (int64_t r = 0; r < N; ++r) {
    const double rs = rstd[r];
    double c = 0.0;  // mean(dn ⊙ n̂)
    for (int64_t j = 0; j < n; ++j) c += static_cast<double>(dy[r * n + j]) * g[j] * x[r * n + j] * rs;
    c /= static_cast<double>(n);
    for (int64_t j = 0; j < n; ++j) {
      const double dn = static_cast<double>(dy[r * n + j]) * g[j];
      dx[r * n + j] = static_cast<float>(dx[r * n + j] + rs * (dn - x[r * n + j] * rs * c));
    }
  }
}

void bitinput_set(const BitInput& in, const float* x, int64_t N, int64_t I, bool quant) {
  if (quant) {
    quantize_activations(in.q, in.s, x, N, I);
  } else {
    for (int64_t i = 0; i < N * I; ++i) in.f[i] = x[i];
  }
}

const float* bitinput_float(const BitInput& in, float* scratch, int64_t N, int64_t I, bool quant) {
  if (!quant) return in.f;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < I; ++k) scratch[n * I + k] = static_cast<float>(in.q[n * I + k]) / in.s[n];
  }
  return scratch;
}

void bitlinear_forward(float* y, const BitInput& in, const BitWeight& w, int64_t N) {
  if (w.quant) {
    ternary_matmul(y, in.q, in.s, w.matrix(), N);
  } else {
    linear_forward(y, in.f, w.w, N, w.I, w.O);
  }
}

void bitlinear_backward_dx(float* dx, const float* dy, const BitWeight& w, int64_t N, bool accumulate) {
  // dx = dy · W̃ with W̃ = Wq/σ read from the packed matrix (w.wt holds the same values), or the latent W.
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < w.I; ++i) {
      double s = 0.0;
      for (int64_t o = 0; o < w.O; ++o) {
        const double wi = w.quant ? ternary_matrix_at(w.matrix(), o, i) / static_cast<double>(w.sigma)
                                  : static_cast<double>(w.w[o * w.I + i]);
        s += static_cast<double>(dy[n * w.O + o]) * wi;
      }
      float& d = dx[n * w.I + i];
      d = static_cast<float>(accumulate ? d + s : s);
    }
  }
}

void bitlinear_backward_dw(float* dw, const float* dy, const float* xt, int64_t N, int64_t O, int64_t I) {
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t i = 0; i < I; ++i) {
      double s = 0.0;
      for (int64_t n = 0; n < N; ++n) s += static_cast<double>(dy[n * O + o]) * xt[n * I + i];
      dw[o * I + i] = static_cast<float>(dw[o * I + i] + s);
    }
  }
}

void linear_forward(float* y, const float* x, const float* w, int64_t N, int64_t I, int64_t O) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < O; ++o) {
      double s = 0.0;
      for (int64_t i = 0; i < I; ++i) s += static_cast<double>(x[n * I + i]) * w[o * I + i];
      y[n * O + o] = static_cast<float>(s);
    }
  }
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t N, int64_t I,
                     int64_t O, bool accumulate_dx) {
  if (dx) {
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < I; ++i) {
        double s = 0.0;
        for (int64_t o = 0; o < O; ++o) s += static_cast<double>(dy[n * O + o]) * w[o * I + i];
        float& d = dx[n * I + i];
        d = static_cast<float>(accumulate_dx ? d + s : s);
      }
    }
  }
  if (dw) bitlinear_backward_dw(dw, dy, x, N, O, I);
}

void add_into(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] + x[i];
}

void add(float* y, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

namespace {
// Rotation of each (u1, u2) pair by the angle whose cos and sin are given, sin negated for the backward.
void rope_rotate(float* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t heads, int64_t d,
                 double sign) {
  const int64_t half = d / 2;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        float* u = x + ((b * T + t) * heads + h) * d;
        for (int64_t j = 0; j < half; ++j) {
          const double c = cos[t * half + j], s = sign * sin[t * half + j];
          const double u1 = u[j], u2 = u[j + half];
          u[j] = static_cast<float>(u1 * c - u2 * s);
          u[j + half] = static_cast<float>(u2 * c + u1 * s);
        }
      }
    }
  }
}
}  // namespace

void rope_forward(float* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t heads, int64_t d) {
  rope_rotate(x, cos, sin, B, T, heads, d, 1.0);
}

void rope_backward(float* dx, const float* cos, const float* sin, int64_t B, int64_t T, int64_t heads, int64_t d) {
  rope_rotate(dx, cos, sin, B, T, heads, d, -1.0);
}

void relu2_backward(float* du, const float* ds, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double r = u[i] > 0.0f ? u[i] : 0.0;
    du[i] = static_cast<float>(static_cast<double>(ds[i]) * 2.0 * r);
  }
}

void relu2_glu_backward(float* dgate, float* dup, const float* ds, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double r = gate[i] > 0.0f ? gate[i] : 0.0;
    dgate[i] = static_cast<float>(static_cast<double>(ds[i]) * up[i] * 2.0 * r);
    dup[i] = static_cast<float>(static_cast<double>(ds[i]) * r * r);
  }
}

void embedding_forward(float* x, const float* E, const int32_t* ids, int64_t N, int64_t D, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    if (ids[n] < 0 || ids[n] >= V) throw_error("embedding: token ", n, ": found id ", ids[n], ", expected 0..", V - 1);
    for (int64_t j = 0; j < D; ++j) x[n * D + j] = E[static_cast<int64_t>(ids[n]) * D + j];
  }
}

void embedding_backward(float* dE, const float* dx, const int32_t* ids, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t j = 0; j < D; ++j) dE[static_cast<int64_t>(ids[n]) * D + j] += dx[n * D + j];
  }
}

double cross_entropy_forward_backward(float* dz, const float* z, const int32_t* targets, int64_t N, int64_t V,
                                      double z_loss, float grad_scale) {
  int64_t valid = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == -100) continue;
    if (targets[n] < 0 || targets[n] >= V) {
      throw_error("cross_entropy: target ", n, ": found ", targets[n], ", expected 0..", V - 1, " or -100");
    }
    ++valid;
  }
  const double nv = static_cast<double>(valid > 0 ? valid : 1);
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    const float* zr = z + n * V;
    if (targets[n] == -100) {
      if (dz) {
        for (int64_t j = 0; j < V; ++j) dz[n * V + j] = 0.0f;
      }
      continue;
    }
    double m = zr[0];
    for (int64_t j = 1; j < V; ++j) m = zr[j] > m ? zr[j] : m;
    double sum = 0.0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(zr[j] - m);
    const double lse = m + std::log(sum);
    total += (lse - zr[targets[n]]) + z_loss * lse * lse;
    if (dz) {
      for (int64_t j = 0; j < V; ++j) {
        const double p = std::exp(zr[j] - lse);
        const double onehot = j == targets[n] ? 1.0 : 0.0;
        dz[n * V + j] = static_cast<float>((p - onehot + 2.0 * z_loss * lse * p) / nv * grad_scale);
      }
    }
  }
  return total / nv;
}

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) {
  for (int64_t j = 0; j < n; ++j) {
    const double gj = g[j];
    const double mj = static_cast<double>(s.b1) * m[j] + (1.0 - static_cast<double>(s.b1)) * gj;
    const double vj = static_cast<double>(s.b2) * v[j] + (1.0 - static_cast<double>(s.b2)) * gj * gj;
    m[j] = static_cast<float>(mj);
    v[j] = static_cast<float>(vj);
    const double denom = std::sqrt(vj) / s.bc2_sqrt + s.eps;
    p[j] = static_cast<float>(static_cast<double>(p[j]) * s.decay - s.step_size * (mj / denom));
  }
}

}  // namespace tritter::ref
