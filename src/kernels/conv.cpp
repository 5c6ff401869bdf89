// The codec ops (kernels/conv.h): convolutions as im2col / col2im around gemm_f32, batch elements over the threads;
// the LSTM's input products for all steps in one gemm and each step's recurrent product in another.
#include "kernels/conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/ref/ref.h"

namespace tritter {

namespace {

void check_shape(const Conv1dShape& s, const char* op, bool transposed) {
  if (s.B < 1 || s.Cin < 1 || s.Cout < 1 || s.T < 1 || s.K < 1 || s.stride < 1 || s.dilation < 1) {
    throw_error(op, ": shape: found B=", s.B, " Cin=", s.Cin, " Cout=", s.Cout, " T=", s.T, " K=", s.K, " stride=",
                s.stride, " dilation=", s.dilation, ", expected every one >= 1");
  }
  if (!transposed && s.conv_out() < 1) {
    throw_error(op, ": input length: found T=", s.T, ", expected at least the receptive field dilation*(K-1)+1 = ",
                s.dilation * (s.K - 1) + 1);
  }
}

// Element-wise passes (im2col, col2im, padding, ELU) smaller than this run on one thread: a team's start costs
// more than they do.
constexpr int64_t kParallelElems = 1 << 16;

// Output steps per product: the (C·K, steps) im2col block stays a few MB (in cache, allocated once) however long
// the signal, where one block for all steps of a second of 24 kHz audio was ~100 MB.
constexpr int64_t kConvSteps = 2048;

// cols (C·K, n) with cols[(c·K + k)·n + t] = x[c·len + (first + t)·stride + k·dilation]: the input window of each
// output step first .. first + n − 1.
void im2col(int threads, float* cols, const float* x, int64_t C, int64_t len, int64_t K, int64_t n, int64_t stride,
            int64_t dilation, int64_t first = 0) {
#pragma omp parallel for num_threads(threads) schedule(static) if (C * K * n >= kParallelElems)
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t k = 0; k < K; ++k) {
      const float* src = x + c * len + first * stride + k * dilation;
      float* dst = cols + (c * K + k) * n;
      if (stride == 1) {
        std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      } else {
        for (int64_t t = 0; t < n; ++t) dst[t] = src[t * stride];
      }
    }
  }
}

// The adjoint of im2col: x[c·len + (first + t)·stride + k·dilation] += cols[(c·K + k)·n + t].
void col2im_add(int threads, float* x, const float* cols, int64_t C, int64_t len, int64_t K, int64_t n,
                int64_t stride, int64_t dilation, int64_t first = 0) {
#pragma omp parallel for num_threads(threads) schedule(static) if (C * K * n >= kParallelElems)
  for (int64_t c = 0; c < C; ++c) {  // channels write disjoint rows of x
    for (int64_t k = 0; k < K; ++k) {
      float* dst = x + c * len + first * stride + k * dilation;
      const float* src = cols + (c * K + k) * n;
      for (int64_t t = 0; t < n; ++t) dst[t * stride] += src[t];
    }
  }
}

void add_bias(float* y, const float* b, int64_t C, int64_t n) {
  if (!b) return;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < n; ++t) y[c * n + t] += b[c];
}

// db (n) += the column sums of m (rows, n).
void add_row_sums_t(float* db, const float* m, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < n; ++k) db[k] += m[r * n + k];
}

// ‖v‖ of one weight-norm row (in double); a zero row has no direction and is an Error.
float row_norm(const float* v, int64_t n, int64_t row) {
  double ss = 0.0;
  for (int64_t k = 0; k < n; ++k) ss += static_cast<double>(v[k]) * v[k];
  if (!(ss > 0.0)) throw_error("weight_norm: row ", row, " of v: found norm ", std::sqrt(ss), ", expected > 0");
  return static_cast<float>(std::sqrt(ss));
}

void add_row_sums(float* db, const float* dy, int64_t C, int64_t n) {
  if (!db) return;
  for (int64_t c = 0; c < C; ++c) {
    float s = 0.0f;
    for (int64_t t = 0; t < n; ++t) s += dy[c * n + t];
    db[c] += s;
  }
}

// Batch elements over the threads when there are at least two of each: whole elements on one thread each
// (OpenBLAS inside an OpenMP region runs serially). A codec training step on two cores: 1.08× one core's speed when
// each small sgemm was split over the threads, 1.3× with whole elements. Returns the number of workers W.
int batch_workers(const Context& ctx, int64_t B) {
  return ctx.threads >= 2 && B >= 2 ? static_cast<int>(std::min<int64_t>(ctx.threads, B)) : 1;
}

// body(w, first, last, inner): worker w of `workers` runs batch elements [B·w/W, B·(w+1)/W) in order; inner is the
// thread count its element-wise passes may use (1 when the workers share the threads).
template <typename Body>
void for_batch_workers(const Context& ctx, int64_t B, int workers, const Body& body) {
  const int inner = workers > 1 ? 1 : std::max(1, ctx.threads);
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    const int w = workers > 1 ? omp_get_thread_num() : 0;
    body(w, B * w / workers, B * (w + 1) / workers, inner);
  }
}

// A backward's dw (n_w) and db (n_b) when several workers share them: each worker sums its elements apart, and
// reduce() adds the partials in worker order (one fixed order for a given thread count). With one worker, dw and
// db are written directly. Null dw or db: none kept.
struct GradPartials {
  GradPartials(int workers, float* dw, int64_t n_w, float* db, int64_t n_b)
      : workers_(workers), dw_(dw), db_(db), n_w_(n_w), n_b_(n_b),
        dw_part_(workers > 1 && dw ? static_cast<size_t>(workers * n_w) : 0, 0.0f),
        db_part_(workers > 1 && db ? static_cast<size_t>(workers * n_b) : 0, 0.0f) {}
  float* dw(int w) { return dw_part_.empty() ? dw_ : dw_part_.data() + w * n_w_; }
  float* db(int w) { return db_part_.empty() ? db_ : db_part_.data() + w * n_b_; }
  void reduce() {
    add(dw_, dw_part_, n_w_);
    add(db_, db_part_, n_b_);
  }

 private:
  void add(float* dst, const std::vector<float>& part, int64_t n) const {
    if (part.empty()) return;
    for (int w = 0; w < workers_; ++w)
      for (int64_t i = 0; i < n; ++i) dst[i] += part[static_cast<size_t>(w * n + i)];
  }
  int workers_;
  float *dw_, *db_;
  int64_t n_w_, n_b_;
  std::vector<float> dw_part_, db_part_;
};

}  // namespace

void conv1d_forward(const Context& ctx, float* y, const float* x, const float* w, const float* b,
                    const Conv1dShape& s) {
  check_shape(s, "conv1d", false);
  if (ctx.kernels == KernelTier::Reference) return ref::conv1d_forward(y, x, w, b, s);
  const int64_t To = s.conv_out(), CK = s.Cin * s.K;
  const bool direct = s.K == 1 && s.stride == 1;  // a pointwise conv reads x as its own cols
  const int workers = batch_workers(ctx, s.B);
  for_batch_workers(ctx, s.B, workers, [&](int /*worker*/, int64_t first, int64_t last, int inner) {
    std::vector<float> cols(direct ? 0 : static_cast<size_t>(CK * std::min(To, kConvSteps)));
    for (int64_t b0 = first; b0 < last; ++b0) {
      const float* xb = x + b0 * s.Cin * s.T;
      float* yb = y + b0 * s.Cout * To;
      if (direct) {
        gemm_f32(ctx, yb, w, xb, s.Cout, To, CK, false, false, 1.0f, 0.0f);  // (Cout, T')
      } else {
        for (int64_t t0 = 0; t0 < To; t0 += kConvSteps) {
          const int64_t n = std::min(kConvSteps, To - t0);
          im2col(inner, cols.data(), xb, s.Cin, s.T, s.K, n, s.stride, s.dilation, t0);
          gemm_f32(ctx, yb + t0, w, cols.data(), s.Cout, n, CK, false, false, 1.0f, 0.0f, CK, n, To);  // (Cout, n)
        }
      }
      add_bias(yb, b, s.Cout, To);
    }
  });
}

void conv1d_backward(const Context& ctx, float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv1dShape& s) {
  check_shape(s, "conv1d backward", false);
  if (ctx.kernels == KernelTier::Reference) return ref::conv1d_backward(dx, dw, db, dy, x, w, s);
  const int64_t To = s.conv_out(), CK = s.Cin * s.K;
  const int workers = batch_workers(ctx, s.B);
  GradPartials grads(workers, dw, s.Cout * CK, db, s.Cout);
  for_batch_workers(ctx, s.B, workers, [&](int w_id, int64_t first, int64_t last, int inner) {
    float *dw_w = grads.dw(w_id), *db_w = grads.db(w_id);
    std::vector<float> cols(static_cast<size_t>(CK * To));
    for (int64_t b0 = first; b0 < last; ++b0) {
      const float* xb = x + b0 * s.Cin * s.T;
      const float* dyb = dy + b0 * s.Cout * To;
      if (dw) {
        im2col(inner, cols.data(), xb, s.Cin, s.T, s.K, To, s.stride, s.dilation);
        gemm_f32(ctx, dw_w, dyb, cols.data(), s.Cout, CK, To, false, true, 1.0f, 1.0f);  // (Cout, Cin·K) += dy·colsᵀ
      }
      add_row_sums(db_w, dyb, s.Cout, To);
      if (dx) {
        gemm_f32(ctx, cols.data(), w, dyb, CK, To, s.Cout, true, false, 1.0f, 0.0f);  // dcols (Cin·K, T') = wᵀ·dy
        col2im_add(inner, dx + b0 * s.Cin * s.T, cols.data(), s.Cin, s.T, s.K, To, s.stride, s.dilation);
      }
    }
  });
  grads.reduce();
}

void conv_transpose1d_forward(const Context& ctx, float* y, const float* x, const float* w, const float* b,
                              const Conv1dShape& s) {
  check_shape(s, "conv_transpose1d", true);
  if (ctx.kernels == KernelTier::Reference) return ref::conv_transpose1d_forward(y, x, w, b, s);
  const int64_t To = s.transpose_out(), OK = s.Cout * s.K;
  const int workers = batch_workers(ctx, s.B);
  for_batch_workers(ctx, s.B, workers, [&](int /*worker*/, int64_t first, int64_t last, int inner) {
    std::vector<float> cols(static_cast<size_t>(OK * std::min(s.T, kConvSteps)));
    for (int64_t b0 = first; b0 < last; ++b0) {
      float* yb = y + b0 * s.Cout * To;
      const float* xb = x + b0 * s.Cin * s.T;
      std::memset(yb, 0, static_cast<size_t>(s.Cout * To) * sizeof(float));
      for (int64_t t0 = 0; t0 < s.T; t0 += kConvSteps) {  // input steps t0 .. t0 + n − 1 scattered into y
        const int64_t n = std::min(kConvSteps, s.T - t0);
        gemm_f32(ctx, cols.data(), w, xb + t0, OK, n, s.Cin, true, false, 1.0f, 0.0f, OK, s.T, n);  // wᵀ·x (OK, n)
        col2im_add(inner, yb, cols.data(), s.Cout, To, s.K, n, s.stride, s.dilation, t0);
      }
      add_bias(yb, b, s.Cout, To);
    }
  });
}

void conv_transpose1d_backward(const Context& ctx, float* dx, float* dw, float* db, const float* dy, const float* x,
                               const float* w, const Conv1dShape& s) {
  check_shape(s, "conv_transpose1d backward", true);
  if (ctx.kernels == KernelTier::Reference) return ref::conv_transpose1d_backward(dx, dw, db, dy, x, w, s);
  const int64_t To = s.transpose_out(), OK = s.Cout * s.K;
  const int workers = batch_workers(ctx, s.B);
  GradPartials grads(workers, dw, s.Cin * OK, db, s.Cout);
  for_batch_workers(ctx, s.B, workers, [&](int w_id, int64_t first, int64_t last, int inner) {
    float *dw_w = grads.dw(w_id), *db_w = grads.db(w_id);
    std::vector<float> cols(static_cast<size_t>(OK * s.T));
    for (int64_t b0 = first; b0 < last; ++b0) {
      const float* dyb = dy + b0 * s.Cout * To;
      im2col(inner, cols.data(), dyb, s.Cout, To, s.K, s.T, s.stride, s.dilation);  // dcols (Cout·K, T)
      if (dx) gemm_f32(ctx, dx + b0 * s.Cin * s.T, w, cols.data(), s.Cin, s.T, OK, false, false, 1.0f, 1.0f);
      if (dw) gemm_f32(ctx, dw_w, x + b0 * s.Cin * s.T, cols.data(), s.Cin, OK, s.T, false, true, 1.0f, 1.0f);
      add_row_sums(db_w, dyb, s.Cout, To);
    }
  });
  grads.reduce();
}

namespace {
void check_pad(int64_t rows, int64_t T, int64_t left, int64_t right, PadMode mode) {
  if (rows < 0 || T < 1 || left < 0 || right < 0) {
    throw_error("pad1d: shape: found rows=", rows, " T=", T, " left=", left, " right=", right,
                ", expected rows >= 0, T >= 1, left and right >= 0");
  }
  if (mode == PadMode::Reflect && (left >= T || right >= T)) {
    throw_error("pad1d: reflect padding: found left=", left, " right=", right, " for T=", T,
                ", expected both < T (a reflection repeats no edge sample)");
  }
}
// The input index output position i (0 ≤ i < left + T + right) reads, or −1 for a zero.
inline int64_t pad_source(int64_t i, int64_t T, int64_t left, PadMode mode) {
  const int64_t j = i - left;
  if (j >= 0 && j < T) return j;
  if (mode == PadMode::Zero) return -1;
  return j < 0 ? -j : 2 * (T - 1) - j;
}
}  // namespace

void pad1d_forward(const Context& ctx, float* y, const float* x, int64_t rows, int64_t T, int64_t left, int64_t right,
                   PadMode mode) {
  check_pad(rows, T, left, right, mode);
  if (ctx.kernels == KernelTier::Reference) return ref::pad1d_forward(y, x, rows, T, left, right, mode);
  const int64_t To = left + T + right;
#pragma omp parallel for num_threads(std::max(1, ctx.threads)) schedule(static) if (rows * To >= kParallelElems)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * T;
    float* yr = y + r * To;
    for (int64_t i = 0; i < left; ++i) yr[i] = mode == PadMode::Zero ? 0.0f : xr[pad_source(i, T, left, mode)];
    std::memcpy(yr + left, xr, static_cast<size_t>(T) * sizeof(float));
    for (int64_t i = left + T; i < To; ++i) yr[i] = mode == PadMode::Zero ? 0.0f : xr[pad_source(i, T, left, mode)];
  }
}

void pad1d_backward(const Context& ctx, float* dx, const float* dy, int64_t rows, int64_t T, int64_t left,
                    int64_t right, PadMode mode) {
  check_pad(rows, T, left, right, mode);
  if (ctx.kernels == KernelTier::Reference) return ref::pad1d_backward(dx, dy, rows, T, left, right, mode);
  const int64_t To = left + T + right;
  for (int64_t r = 0; r < rows; ++r) {
    float* dxr = dx + r * T;
    const float* dyr = dy + r * To;
    for (int64_t j = 0; j < T; ++j) dxr[j] += dyr[left + j];
    if (mode == PadMode::Zero) continue;
    for (int64_t i = 0; i < left; ++i) dxr[pad_source(i, T, left, mode)] += dyr[i];
    for (int64_t i = left + T; i < To; ++i) dxr[pad_source(i, T, left, mode)] += dyr[i];
  }
}

namespace {
// f(lo, hi) over [0, n) in equal ranges over the threads, each ending on a multiple of 64, so each element takes the
// same path (vector body or scalar tail) whatever the thread count: the bits do not depend on it.
template <typename F>
void for_aligned_ranges(const Context& ctx, int64_t n, const F& f) {
  const int threads = n >= kParallelElems ? std::max(1, ctx.threads) : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int64_t lo = (n * t / threads) & ~int64_t{63}, hi = t + 1 == threads ? n : (n * (t + 1) / threads) & ~int64_t{63};
    f(lo, hi);
  }
}
}  // namespace

void elu_forward(const Context& ctx, float* y, const float* x, int64_t n, float alpha) {
  if (ctx.kernels == KernelTier::Reference) return ref::elu_forward(y, x, n, alpha);
  const KernelTier tier = ternary_kernel_tier(ctx);  // Highway's vector expm1
  for_aligned_ranges(ctx, n, [&](int64_t lo, int64_t hi) { cpu::elu(tier, y + lo, x + lo, hi - lo, alpha); });
}

void elu_backward(const Context& ctx, float* dx, const float* dy, const float* x, int64_t n, float alpha) {
  if (ctx.kernels == KernelTier::Reference) return ref::elu_backward(dx, dy, x, n, alpha);
  const KernelTier tier = ternary_kernel_tier(ctx);
  for_aligned_ranges(ctx, n, [&](int64_t lo, int64_t hi) { cpu::elu_backward(tier, dx + lo, dy + lo, x + lo, hi - lo, alpha); });
}

namespace {
inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }
void check_lstm(int64_t B, int64_t T, int64_t I, int64_t H) {
  if (B < 1 || T < 1 || I < 1 || H < 1) {
    throw_error("lstm: shape: found B=", B, " T=", T, " I=", I, " H=", H, ", expected every one >= 1");
  }
}
}  // namespace

void lstm_forward(const Context& ctx, float* y, float* gates, float* c, const float* x, const float* w_ih,
                  const float* w_hh, const float* b_ih, const float* b_hh, int64_t B, int64_t T, int64_t I,
                  int64_t H) {
  check_lstm(B, T, I, H);
  if (ctx.kernels == KernelTier::Reference) return ref::lstm_forward(y, gates, c, x, w_ih, w_hh, b_ih, b_hh, B, T, I, H);
  const int64_t G = 4 * H;
  gemm_f32(ctx, gates, x, w_ih, B * T, G, I, false, true, 1.0f, 0.0f);  // (B·T, 4H) = x·w_ihᵀ, every step at once
  for (int64_t t = 0; t < T; ++t) {
    // += h_{t−1}·w_hhᵀ for the B rows of step t (row stride T·4H in gates, T·H in y)
    if (t > 0) gemm_f32(ctx, gates + t * G, y + (t - 1) * H, w_hh, B, G, H, false, true, 1.0f, 1.0f, T * H, H, T * G);
    for (int64_t b = 0; b < B; ++b) {
      float* row = gates + (b * T + t) * G;
      float* ct = c + (b * T + t) * H;
      const float* cprev = t > 0 ? c + (b * T + t - 1) * H : nullptr;
      float* ht = y + (b * T + t) * H;
      for (int64_t j = 0; j < H; ++j) {
        const float i = sigmoid(row[j] + b_ih[j] + b_hh[j]);
        const float f = sigmoid(row[H + j] + b_ih[H + j] + b_hh[H + j]);
        const float g = std::tanh(row[2 * H + j] + b_ih[2 * H + j] + b_hh[2 * H + j]);
        const float o = sigmoid(row[3 * H + j] + b_ih[3 * H + j] + b_hh[3 * H + j]);
        const float cc = (cprev ? f * cprev[j] : 0.0f) + i * g;
        row[j] = i, row[H + j] = f, row[2 * H + j] = g, row[3 * H + j] = o;
        ct[j] = cc;
        ht[j] = o * std::tanh(cc);
      }
    }
  }
}

void lstm_backward(const Context& ctx, float* dx, float* dw_ih, float* dw_hh, float* db, const float* dy,
                   const float* x, const float* y, const float* gates, const float* c, const float* w_ih,
                   const float* w_hh, int64_t B, int64_t T, int64_t I, int64_t H) {
  check_lstm(B, T, I, H);
  if (ctx.kernels == KernelTier::Reference) {
    return ref::lstm_backward(dx, dw_ih, dw_hh, db, dy, x, y, gates, c, w_ih, w_hh, B, T, I, H);
  }
  const int64_t G = 4 * H;
  std::vector<float> dpre(static_cast<size_t>(B * T * G));  // gradients of the gates' pre-activations (B, T, 4H)
  std::vector<float> dh(static_cast<size_t>(B * H), 0.0f), dc(static_cast<size_t>(B * H), 0.0f);
  for (int64_t t = T - 1; t >= 0; --t) {
    // dh_t from step t+1: dpre_{t+1}·w_hh (B, H)
    if (t < T - 1) gemm_f32(ctx, dh.data(), dpre.data() + (t + 1) * G, w_hh, B, H, G, false, false, 1.0f, 0.0f, T * G, H, H);
    for (int64_t b = 0; b < B; ++b) {
      const float* row = gates + (b * T + t) * G;
      float* drow = dpre.data() + (b * T + t) * G;
      const float* cprev = t > 0 ? c + (b * T + t - 1) * H : nullptr;
      for (int64_t j = 0; j < H; ++j) {
        const float i = row[j], f = row[H + j], g = row[2 * H + j], o = row[3 * H + j];
        const float tc = std::tanh(c[(b * T + t) * H + j]);
        const float dht = dy[(b * T + t) * H + j] + dh[static_cast<size_t>(b * H + j)];
        const float dct = dht * o * (1.0f - tc * tc) + dc[static_cast<size_t>(b * H + j)];
        dc[static_cast<size_t>(b * H + j)] = dct * f;
        drow[j] = dct * g * i * (1.0f - i);
        drow[H + j] = (cprev ? dct * cprev[j] : 0.0f) * f * (1.0f - f);
        drow[2 * H + j] = dct * i * (1.0f - g * g);
        drow[3 * H + j] = dht * tc * o * (1.0f - o);
      }
    }
  }
  if (dw_hh && T > 1) {
    for (int64_t b = 0; b < B; ++b)  // Σ_{t≥1} dpre_tᵀ·h_{t−1}: steps 1..T−1 of one sequence in one product
      gemm_f32(ctx, dw_hh, dpre.data() + (b * T + 1) * G, y + b * T * H, G, H, T - 1, true, false, 1.0f, 1.0f, G, H, H);
  }
  if (dw_ih) gemm_f32(ctx, dw_ih, dpre.data(), x, G, I, B * T, true, false, 1.0f, 1.0f);
  if (dx) gemm_f32(ctx, dx, dpre.data(), w_ih, B * T, I, G, false, false, 1.0f, 1.0f);
  if (db) add_row_sums_t(db, dpre.data(), B * T, G);
}

void weight_norm_forward(const Context& ctx, float* w, const float* g, const float* v, int64_t O, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::weight_norm_forward(w, g, v, O, n);
  for (int64_t o = 0; o < O; ++o) {
    const float* vo = v + o * n;
    const float norm = row_norm(vo, n, o);
    const float scale = g[o] / norm;
    for (int64_t k = 0; k < n; ++k) w[o * n + k] = vo[k] * scale;
  }
}

void weight_norm_backward(const Context& ctx, float* dg, float* dv, const float* dw, const float* g, const float* v,
                          int64_t O, int64_t n) {
  if (ctx.kernels == KernelTier::Reference) return ref::weight_norm_backward(dg, dv, dw, g, v, O, n);
  for (int64_t o = 0; o < O; ++o) {
    const float* vo = v + o * n;
    const float* dwo = dw + o * n;
    const float norm = row_norm(vo, n, o);
    double dot = 0.0;  // dw·v̂
    for (int64_t k = 0; k < n; ++k) dot += static_cast<double>(dwo[k]) * vo[k];
    const float d = static_cast<float>(dot / norm);
    if (dg) dg[o] += d;
    if (dv) {
      const float a = g[o] / norm, b = d / norm;
      for (int64_t k = 0; k < n; ++k) dv[o * n + k] += a * (dwo[k] - b * vo[k]);
    }
  }
}

void vq_nearest(const Context& ctx, int32_t* ids, const float* x, const float* table, const float* table_sq, int64_t N,
                int64_t D, int64_t V) {
  if (N < 0 || D < 1 || V < 1) throw_error("vq_nearest: shape: found N=", N, " D=", D, " V=", V, ", expected D, V >= 1");
  if (ctx.kernels == KernelTier::Reference) return ref::vq_nearest(ids, x, table, table_sq, N, D, V);
  constexpr int64_t kRows = 64;  // rows of x per product: the (rows, V) scores stay small
  std::vector<float> scores(static_cast<size_t>(kRows * V));
  for (int64_t r0 = 0; r0 < N; r0 += kRows) {
    const int64_t rows = std::min(kRows, N - r0);
    gemm_f32(ctx, scores.data(), x + r0 * D, table, rows, V, D, false, true, 2.0f, 0.0f);  // 2·x·tableᵀ
    for (int64_t r = 0; r < rows; ++r) {
      const float* sr = scores.data() + r * V;
      int64_t best = 0;
      float best_score = sr[0] - table_sq[0];
      for (int64_t v = 1; v < V; ++v) {
        const float sc = sr[v] - table_sq[v];
        if (sc > best_score) best_score = sc, best = v;
      }
      ids[r0 + r] = static_cast<int32_t>(best);
    }
  }
}

}  // namespace tritter
