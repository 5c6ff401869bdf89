// SEANet stacks forward and backward (audio/seanet.h) over kernels/conv.h. The padding rules are transformers':
// a Conv1d pads causally (all of k_eff − stride on the left, reflect mode) plus the right padding that makes the last
// frame whole; a ConvTranspose1d runs in full and trims k − stride samples, ⌈·trim_right_ratio⌉ of them on the right.
#include "audio/seanet.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/conv.h"

namespace tritter::audio {

namespace {

using Tape = SeanetTape;

void add_into(std::vector<float>& y, const std::vector<float>& x) {
  for (size_t k = 0; k < y.size(); ++k) y[k] += x[k];
}

std::vector<float> elu(const Context& ctx, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  elu_forward(ctx, y.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
  return y;
}

// dy → dx through an ELU of input x (in place on dy).
void elu_back(const Context& ctx, std::vector<float>& dy, const std::vector<float>& x) {
  elu_backward(ctx, dy.data(), dy.data(), x.data(), static_cast<int64_t>(x.size()), 1.0f);
}

// Rows of length `from` cut (or zero-extended) to length `to`, starting at `offset` of each source row.
std::vector<float> reslice_rows(const std::vector<float>& x, int64_t rows, int64_t from, int64_t offset, int64_t to) {
  std::vector<float> y(static_cast<size_t>(rows * to), 0.0f);
  const int64_t n = std::min(to, from - offset);
  for (int64_t r = 0; r < rows; ++r)
    std::copy(x.begin() + r * from + offset, x.begin() + r * from + offset + n, y.begin() + r * to);
  return y;
}

std::vector<float> conv_forward(const Context& ctx, const SeanetConv& c, const std::vector<float>& x, int64_t B,
                                int64_t* len, Tape::Conv* keep) {
  const int64_t L = *len, keff = (c.k - 1) * c.dilation + 1, pad_total = keff - c.stride;
  const double n_frames = static_cast<double>(L - keff + pad_total) / static_cast<double>(c.stride) + 1.0;
  const int64_t ideal = (static_cast<int64_t>(std::ceil(n_frames)) - 1) * c.stride + (keff - pad_total);
  const int64_t left = pad_total, right = ideal - L, rows = B * c.cin;
  // Reflect padding needs the signal longer than the padding: transformers zero-extends a short input first and
  // drops those zeros after padding. Training refuses it (its gradient would need the extension's bookkeeping).
  const int64_t max_pad = std::max(left, right);
  const int64_t extra = L <= max_pad ? max_pad - L + 1 : 0;
  if (extra > 0 && keep) {
    throw_error("audio codec training: layer '", c.name, "' got an input of ", L, " steps, expected more than its ",
                max_pad, " steps of padding (use longer clips)");
  }
  const std::vector<float> src = extra > 0 ? reslice_rows(x, rows, L, 0, L + extra) : std::vector<float>();
  const int64_t Ls = L + extra, Lp_full = left + Ls + right;
  std::vector<float> padded(static_cast<size_t>(rows * Lp_full));
  pad1d_forward(ctx, padded.data(), extra > 0 ? src.data() : x.data(), rows, Ls, left, right, PadMode::Reflect);
  const int64_t Lp = Lp_full - extra;
  if (extra > 0) padded = reslice_rows(padded, rows, Lp_full, 0, Lp);  // drop the zero-extension's tail
  const Conv1dShape s{.B = B, .Cin = c.cin, .Cout = c.cout, .T = Lp, .K = c.k, .stride = c.stride, .dilation = c.dilation};
  std::vector<float> y(static_cast<size_t>(B * c.cout * s.conv_out()));
  conv1d_forward(ctx, y.data(), padded.data(), c.w.data(), c.b.data(), s);
  *len = s.conv_out();
  if (keep) *keep = {std::move(padded), L, Lp, left, right};
  return y;
}

std::vector<float> conv_backward(const Context& ctx, const SeanetConv& c, const Tape::Conv& t,
                                 const std::vector<float>& dy, int64_t B, SeanetConv* g) {
  const Conv1dShape s{.B = B, .Cin = c.cin, .Cout = c.cout, .T = t.len_padded, .K = c.k, .stride = c.stride,
                      .dilation = c.dilation};
  std::vector<float> dpadded(t.input.size(), 0.0f), dx(static_cast<size_t>(B * c.cin * t.len_in), 0.0f);
  conv1d_backward(ctx, dpadded.data(), g->w.data(), g->b.data(), dy.data(), t.input.data(), c.w.data(), s);
  pad1d_backward(ctx, dx.data(), dpadded.data(), B * c.cin, t.len_in, t.left, t.right, PadMode::Reflect);
  return dx;
}

std::vector<float> conv_transpose_forward(const Context& ctx, const SeanetConv& c, const std::vector<float>& x,
                                          int64_t B, int64_t* len, double trim_right_ratio, Tape::Conv* keep) {
  const Conv1dShape s{.B = B, .Cin = c.cin, .Cout = c.cout, .T = *len, .K = c.k, .stride = c.stride, .dilation = 1};
  const int64_t full = s.transpose_out();
  std::vector<float> y(static_cast<size_t>(B * c.cout * full));
  conv_transpose1d_forward(ctx, y.data(), x.data(), c.w.data(), c.b.data(), s);
  const int64_t pad_total = c.k - c.stride;
  const int64_t right = static_cast<int64_t>(std::ceil(static_cast<double>(pad_total) * trim_right_ratio));
  const int64_t left = pad_total - right, kept = full - left - right;
  if (keep) *keep = {x, *len, full, left, right};
  *len = kept;
  return reslice_rows(y, B * c.cout, full, left, kept);
}

std::vector<float> conv_transpose_backward(const Context& ctx, const SeanetConv& c, const Tape::Conv& t,
                                           const std::vector<float>& dy, int64_t B, SeanetConv* g) {
  const int64_t full = t.len_padded, kept = full - t.left - t.right, rows = B * c.cout;
  std::vector<float> dfull(static_cast<size_t>(rows * full), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    std::copy(dy.begin() + r * kept, dy.begin() + (r + 1) * kept, dfull.begin() + r * full + t.left);
  const Conv1dShape s{.B = B, .Cin = c.cin, .Cout = c.cout, .T = t.len_in, .K = c.k, .stride = c.stride, .dilation = 1};
  std::vector<float> dx(t.input.size(), 0.0f);
  conv_transpose1d_backward(ctx, dx.data(), g->w.data(), g->b.data(), dfull.data(), t.input.data(), c.w.data(), s);
  return dx;
}

SeanetConv zeros_like(const SeanetConv& c) {
  SeanetConv z = c;
  std::fill(z.w.begin(), z.w.end(), 0.0f);
  std::fill(z.b.begin(), z.b.end(), 0.0f);
  return z;
}

}  // namespace

std::vector<float> swap_last_axes(const std::vector<float>& x, int64_t B, int64_t R, int64_t C) {
  std::vector<float> y(x.size());
  for (int64_t b = 0; b < B; ++b) {
    const float* src = x.data() + b * R * C;
    float* dst = y.data() + b * R * C;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) dst[c * R + r] = src[r * C + c];
  }
  return y;
}

Seanet seanet_zeros_like(const Seanet& net) {
  Seanet z = net;
  for (SeanetLayer& l : z) {
    for (SeanetConv* c : {&l.conv, &l.res_a, &l.res_b, &l.shortcut}) *c = zeros_like(*c);
    for (auto* v : {&l.lstm.w_ih, &l.lstm.w_hh, &l.lstm.b_ih, &l.lstm.b_hh})
      for (auto& t : *v) std::fill(t.begin(), t.end(), 0.0f);
  }
  return z;
}

std::vector<float> seanet_forward(const Context& ctx, const Seanet& net, std::vector<float> x, int64_t B,
                                  int64_t channels, int64_t* length, double trim_right_ratio, SeanetTape* tape) {
  int64_t L = *length, C = channels;
  if (tape) {
    tape->layers.assign(net.size(), {});
    tape->batch = B;
  }
  for (size_t i = 0; i < net.size(); ++i) {
    const SeanetLayer& l = net[i];
    Tape::Entry* e = tape ? &tape->layers[i] : nullptr;
    if (e) e->len = L, e->channels = C;
    switch (l.kind) {
      case SeanetLayer::kElu: {
        std::vector<float> y = elu(ctx, x);
        if (e) e->x = std::move(x);
        x = std::move(y);
        break;
      }
      case SeanetLayer::kConv:
        x = l.conv.transposed ? conv_transpose_forward(ctx, l.conv, x, B, &L, trim_right_ratio, e ? &e->a : nullptr)
                              : conv_forward(ctx, l.conv, x, B, &L, e ? &e->a : nullptr);
        C = l.conv.cout;
        break;
      case SeanetLayer::kResBlock: {
        int64_t La = L;
        std::vector<float> h = conv_forward(ctx, l.res_a, elu(ctx, x), B, &La, e ? &e->a : nullptr);
        std::vector<float> y = conv_forward(ctx, l.res_b, elu(ctx, h), B, &La, e ? &e->b : nullptr);
        int64_t Ls = L;
        if (l.shortcut.cin) {
          add_into(y, conv_forward(ctx, l.shortcut, x, B, &Ls, e ? &e->shortcut : nullptr));
        } else {
          add_into(y, x);
        }
        if (e) e->x = std::move(x), e->h = std::move(h);
        x = std::move(y);
        break;
      }
      case SeanetLayer::kLstm: {
        // (B, C, L) → (B, L, C), the stacked layers, plus the input (a residual connection), → (B, C, L).
        const std::vector<float> xt = swap_last_axes(x, B, C, L);
        std::vector<float> h = xt;
        for (size_t n = 0; n < l.lstm.w_ih.size(); ++n) {
          std::vector<float> y(xt.size()), cell(xt.size()), gates(xt.size() * 4);
          lstm_forward(ctx, y.data(), gates.data(), cell.data(), h.data(), l.lstm.w_ih[n].data(), l.lstm.w_hh[n].data(),
                       l.lstm.b_ih[n].data(), l.lstm.b_hh[n].data(), B, L, C, C);
          if (e) {
            e->lstm_x.push_back(std::move(h));
            e->lstm_y.push_back(y);
            e->lstm_gates.push_back(std::move(gates));
            e->lstm_c.push_back(std::move(cell));
          }
          h = std::move(y);
        }
        add_into(h, xt);
        x = swap_last_axes(h, B, L, C);
        break;
      }
    }
  }
  *length = L;
  return x;
}

std::vector<float> seanet_backward(const Context& ctx, const Seanet& net, const SeanetTape& tape, std::vector<float> dy,
                                   Seanet* grads) {
  if (tape.layers.size() != net.size() || grads->size() != net.size()) {
    throw_error("seanet backward: the tape has ", tape.layers.size(), " layers and the gradients ", grads->size(),
                ", expected the stack's ", net.size());
  }
  const int64_t B = tape.batch;
  for (size_t i = net.size(); i-- > 0;) {
    const SeanetLayer& l = net[i];
    const Tape::Entry& e = tape.layers[i];
    SeanetLayer& g = (*grads)[i];
    switch (l.kind) {
      case SeanetLayer::kElu:
        elu_back(ctx, dy, e.x);
        break;
      case SeanetLayer::kConv:
        dy = l.conv.transposed ? conv_transpose_backward(ctx, l.conv, e.a, dy, B, &g.conv)
                               : conv_backward(ctx, l.conv, e.a, dy, B, &g.conv);
        break;
      case SeanetLayer::kResBlock: {
        std::vector<float> dh = conv_backward(ctx, l.res_b, e.b, dy, B, &g.res_b);
        elu_back(ctx, dh, e.h);
        std::vector<float> dx = conv_backward(ctx, l.res_a, e.a, dh, B, &g.res_a);
        elu_back(ctx, dx, e.x);
        if (l.shortcut.cin) {
          add_into(dx, conv_backward(ctx, l.shortcut, e.shortcut, dy, B, &g.shortcut));
        } else {
          add_into(dx, dy);
        }
        dy = std::move(dx);
        break;
      }
      case SeanetLayer::kLstm: {
        const int64_t C = e.channels, L = e.len;
        const std::vector<float> dyt = swap_last_axes(dy, B, C, L);  // (B, L, C)
        std::vector<float> dh = dyt;
        for (size_t n = l.lstm.w_ih.size(); n-- > 0;) {
          std::vector<float> dx(dyt.size(), 0.0f);
          lstm_backward(ctx, dx.data(), g.lstm.w_ih[n].data(), g.lstm.w_hh[n].data(), g.lstm.b_ih[n].data(),
                        dh.data(), e.lstm_x[n].data(), e.lstm_y[n].data(), e.lstm_gates[n].data(), e.lstm_c[n].data(),
                        l.lstm.w_ih[n].data(), l.lstm.w_hh[n].data(), B, L, C, C);
          dh = std::move(dx);
        }
        add_into(dh, dyt);
        dy = swap_last_axes(dh, B, L, C);
        break;
      }
    }
  }
  return dy;
}

}  // namespace tritter::audio
