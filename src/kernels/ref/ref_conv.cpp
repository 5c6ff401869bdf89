// Reference 1-D convolution ops: each output (or gradient) element summed straight from its definition, in double.
#include <cmath>
#include <vector>

#include "kernels/ref/ref.h"

namespace tritter::ref {

void conv1d_forward(float* y, const float* x, const float* w, const float* b, const Conv1dShape& s) {
  const int64_t To = s.conv_out();
  for (int64_t n = 0; n < s.B; ++n)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t t = 0; t < To; ++t) {
        double acc = b ? b[o] : 0.0;
        for (int64_t c = 0; c < s.Cin; ++c)
          for (int64_t k = 0; k < s.K; ++k)
            acc += static_cast<double>(w[(o * s.Cin + c) * s.K + k]) *
                   x[(n * s.Cin + c) * s.T + t * s.stride + k * s.dilation];
        y[(n * s.Cout + o) * To + t] = static_cast<float>(acc);
      }
}

void conv1d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                     const Conv1dShape& s) {
  const int64_t To = s.conv_out();
  // dx[n, c, i] = Σ over (o, k, t) with t·stride + k·dilation = i of dy[n, o, t]·w[o, c, k].
  if (dx) {
    for (int64_t n = 0; n < s.B; ++n)
      for (int64_t c = 0; c < s.Cin; ++c)
        for (int64_t i = 0; i < s.T; ++i) {
          double acc = 0.0;
          for (int64_t k = 0; k < s.K; ++k) {
            const int64_t r = i - k * s.dilation;
            if (r < 0 || r % s.stride != 0 || r / s.stride >= To) continue;
            for (int64_t o = 0; o < s.Cout; ++o)
              acc += static_cast<double>(dy[(n * s.Cout + o) * To + r / s.stride]) * w[(o * s.Cin + c) * s.K + k];
          }
          dx[(n * s.Cin + c) * s.T + i] += static_cast<float>(acc);
        }
  }
  if (dw) {
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t c = 0; c < s.Cin; ++c)
        for (int64_t k = 0; k < s.K; ++k) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.B; ++n)
            for (int64_t t = 0; t < To; ++t)
              acc += static_cast<double>(dy[(n * s.Cout + o) * To + t]) *
                     x[(n * s.Cin + c) * s.T + t * s.stride + k * s.dilation];
          dw[(o * s.Cin + c) * s.K + k] += static_cast<float>(acc);
        }
  }
  if (db) {
    for (int64_t o = 0; o < s.Cout; ++o) {
      double acc = 0.0;
      for (int64_t n = 0; n < s.B; ++n)
        for (int64_t t = 0; t < To; ++t) acc += dy[(n * s.Cout + o) * To + t];
      db[o] += static_cast<float>(acc);
    }
  }
}

void conv_transpose1d_forward(float* y, const float* x, const float* w, const float* b, const Conv1dShape& s) {
  const int64_t To = s.transpose_out();
  // y[n, o, i] = b[o] + Σ over (c, k, t) with t·stride + k·dilation = i of x[n, c, t]·w[c, o, k].
  for (int64_t n = 0; n < s.B; ++n)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t i = 0; i < To; ++i) {
        double acc = b ? b[o] : 0.0;
        for (int64_t k = 0; k < s.K; ++k) {
          const int64_t r = i - k * s.dilation;
          if (r < 0 || r % s.stride != 0 || r / s.stride >= s.T) continue;
          for (int64_t c = 0; c < s.Cin; ++c)
            acc += static_cast<double>(x[(n * s.Cin + c) * s.T + r / s.stride]) * w[(c * s.Cout + o) * s.K + k];
        }
        y[(n * s.Cout + o) * To + i] = static_cast<float>(acc);
      }
}

void conv_transpose1d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                               const Conv1dShape& s) {
  const int64_t To = s.transpose_out();
  auto dy_at = [&](int64_t n, int64_t o, int64_t t, int64_t k) {
    return static_cast<double>(dy[(n * s.Cout + o) * To + t * s.stride + k * s.dilation]);
  };
  if (dx) {
    for (int64_t n = 0; n < s.B; ++n)
      for (int64_t c = 0; c < s.Cin; ++c)
        for (int64_t t = 0; t < s.T; ++t) {
          double acc = 0.0;
          for (int64_t o = 0; o < s.Cout; ++o)
            for (int64_t k = 0; k < s.K; ++k) acc += dy_at(n, o, t, k) * w[(c * s.Cout + o) * s.K + k];
          dx[(n * s.Cin + c) * s.T + t] += static_cast<float>(acc);
        }
  }
  if (dw) {
    for (int64_t c = 0; c < s.Cin; ++c)
      for (int64_t o = 0; o < s.Cout; ++o)
        for (int64_t k = 0; k < s.K; ++k) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.B; ++n)
            for (int64_t t = 0; t < s.T; ++t) acc += dy_at(n, o, t, k) * x[(n * s.Cin + c) * s.T + t];
          dw[(c * s.Cout + o) * s.K + k] += static_cast<float>(acc);
        }
  }
  if (db) {
    for (int64_t o = 0; o < s.Cout; ++o) {
      double acc = 0.0;
      for (int64_t n = 0; n < s.B; ++n)
        for (int64_t i = 0; i < To; ++i) acc += dy[(n * s.Cout + o) * To + i];
      db[o] += static_cast<float>(acc);
    }
  }
}

namespace {
// The input index padded position i reads (PyTorch's zero and reflect padding), or −1 for a zero.
int64_t padded_source(int64_t i, int64_t T, int64_t left, PadMode mode) {
  int64_t j = i - left;
  if (j >= 0 && j < T) return j;
  if (mode == PadMode::Zero) return -1;
  if (j < 0) j = -j;            // x[−1] = x[1], x[−2] = x[2], ...
  if (j >= T) j = 2 * T - 2 - j;  // x[T] = x[T−2], ...
  return j;
}
}  // namespace

void pad1d_forward(float* y, const float* x, int64_t rows, int64_t T, int64_t left, int64_t right, PadMode mode) {
  const int64_t To = left + T + right;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < To; ++i) {
      const int64_t j = padded_source(i, T, left, mode);
      y[r * To + i] = j < 0 ? 0.0f : x[r * T + j];
    }
}

void pad1d_backward(float* dx, const float* dy, int64_t rows, int64_t T, int64_t left, int64_t right, PadMode mode) {
  const int64_t To = left + T + right;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < T; ++j) {
      double acc = 0.0;
      for (int64_t i = 0; i < To; ++i)
        if (padded_source(i, T, left, mode) == j) acc += dy[r * To + i];
      dx[r * T + j] += static_cast<float>(acc);
    }
}

void elu_forward(float* y, const float* x, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] > 0.0f ? x[i] : static_cast<float>(alpha * std::expm1(static_cast<double>(x[i])));
}

void elu_backward(float* dx, const float* dy, const float* x, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] = x[i] > 0.0f ? dy[i] : static_cast<float>(dy[i] * (alpha * std::exp(static_cast<double>(x[i]))));
}

namespace {
double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
}  // namespace

void lstm_forward(float* y, float* gates, float* c, const float* x, const float* w_ih, const float* w_hh,
                  const float* b_ih, const float* b_hh, int64_t B, int64_t T, int64_t I, int64_t H) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      float* row = gates + (b * T + t) * 4 * H;
      for (int64_t q = 0; q < 4 * H; ++q) {
        double a = static_cast<double>(b_ih[q]) + b_hh[q];
        for (int64_t k = 0; k < I; ++k) a += static_cast<double>(w_ih[q * I + k]) * x[(b * T + t) * I + k];
        if (t > 0)
          for (int64_t k = 0; k < H; ++k) a += static_cast<double>(w_hh[q * H + k]) * y[(b * T + t - 1) * H + k];
        row[q] = static_cast<float>(q / H == 2 ? std::tanh(a) : sigmoid(a));
      }
      for (int64_t j = 0; j < H; ++j) {
        const double cprev = t > 0 ? c[(b * T + t - 1) * H + j] : 0.0;
        const double cc = static_cast<double>(row[H + j]) * cprev + static_cast<double>(row[j]) * row[2 * H + j];
        c[(b * T + t) * H + j] = static_cast<float>(cc);
        y[(b * T + t) * H + j] = static_cast<float>(row[3 * H + j] * std::tanh(cc));
      }
    }
}

void lstm_backward(float* dx, float* dw_ih, float* dw_hh, float* db, const float* dy, const float* x, const float* y,
                   const float* gates, const float* c, const float* w_ih, const float* w_hh, int64_t B, int64_t T,
                   int64_t I, int64_t H) {
  std::vector<double> dpre(static_cast<size_t>(B * T * 4 * H));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> dh_next(static_cast<size_t>(H), 0.0), dc_next(static_cast<size_t>(H), 0.0);
    for (int64_t t = T - 1; t >= 0; --t) {
      const float* g4 = gates + (b * T + t) * 4 * H;
      double* d4 = dpre.data() + (b * T + t) * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const double i = g4[j], f = g4[H + j], g = g4[2 * H + j], o = g4[3 * H + j];
        const double tc = std::tanh(static_cast<double>(c[(b * T + t) * H + j]));
        const double cprev = t > 0 ? c[(b * T + t - 1) * H + j] : 0.0;
        const double dh = dy[(b * T + t) * H + j] + dh_next[static_cast<size_t>(j)];
        const double dcc = dh * o * (1 - tc * tc) + dc_next[static_cast<size_t>(j)];
        d4[j] = dcc * g * i * (1 - i);
        d4[H + j] = dcc * cprev * f * (1 - f);
        d4[2 * H + j] = dcc * i * (1 - g * g);
        d4[3 * H + j] = dh * tc * o * (1 - o);
        dc_next[static_cast<size_t>(j)] = dcc * f;
      }
      for (int64_t k = 0; k < H; ++k) {  // dh_{t−1} = Σ_q dpre_t[q]·w_hh[q, k]
        double a = 0.0;
        for (int64_t q = 0; q < 4 * H; ++q) a += d4[q] * w_hh[q * H + k];
        dh_next[static_cast<size_t>(k)] = a;
      }
    }
  }
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const double* d4 = dpre.data() + bt * 4 * H;
    const int64_t t = bt % T;
    for (int64_t q = 0; q < 4 * H; ++q) {
      if (db) db[q] += static_cast<float>(d4[q]);
      if (dw_ih)
        for (int64_t k = 0; k < I; ++k) dw_ih[q * I + k] += static_cast<float>(d4[q] * x[bt * I + k]);
      if (dw_hh && t > 0)
        for (int64_t k = 0; k < H; ++k) dw_hh[q * H + k] += static_cast<float>(d4[q] * y[(bt - 1) * H + k]);
    }
    if (dx)
      for (int64_t k = 0; k < I; ++k) {
        double a = 0.0;
        for (int64_t q = 0; q < 4 * H; ++q) a += d4[q] * w_ih[q * I + k];
        dx[bt * I + k] += static_cast<float>(a);
      }
  }
}

void weight_norm_forward(float* w, const float* g, const float* v, int64_t O, int64_t n) {
  for (int64_t o = 0; o < O; ++o) {
    double ss = 0.0;
    for (int64_t k = 0; k < n; ++k) ss += static_cast<double>(v[o * n + k]) * v[o * n + k];
    for (int64_t k = 0; k < n; ++k) w[o * n + k] = static_cast<float>(g[o] * v[o * n + k] / std::sqrt(ss));
  }
}

void weight_norm_backward(float* dg, float* dv, const float* dw, const float* g, const float* v, int64_t O, int64_t n) {
  for (int64_t o = 0; o < O; ++o) {
    double ss = 0.0, dot = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      ss += static_cast<double>(v[o * n + k]) * v[o * n + k];
      dot += static_cast<double>(dw[o * n + k]) * v[o * n + k];
    }
    const double norm = std::sqrt(ss), d = dot / norm;
    if (dg) dg[o] += static_cast<float>(d);
    if (dv)
      for (int64_t k = 0; k < n; ++k) dv[o * n + k] += static_cast<float>(g[o] / norm * (dw[o * n + k] - d * v[o * n + k] / norm));
  }
}

void vq_nearest(int32_t* ids, const float* x, const float* table, const float* table_sq, int64_t N, int64_t D,
                int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    int64_t best = 0;
    double best_score = 0;
    for (int64_t v = 0; v < V; ++v) {
      double dot = 0.0;
      for (int64_t k = 0; k < D; ++k) dot += static_cast<double>(x[n * D + k]) * table[v * D + k];
      const double sc = 2.0 * dot - table_sq[v];
      if (v == 0 || sc > best_score) best_score = sc, best = v;
    }
    ids[n] = static_cast<int32_t>(best);
  }
}

}  // namespace tritter::ref
