// The SEANet stacks of the EnCodec family (encoder and decoder), written once for inference and training: a stack
// is a list of layers (convolutions, residual blocks, ELU, the LSTM) run over B signals (B, C, L) with transformers'
// causal padding and trimming (EncodecConv1d / EncodecConvTranspose1d). A training forward keeps what the backward
// needs in a SeanetTape; the backward returns the input's gradient and accumulates each weight's gradient into a
// stack of the same shape (seanet_zeros_like), weight for weight.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/context.h"

namespace tritter::audio {

struct SeanetConv {
  std::string name;  // the tensor prefix in transformers' names, e.g. "encoder.layers.3" (the tensors are name.conv.*)
  int64_t cin = 0, cout = 0, k = 1, stride = 1, dilation = 1;
  bool transposed = false;
  std::vector<float> w, b;  // Conv1d (cout, cin, k) or ConvTranspose1d (cin, cout, k); b (cout)
};

struct SeanetLstm {
  std::string name;  // tensors name.lstm.{weight_ih,weight_hh,bias_ih,bias_hh}_l{n}
  int64_t dim = 0;
  // Per stacked layer: w_ih, w_hh (4·dim, dim), b_ih, b_hh (4·dim). In a gradient stack b_ih holds the bias
  // gradient (both biases have it) and b_hh is unused.
  std::vector<std::vector<float>> w_ih, w_hh, b_ih, b_hh;
};

struct SeanetLayer {
  enum Kind { kConv, kResBlock, kElu, kLstm } kind = kElu;
  SeanetConv conv;                    // kConv
  SeanetConv res_a, res_b, shortcut;  // kResBlock: ELU, a, ELU, b; plus the shortcut (k = 1) or identity (cin = 0)
  SeanetLstm lstm;                    // kLstm: stacked LSTMs plus their input (a residual connection)
};
using Seanet = std::vector<SeanetLayer>;

// (B, R, C) → (B, C, R): the last two axes of each batch element swapped (channels-first ↔ steps-first).
std::vector<float> swap_last_axes(const std::vector<float>& x, int64_t B, int64_t R, int64_t C);

// The same stack with every weight and bias zero: the accumulator of seanet_backward's weight gradients.
Seanet seanet_zeros_like(const Seanet& net);

// Activations a training forward keeps, one entry per layer (opaque to callers).
struct SeanetTape {
  struct Conv {
    std::vector<float> input;  // the padded input (B, cin, Lp), or for a transposed conv its input (B, cin, L)
    int64_t len_in = 0, len_padded = 0, left = 0, right = 0;
  };
  struct Entry {
    std::vector<float> x;              // the layer's input (ELU, residual block)
    std::vector<float> h;              // kResBlock: conv a's output, before its ELU
    Conv a, b, shortcut;               // kConv uses a
    std::vector<std::vector<float>> lstm_x, lstm_y, lstm_gates, lstm_c;  // per stacked layer, (B, L, ·)
    int64_t len = 0, channels = 0;     // the layer's input length and channels
  };
  std::vector<Entry> layers;
  int64_t batch = 0;
};

// y (B, C', L') of x (B, C, *length) through the stack; *length becomes L'. With a tape, the activations are kept
// for seanet_backward; training needs every layer's input longer than its padding (reflect padding of a shorter
// input, which inference handles by zero extension as transformers does, is refused with a tape).
std::vector<float> seanet_forward(const Context& ctx, const Seanet& net, std::vector<float> x, int64_t B,
                                  int64_t channels, int64_t* length, double trim_right_ratio, SeanetTape* tape);

// dx (B, C, L) of dy (B, C', L') through the stack of the tape's forward; each weight's gradient is added to the
// same weight of `grads` (seanet_zeros_like(net)).
std::vector<float> seanet_backward(const Context& ctx, const Seanet& net, const SeanetTape& tape, std::vector<float> dy,
                                   Seanet* grads);

}  // namespace tritter::audio
