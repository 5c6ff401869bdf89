// The codec trainer (audio/codec_train.h): one step is encoder → residual VQ (straight-through) → decoder, the
// losses, and the backward through both stacks (audio/seanet.h), then Adam on every weight-normalized g and v, bias
// and LSTM weight. The codebooks are not trained by gradients: each follows the EMA of the residuals assigned to it.
#include "audio/codec_train.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "kernels/conv.h"
#include "kernels/nn.h"
#include "kernels/spectral.h"
#include "train/optim.h"

namespace tritter::audio {

namespace {

constexpr double kMelFloor = 1e-5;     // ε of log10(M + ε): the mel distance ignores detail below it
constexpr double kAdamBeta1 = 0.5, kAdamBeta2 = 0.9;  // EnCodec's
constexpr float kRestartCount = 1.0f;  // the EMA count a restarted code starts from: one vector's worth

}  // namespace

std::vector<MelBasis> codec_mel_scales(double sample_rate) {
  std::vector<MelBasis> scales;
  int64_t n_mels = 5;
  for (int64_t w = 32; w <= 1024; w *= 2, n_mels *= 2) {
    MelSpecConfig c;
    c.window = w;
    c.hop = w / 4;
    c.n_mels = n_mels;
    c.sample_rate = sample_rate;
    scales.push_back(make_mel_basis(c));
  }
  return scales;
}

double codec_mel_distance(const Context& ctx, const std::vector<MelBasis>& scales, const float* x, const float* xh,
                    int64_t B, int64_t T, float* dxh, double weight) {
  double total = 0;
  for (const MelBasis& m : scales) {
    if (T < m.cfg.window) continue;  // a signal shorter than the window has no frame at this scale
    const int64_t frames = mel_frames(m, T), n = B * frames * m.cfg.n_mels;
    std::vector<float> mel(n), melh(n), spec(static_cast<size_t>(B * frames * 2 * m.bins)),
        mag(static_cast<size_t>(B * frames * m.bins));
    mel_spectrogram_forward(ctx, mel.data(), spec.data(), mag.data(), x, m, B, T);
    mel_spectrogram_forward(ctx, melh.data(), spec.data(), mag.data(), xh, m, B, T);
    double sum = 0;
    std::vector<float> dmel(dxh ? n : 0);
    const double g = weight / (static_cast<double>(n) * static_cast<double>(scales.size()));
    for (int64_t i = 0; i < n; ++i) {
      const double d = std::log10(melh[i] + kMelFloor) - std::log10(mel[i] + kMelFloor);
      sum += std::fabs(d);
      if (dxh) dmel[i] = static_cast<float>(g * (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) / ((melh[i] + kMelFloor) * std::log(10.0)));
    }
    if (dxh) mel_spectrogram_backward(ctx, dxh, dmel.data(), spec.data(), mag.data(), m, B, T);
    total += sum / static_cast<double>(n);
  }
  return total / static_cast<double>(scales.size());
}

namespace {

std::string codebook_name(int q, const char* what) {
  return "quantizer.layers." + std::to_string(q) + ".codebook." + what;
}

nlohmann::json config_json(const EncodecConfig& c) {
  return {{"model_type", "encodec"},
          {"architectures", {"EncodecModel"}},
          {"audio_channels", c.audio_channels},
          {"num_filters", c.num_filters},
          {"kernel_size", c.kernel_size},
          {"last_kernel_size", c.last_kernel_size},
          {"residual_kernel_size", c.residual_kernel_size},
          {"dilation_growth_rate", c.dilation_growth_rate},
          {"num_residual_layers", c.num_residual_layers},
          {"compress", c.compress},
          {"num_lstm_layers", c.num_lstm_layers},
          {"hidden_size", c.hidden_size},
          {"codebook_dim", c.hidden_size},
          {"codebook_size", c.codebook_size},
          {"sampling_rate", c.sampling_rate},
          {"upsampling_ratios", c.upsampling_ratios},
          {"target_bandwidths", c.target_bandwidths},
          {"use_conv_shortcut", c.use_conv_shortcut},
          {"trim_right_ratio", c.trim_right_ratio},
          {"use_causal_conv", true},
          {"norm_type", "weight_norm"},
          {"pad_mode", "reflect"},
          {"normalize", false},
          {"chunk_length_s", nullptr},
          {"overlap", nullptr}};
}

}  // namespace

EncodecConfig tiny_codec_config() {
  EncodecConfig c;
  c.num_filters = 8;
  c.num_residual_layers = 1;
  c.num_lstm_layers = 1;
  c.hidden_size = 64;
  c.codebook_size = 1024;
  c.target_bandwidths = {1.5, 3.0, 6.0, 12.0};
  return c;
}

std::vector<float> AudioClips::sample(Rng& rng, int64_t batch, int64_t samples) const {
  if (signals.empty()) throw_error("audio clips: no signals to sample from");
  std::vector<double> cumulative;
  double total = 0;
  for (const auto& s : signals) cumulative.push_back(total += static_cast<double>(std::max<size_t>(s.size(), 1)));
  std::vector<float> out(static_cast<size_t>(batch * samples), 0.0f);
  for (int64_t b = 0; b < batch; ++b) {
    const double u = rng.uniform_double() * total;
    const size_t i = std::min<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin(),
                                      signals.size() - 1);
    const std::vector<float>& s = signals[i];
    const int64_t len = static_cast<int64_t>(s.size());
    const int64_t offset = len > samples ? static_cast<int64_t>(rng.next_below(static_cast<uint32_t>(len - samples + 1))) : 0;
    const int64_t n = std::min(samples, len - offset);
    if (n > 0) std::copy(s.begin() + offset, s.begin() + offset + n, out.begin() + b * samples);
  }
  return out;
}

CodecTrainer::Param& CodecTrainer::param(const std::string& name) {
  for (Param& p : params_)
    if (p.name == name) return p;
  throw_error("codec trainer: no parameter '", name, "'");
}
const CodecTrainer::Param& CodecTrainer::param(const std::string& name) const {
  return const_cast<CodecTrainer*>(this)->param(name);
}

CodecTrainer::CodecTrainer(const CodecTrainOptions& opt, Context& ctx) : opt_(opt), ctx_(ctx), rng_(opt.seed) {
  // The parameters are whatever the codec's loader asks for, created on request with PyTorch's initializations:
  // conv weights U(±1/√fan_in) (fan_in = dim 1 · k for Conv1d and ConvTranspose1d alike), weight_g = ‖v_row‖ (the
  // weight_norm start, so w = v), biases 0, LSTM weights and biases U(±1/√H).
  Rng init(opt.seed ^ 0x636f646563ull);
  const Encodec::TensorSource create = [&](const std::string& name, const Shape& shape) -> std::optional<std::vector<float>> {
    auto ends_with = [&](const char* s) { return name.size() >= std::strlen(s) && name.compare(name.size() - std::strlen(s), std::string::npos, s) == 0; };
    // Refused, so the loader asks for the plain weight: weight_g and weight_v are made from it below.
    if (name.find("parametrizations") != std::string::npos || ends_with("weight_g") || ends_with("weight_v")) return std::nullopt;
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)), 0.0f);
    if (ends_with(".conv.weight")) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(shape[1] * shape[2]));
      for (float& x : v) x = static_cast<float>((2 * init.uniform_double() - 1) * bound);
    } else if (name.find(".lstm.") != std::string::npos) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(shape[0] / 4));
      for (float& x : v) x = static_cast<float>((2 * init.uniform_double() - 1) * bound);
    }
    params_.push_back({name, shape, v, {}, {}, {}, name.find(".codebook.") == std::string::npos});
    return v;
  };
  // The loader's requests create the plain weights; each becomes a weight_v and its weight_g.
  const EncodecConfig& c = opt_.config;
  Encodec::from_source(c, create, "codec trainer");
  std::vector<Param> kept;
  for (Param& p : params_) {
    const std::string n = p.name;
    if (n.size() > 12 && n.compare(n.size() - 12, 12, ".conv.weight") == 0) {
      Param v = p;  // the plain weight the loader fell back to: this is the weight_v; add its g
      v.name = n + "_v";
      std::vector<float> g(static_cast<size_t>(v.shape[0]), 1.0f);  // set below
      kept.push_back({n + "_g", {v.shape[0], 1, 1}, g, {}, {}, {}, true});
      kept.push_back(std::move(v));
    } else {
      kept.push_back(std::move(p));
    }
  }
  params_ = std::move(kept);
  // The quantizer's EMA buffers, as transformers names them: every code starts dead (count 0), so the first step
  // restarts them all from the batch's vectors.
  for (int q = 0; q < c.max_codebooks(); ++q) {
    params_.push_back({codebook_name(q, "inited"), {1}, {0.0f}, {}, {}, {}, false});
    params_.push_back({codebook_name(q, "cluster_size"), {c.codebook_size}, std::vector<float>(c.codebook_size, 0.0f), {}, {}, {}, false});
    params_.push_back({codebook_name(q, "embed_avg"), {c.codebook_size, c.hidden_size},
                       std::vector<float>(static_cast<size_t>(c.codebook_size) * c.hidden_size, 0.0f), {}, {}, {}, false});
  }
  // weight_g: the scale that keeps activations at their input's scale, not PyTorch's ‖v‖ (w = v), whose
  // U(±1/√fan_in) weights shrink a signal by √3 a layer: the untrained codec's output was 60 dB below its input, and
  // Adam, moving each gain ~lr a step, took hundreds of steps to grow them back. A Conv1d row is an output channel
  // over Cin·K inputs: g = 1 keeps the variance. A ConvTranspose1d row is an input channel spread over Cout·K
  // outputs, each output summing Cin·K/stride terms: g = √(Cout·stride / Cin).
  const Encodec shapes = codec();
  for (const Seanet* net : {&shapes.encoder(), &shapes.decoder()}) {
    for (const SeanetLayer& l : *net) {
      if (l.kind != SeanetLayer::kConv || !l.conv.transposed) continue;
      const float g = static_cast<float>(std::sqrt(static_cast<double>(l.conv.cout * l.conv.stride) / static_cast<double>(l.conv.cin)));
      for (float& x : param(l.conv.name + ".conv.weight_g").value) x = g;
    }
  }
  for (Param& p : params_) {
    if (!p.trained) continue;
    p.grad.assign(p.value.size(), 0.0f);
    p.m.assign(p.value.size(), 0.0f);
    p.v.assign(p.value.size(), 0.0f);
  }
}

int64_t CodecTrainer::clip_samples() const {
  const int64_t hop = opt_.config.hop();
  const int64_t frames = std::max<int64_t>(8, std::llround(opt_.clip_seconds * opt_.config.sampling_rate / hop));
  return frames * hop;
}

double CodecTrainer::step_bytes() const {
  return 160.0 * opt_.config.num_filters * static_cast<double>(opt_.batch) * static_cast<double>(clip_samples());
}

Encodec CodecTrainer::codec() const {
  const Encodec::TensorSource source = [this](const std::string& name, const Shape& shape) -> std::optional<std::vector<float>> {
    for (const Param& p : params_) {
      if (p.name != name) continue;
      if (p.shape != shape) {
        throw_error("codec trainer: parameter '", name, "' has shape ", shape_str(p.shape), ", expected ", shape_str(shape));
      }
      return p.value;
    }
    return std::nullopt;
  };
  return Encodec::from_source(opt_.config, source, "codec trainer");
}

double CodecTrainer::loss_and_grads(const std::vector<float>& clips, int64_t B, int64_t T, int n_q,
                                    bool update_codebooks, CodecStepStats* stats) {
  const EncodecConfig& c = opt_.config;
  const int64_t hop = c.hop(), D = c.hidden_size, V = c.codebook_size;
  if (T % hop != 0 || T / hop < 8) throw_error("codec trainer: clips of ", T, " samples, expected a multiple of ", hop, " (at least 8 frames)");
  if (n_q < 0 || n_q > c.max_codebooks()) throw_error("codec trainer: codebooks: found ", n_q, ", expected 0 to ", c.max_codebooks());
  if (static_cast<int64_t>(clips.size()) != B * T) throw_error("codec trainer: found ", clips.size(), " samples, expected ", B * T);
  const Encodec m = codec();
  // Encoder: (B, 1, T) → z (B, D, F).
  SeanetTape enc_tape, dec_tape;
  int64_t F = T;
  const std::vector<float> z = seanet_forward(ctx_, m.encoder(), clips, B, 1, &F, c.trim_right_ratio, &enc_tape);
  const int64_t N = B * F;
  // Residual VQ over the rows (B·F, D). Codes restart (dead ones, and all of them at first) from this batch's
  // residuals before assignment; the EMA update follows the assignment, as EnCodec's.
  std::vector<float> residual = swap_last_axes(z, B, D, F), quantized(residual.size(), 0.0f), dz_commit(residual.size(), 0.0f);
  std::vector<int32_t> ids(static_cast<size_t>(N));
  double commit = 0;
  int64_t restarted = 0;
  if (n_q == 0) quantized = residual;  // no quantizer: the decoder reads the latents
  for (int q = 0; q < n_q; ++q) {
    std::vector<float>& table = param(codebook_name(q, "embed")).value;
    if (update_codebooks) {
      std::vector<float>& count = param(codebook_name(q, "cluster_size")).value;
      std::vector<float>& avg = param(codebook_name(q, "embed_avg")).value;
      const bool first = param(codebook_name(q, "inited")).value[0] == 0.0f;
      for (int64_t v = 0; v < V; ++v) {
        if (!first && count[v] >= opt_.dead_code_threshold) continue;
        const int64_t row = rng_.next_below(static_cast<uint32_t>(N));
        for (int64_t k = 0; k < D; ++k) table[v * D + k] = residual[row * D + k], avg[v * D + k] = kRestartCount * residual[row * D + k];
        count[v] = kRestartCount;
        ++restarted;
      }
      param(codebook_name(q, "inited")).value[0] = 1.0f;
    }
    const std::vector<float> sq = codebook_norms(table.data(), V, D);
    vq_nearest(ctx_, ids.data(), residual.data(), table.data(), sq.data(), N, D, V);
    // Commitment: mean over codebooks of mean (r − sg(e))²; its gradient reaches z through every residual (each is
    // z minus stop-gradient entries). The residual then moves on to the next codebook.
    double sum = 0;
    const double g = 2.0 / (static_cast<double>(N * D) * n_q);
    for (int64_t r = 0; r < N; ++r)
      for (int64_t k = 0; k < D; ++k) {
        const float e = table[ids[r] * D + k];
        const double d = residual[r * D + k] - e;
        sum += d * d;
        dz_commit[r * D + k] += static_cast<float>(g * d);
        quantized[r * D + k] += e;
        residual[r * D + k] -= e;
      }
    commit += sum / static_cast<double>(N * D) / n_q;
    if (update_codebooks) {
      // count ← decay·count + (1−decay)·n_v; avg ← decay·avg + (1−decay)·Σ r; entry = avg / smoothed count. The
      // residuals here are the ones assigned (residual + entry, before the subtraction above).
      std::vector<float>& count = param(codebook_name(q, "cluster_size")).value;
      std::vector<float>& avg = param(codebook_name(q, "embed_avg")).value;
      std::vector<double> n_v(static_cast<size_t>(V), 0.0), sums(static_cast<size_t>(V * D), 0.0);
      for (int64_t r = 0; r < N; ++r) {
        n_v[ids[r]] += 1;
        for (int64_t k = 0; k < D; ++k) sums[ids[r] * D + k] += residual[r * D + k] + table[ids[r] * D + k];
      }
      const double decay = opt_.ema_decay, eps = 1e-5;
      double total = 0;
      for (int64_t v = 0; v < V; ++v) total += (count[v] = static_cast<float>(decay * count[v] + (1 - decay) * n_v[v]));
      for (int64_t v = 0; v < V; ++v) {
        const double smoothed = (count[v] + eps) / (total + V * eps) * total;
        for (int64_t k = 0; k < D; ++k) {
          avg[v * D + k] = static_cast<float>(decay * avg[v * D + k] + (1 - decay) * sums[v * D + k]);
          table[v * D + k] = static_cast<float>(avg[v * D + k] / smoothed);
        }
      }
    }
  }
  // Decoder on the quantized latents; the straight-through estimator passes its input gradient to z unchanged.
  int64_t L = F;
  const std::vector<float> xh = seanet_forward(ctx_, m.decoder(), swap_last_axes(quantized, B, F, D), B, D, &L,
                                               c.trim_right_ratio, &dec_tape);
  if (L != T) throw_error("codec trainer: the decoder made ", L, " samples of ", T);
  // Losses and their gradient with respect to x̂.
  std::vector<float> dxh(xh.size(), 0.0f);
  double l1 = 0;
  const double gt = opt_.weight_time / static_cast<double>(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    const double d = static_cast<double>(xh[i]) - clips[i];
    l1 += std::fabs(d);
    dxh[i] = static_cast<float>(gt * (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0));
  }
  l1 /= static_cast<double>(B * T);
  if (scales_.empty()) scales_ = codec_mel_scales(c.sampling_rate);
  const double mel = codec_mel_distance(ctx_, scales_, clips.data(), xh.data(), B, T, dxh.data(), opt_.weight_mel);
  // Backward through the decoder, the quantizer (identity plus the commitment term) and the encoder.
  Seanet g_dec = seanet_zeros_like(m.decoder()), g_enc = seanet_zeros_like(m.encoder());
  std::vector<float> dz = seanet_backward(ctx_, m.decoder(), dec_tape, std::move(dxh), &g_dec);
  const std::vector<float> dc = swap_last_axes(dz_commit, B, F, D);
  for (size_t i = 0; i < dz.size(); ++i) dz[i] += static_cast<float>(opt_.weight_commit) * dc[i];
  seanet_backward(ctx_, m.encoder(), enc_tape, std::move(dz), &g_enc);
  // Each stack's weight gradients → the parameters: through the weight norm to g and v; one bias gradient to both
  // LSTM biases.
  for (Param& p : params_) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
  auto conv_grads = [&](const SeanetConv& conv, const SeanetConv& gc) {
    if (conv.cin == 0) return;
    Param& g = param(conv.name + ".conv.weight_g");
    Param& v = param(conv.name + ".conv.weight_v");
    const int64_t rows = v.shape[0], cols = v.shape[1] * v.shape[2];
    weight_norm_backward(ctx_, g.grad.data(), v.grad.data(), gc.w.data(), g.value.data(), v.value.data(), rows, cols);
    Param& b = param(conv.name + ".conv.bias");
    for (size_t i = 0; i < b.grad.size(); ++i) b.grad[i] += gc.b[i];
  };
  for (auto [net, grads] : {std::pair{&m.encoder(), &g_enc}, std::pair{&m.decoder(), &g_dec}}) {
    for (size_t i = 0; i < net->size(); ++i) {
      const SeanetLayer& l = (*net)[i];
      const SeanetLayer& g = (*grads)[i];
      if (l.kind == SeanetLayer::kConv) conv_grads(l.conv, g.conv);
      if (l.kind == SeanetLayer::kResBlock) {
        conv_grads(l.res_a, g.res_a);
        conv_grads(l.res_b, g.res_b);
        conv_grads(l.shortcut, g.shortcut);
      }
      if (l.kind == SeanetLayer::kLstm) {
        for (size_t n = 0; n < l.lstm.w_ih.size(); ++n) {
          const std::string s = l.lstm.name + ".lstm.", k = "_l" + std::to_string(n);
          auto add = [&](const std::string& name, const std::vector<float>& src) {
            Param& p = param(s + name + k);
            for (size_t j = 0; j < p.grad.size(); ++j) p.grad[j] += src[j];
          };
          add("weight_ih", g.lstm.w_ih[n]);
          add("weight_hh", g.lstm.w_hh[n]);
          add("bias_ih", g.lstm.b_ih[n]);
          add("bias_hh", g.lstm.b_ih[n]);
        }
      }
    }
  }
  const double loss = opt_.weight_time * l1 + opt_.weight_mel * mel + opt_.weight_commit * commit;
  if (stats) {
    stats->loss = loss, stats->time_l1 = l1, stats->mel = mel, stats->commit = commit;
    stats->codebooks = n_q, stats->restarted = restarted;
  }
  return loss;
}

CodecStepStats CodecTrainer::step(const std::vector<float>& clips, int64_t B, int64_t T) {
  const EncodecConfig& c = opt_.config;
  // The number of codebooks: one of the target bandwidths', drawn uniformly (EnCodec's bandwidth sampling).
  const auto& bws = c.target_bandwidths;
  int n_q = opt_.codebooks >= 0
                ? opt_.codebooks
                : std::min(c.max_codebooks(), c.codebooks_for(bws[rng_.next_below(static_cast<uint32_t>(bws.size()))]));
  if (step_ < opt_.warm_start) n_q = 0;
  CodecStepStats st;
  loss_and_grads(clips, B, T, n_q, true, &st);
  double sq = 0;
  for (const Param& p : params_)
    for (float g : p.grad) sq += static_cast<double>(g) * g;
  st.grad_norm = std::sqrt(sq);
  if (!std::isfinite(st.grad_norm)) throw_error("codec trainer: step ", step_ + 1, ": the gradient is not finite (lower --lr)");
  const double clip = opt_.grad_clip > 0 && st.grad_norm > opt_.grad_clip ? opt_.grad_clip / (st.grad_norm + 1e-6) : 1.0;
  train::Schedule sched;
  sched.kind = "cosine";
  sched.total_steps = std::max<int64_t>(opt_.steps, 1);
  sched.warmup = std::min(opt_.warmup, sched.total_steps / 10);
  sched.peak_lr = opt_.lr;
  sched.wd = 0;
  st.lr = sched.lr(step_);
  ++step_;
  AdamWStep s;
  s.b1 = static_cast<float>(kAdamBeta1);
  s.b2 = static_cast<float>(kAdamBeta2);
  s.step_size = static_cast<float>(st.lr / (1 - std::pow(kAdamBeta1, static_cast<double>(step_))));
  s.bc2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(kAdamBeta2, static_cast<double>(step_))));
  for (Param& p : params_) {
    if (!p.trained) continue;
    if (clip != 1.0)
      for (float& g : p.grad) g = static_cast<float>(g * clip);
    adamw_update(ctx_, p.value.data(), p.grad.data(), p.m.data(), p.v.data(), static_cast<int64_t>(p.value.size()), s);
  }
  return st;
}

void CodecTrainer::save(const std::string& dir) const {
  namespace fs = std::filesystem;
  const fs::path target(dir);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path staged = staging_dir_for(target);
  fs::remove_all(staged);
  fs::create_directories(staged);
  write_file_atomic(staged / "config.json", config_json(opt_.config).dump(2) + "\n");
  std::vector<SafeTensorOut> weights, state;
  for (const Param& p : params_) {
    weights.push_back({p.name, DType::F32, p.shape, p.value.data(), {}});
    if (p.trained) {
      state.push_back({p.name + ".adam_m", DType::F32, p.shape, p.m.data(), {}});
      state.push_back({p.name + ".adam_v", DType::F32, p.shape, p.v.data(), {}});
    }
  }
  write_safetensors(staged / "model.safetensors", weights, {{"format", "pt"}});
  const auto rs = rng_.state();
  std::map<std::string, std::string> meta = {{"format", "tritter-codec-trainer"}, {"step", std::to_string(step_)}};
  for (int i = 0; i < 4; ++i) meta["rng" + std::to_string(i)] = std::to_string(rs[i]);
  write_safetensors(staged / "trainer_state.safetensors", state, meta);
  replace_dir_atomic(staged, target);
}

CodecTrainer CodecTrainer::resume(const std::string& dir, const CodecTrainOptions& opt, Context& ctx) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  CodecTrainOptions o = opt;
  o.config = parse_encodec_config(read_file_bytes(d / "config.json", 1 << 20), (d / "config.json").string());
  CodecTrainer t(o, ctx);
  const SafeTensorsFile weights(d / "model.safetensors"), state(d / "trainer_state.safetensors");
  const auto& meta = state.metadata();
  auto field = [&](const std::string& key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end()) throw_error("codec trainer '", dir, "': trainer_state.safetensors: metadata '", key, "' missing");
    return it->second;
  };
  if (field("format") != "tritter-codec-trainer") {
    throw_error("codec trainer '", dir, "': trainer_state.safetensors: format '", field("format"), "', expected 'tritter-codec-trainer'");
  }
  auto load = [](const SafeTensorsFile& f, const std::string& name, const Shape& shape, std::vector<float>& out) {
    const SafeTensor& s = f.expect(name, DType::F32, shape);
    std::memcpy(out.data(), s.data, out.size() * sizeof(float));
  };
  for (Param& p : t.params_) {
    load(weights, p.name, p.shape, p.value);
    if (p.trained) {
      load(state, p.name + ".adam_m", p.shape, p.m);
      load(state, p.name + ".adam_v", p.shape, p.v);
    }
  }
  try {
    t.step_ = std::stoll(field("step"));
    std::array<uint64_t, 4> rs{};
    for (int i = 0; i < 4; ++i) rs[i] = std::stoull(field("rng" + std::to_string(i)));
    t.rng_.set_state(rs);
  } catch (const std::logic_error&) {
    throw_error("codec trainer '", dir, "': trainer_state.safetensors: step or rng metadata is not an integer");
  }
  return t;
}

double si_snr_db(const float* ref, const float* est, int64_t n) {
  double mr = 0, me = 0;
  for (int64_t i = 0; i < n; ++i) mr += ref[i], me += est[i];
  mr /= static_cast<double>(n), me /= static_cast<double>(n);
  double dot = 0, rr = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += (ref[i] - mr) * (est[i] - me);
    rr += (ref[i] - mr) * (ref[i] - mr);
  }
  if (!(rr > 0)) throw_error("si-snr: the reference signal is silent (all samples equal)");
  const double a = dot / rr;
  double ss = 0, ee = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double s = a * (ref[i] - mr), e = (est[i] - me) - s;
    ss += s * s;
    ee += e * e;
  }
  return 10.0 * std::log10(std::max(ss, 1e-30) / std::max(ee, 1e-30));
}

std::vector<CodecQuality> evaluate_codec(const Context& ctx, const Encodec& codec,
                                         const std::vector<std::vector<float>>& signals) {
  const EncodecConfig& c = codec.config();
  const std::vector<MelBasis> scales = codec_mel_scales(c.sampling_rate);
  std::vector<CodecQuality> out;
  for (double kbps : c.target_bandwidths) {
    const int n_q = std::min(codec.codebooks(), c.codebooks_for(kbps));
    CodecQuality q{kbps, n_q, 0, 0};
    for (const std::vector<float>& s : signals) {
      const int64_t T = static_cast<int64_t>(s.size());
      int64_t frames = 0;
      const std::vector<int32_t> codes = codec.encode(ctx, s.data(), T, n_q, &frames);
      const std::vector<float> y = codec.decode(ctx, codes.data(), n_q, frames);
      q.si_snr_db += si_snr_db(s.data(), y.data(), T);
      q.mel_distance += codec_mel_distance(ctx, scales, s.data(), y.data(), 1, T, nullptr, 1.0);
    }
    q.si_snr_db /= static_cast<double>(signals.size());
    q.mel_distance /= static_cast<double>(signals.size());
    out.push_back(q);
  }
  return out;
}

}  // namespace tritter::audio
