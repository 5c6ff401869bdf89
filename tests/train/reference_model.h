// A naive double-precision reference of the training-spec §5–7 forward (loss only), written straight from the spec
// and independent of train/ops: materialized attention, no arena, no BLAS. quant=true applies the §3 quantizers
// in double with optional frozen offsets (the straight-through surrogate: x̃ = x + (Q(x₀) − x₀) with the offset
// recorded at the base point), so central differences of it give the STE gradient.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

#include "model/config.h"
#include "model/tensor_table.h"

namespace tritter::test {

class ReferenceModel {
 public:
  using Vec = std::vector<double>;
  ReferenceModel(const TritterConfig& c) : c_(c), table_(tensor_table(c)) {}

  // Mean CE (+ z-loss) of inputs/targets (B, T). With quant, `record` stores the quantization offsets of this
  // call; later calls with `frozen` reuse them (the STE surrogate).
  double loss(const Vec& p, const std::vector<int32_t>& in, const std::vector<int32_t>& tg, int64_t B, int64_t T,
              bool record = false, bool frozen = false, std::vector<double>* logits_out = nullptr) {
    record_ = record;
    frozen_ = frozen;
    site_ = 0;
    const int64_t D = c_.hidden_size, V = c_.vocab_size, N = B * T;
    const double* E = p.data() + find("model.embed_tokens.weight")->offset;
    Vec x(N * D);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < D; ++j) x[n * D + j] = E[in[n] * D + j];
    for (int i = 0; i < c_.num_hidden_layers; ++i) x = layer(p, i, x, B, T);
    Vec hh = norm(x, w(p, "model.norm.weight"), N, D);
    const double* Wl = c_.tie_word_embeddings ? E : p.data() + find("lm_head.weight")->offset;
    Vec z;
    double aux = 0;
    if (c_.head_type == HeadType::CosineTied) {  // z = s·cos(h, E_v), + β·(1 − cos(h, E_y)) (targets not frozen)
      const Vec hn = unit_rows(hh.data(), N, D), En = unit_rows(E, V, D);
      const double s = std::clamp(std::exp(*w(p, "lm_head.log_scale")), c_.cos_scale_min, c_.cos_scale_max);
      z = matmul(hn, En.data(), N, D, V, false);
      for (auto& v : z) v *= s;
      int64_t nv = 0;
      for (int64_t n = 0; n < N; ++n) {
        if (tg[n] == -100) continue;
        ++nv;
        double c = 0;
        for (int64_t j = 0; j < D; ++j) c += hn[n * D + j] * (aux_stopgrad_ ? aux_target_[tg[n] * D + j] : En[tg[n] * D + j]);
        aux += 1 - c;
      }
      aux *= aux_beta / static_cast<double>(std::max<int64_t>(nv, 1));
    } else {
      z = matmul(hh, Wl, N, D, V, false);
    }
    if (logits_out) *logits_out = z;
    double total = 0;
    int64_t valid = 0;
    for (int64_t n = 0; n < N; ++n) {
      if (tg[n] == -100) continue;
      ++valid;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t v = 0; v < V; ++v) m = std::max(m, z[n * V + v]);
      double s = 0;
      for (int64_t v = 0; v < V; ++v) s += std::exp(z[n * V + v] - m);
      const double lse = m + std::log(s);
      total += lse - z[n * V + tg[n]] + c_.z_loss * lse * lse;
    }
    return total / static_cast<double>(std::max<int64_t>(valid, 1)) + aux;
  }

  // The cosine head's auxiliary term: its weight, and (stop-gradient) the fixed unit table its targets come from.
  double aux_beta = 0;
  // The attention mask: causal (default), bidirectional, or prefix-LM with one prefix length per sequence.
  bool bidirectional = false;
  std::vector<int64_t> prefix;
  void freeze_aux_targets(const Vec& p) {
    aux_stopgrad_ = true;
    aux_target_ = unit_rows(p.data() + find("model.embed_tokens.weight")->offset, c_.vocab_size, c_.hidden_size);
  }

 private:
  const TensorInfo* find(const std::string& name) const { return tritter::find_tensor(table_, name); }
  const double* w(const Vec& p, const std::string& name) const { return p.data() + find(name)->offset; }
  std::string lp(int i, const std::string& s) const { return "model.layers." + std::to_string(i) + "." + s; }

  static Vec unit_rows(const double* x, int64_t rows, int64_t n) {
    Vec y(static_cast<size_t>(rows * n));
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += x[r * n + j] * x[r * n + j];
      const double k = 1.0 / std::sqrt(ss + 1e-12);
      for (int64_t j = 0; j < n; ++j) y[r * n + j] = x[r * n + j] * k;
    }
    return y;
  }
  bool aux_stopgrad_ = false;
  Vec aux_target_;

  Vec norm(const Vec& x, const double* g, int64_t rows, int64_t n) const {
    Vec y(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += x[r * n + j] * x[r * n + j];
      const double rs = 1.0 / std::sqrt(ss / n + c_.rms_norm_eps);
      for (int64_t j = 0; j < n; ++j) y[r * n + j] = x[r * n + j] * rs * g[j];
    }
    return y;
  }
  // The quantizer site: exact §3 quantization in double, or the frozen offset.
  Vec quant_or_frozen(const Vec& x, bool is_weight, int64_t rows, int64_t n) {
    const size_t site = site_++;
    if (frozen_) {
      Vec y(x.size());
      for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] + offsets_[site][i];
      return y;
    }
    Vec y(x.size());
    if (is_weight) {
      double s = 0;
      for (double v : x) s += std::abs(v);
      const float beta = std::max(static_cast<float>(s / static_cast<double>(x.size())), 1e-5f);
      const float sigma = 1.0f / beta;
      for (size_t i = 0; i < x.size(); ++i) {
        const double q = std::clamp(std::nearbyint(static_cast<double>(static_cast<float>(x[i]) * sigma)), -1.0, 1.0);
        y[i] = q / sigma;
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        double a = 0;
        for (int64_t j = 0; j < n; ++j) a = std::max(a, std::abs(x[r * n + j]));
        const float s = 127.0f / std::max(static_cast<float>(a), 1e-5f);
        for (int64_t j = 0; j < n; ++j) {
          const double q = std::clamp(std::nearbyint(static_cast<double>(static_cast<float>(x[r * n + j]) * s)),
                                      -128.0, 127.0);
          y[r * n + j] = q / s;
        }
      }
    }
    if (record_) {
      if (offsets_.size() <= site) offsets_.resize(site + 1);
      offsets_[site].resize(x.size());
      for (size_t i = 0; i < x.size(); ++i) offsets_[site][i] = y[i] - x[i];
    }
    return y;
  }
  // y (N, O) = x̃ W̃ᵀ with W (O, I).
  Vec matmul(const Vec& x, const double* W, int64_t N, int64_t I, int64_t O, bool bitlinear) {
    Vec xs = x, ws(W, W + O * I);
    if (bitlinear && c_.quant) {
      xs = quant_or_frozen(x, false, N, I);
      ws = quant_or_frozen(ws, true, O, I);
    }
    Vec y(N * O, 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) {
        double s = 0;
        for (int64_t i = 0; i < I; ++i) s += xs[n * I + i] * ws[o * I + i];
        y[n * O + o] = s;
      }
    return y;
  }
  void rope(Vec& x, int64_t B, int64_t T, int64_t heads) const {
    const int64_t d = c_.head_dim, half = d / 2;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < heads; ++h) {
          double* u = x.data() + ((b * T + t) * heads + h) * d;
          for (int64_t j = 0; j < half; ++j) {
            const double inv = std::pow(c_.rope_theta, -2.0 * static_cast<double>(j) / static_cast<double>(d));
            const double phi = static_cast<double>(t) * inv;
            const double co = static_cast<float>(std::cos(phi)), si = static_cast<float>(std::sin(phi));
            const double u1 = u[j], u2 = u[j + half];
            u[j] = u1 * co - u2 * si;
            u[j + half] = u2 * co + u1 * si;
          }
        }
  }
  Vec layer(const Vec& p, int i, const Vec& x, int64_t B, int64_t T) {
    const int64_t N = B * T, D = c_.hidden_size, F = c_.intermediate_size, H = c_.num_attention_heads;
    const int64_t K = c_.num_key_value_heads, d = c_.head_dim, G = H / K;
    Vec a = norm(x, w(p, lp(i, "input_layernorm.weight")), N, D);
    Vec q = matmul(a, w(p, lp(i, "self_attn.q_proj.weight")), N, D, H * d, true);
    Vec k = matmul(a, w(p, lp(i, "self_attn.k_proj.weight")), N, D, K * d, true);
    Vec v = matmul(a, w(p, lp(i, "self_attn.v_proj.weight")), N, D, K * d, true);
    if (c_.qk_norm) {
      q = norm(q, w(p, lp(i, "self_attn.q_norm.weight")), N * H, d);
      k = norm(k, w(p, lp(i, "self_attn.k_norm.weight")), N * K, d);
    }
    rope(q, B, T, H);
    rope(k, B, T, K);
    Vec o(N * H * d, 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < T; ++t) {
          const int64_t kv = h / G;
          std::vector<double> s(T, -std::numeric_limits<double>::infinity());
          double m = -std::numeric_limits<double>::infinity();
          // The last visible key: causal t; bidirectional T − 1; prefix-LM P_b − 1 inside the prefix.
          const int64_t P = prefix.empty() ? 0 : prefix[static_cast<size_t>(b)];
          const int64_t last = bidirectional ? T - 1 : t < P ? P - 1 : t;
          for (int64_t j = 0; j <= last; ++j) {
            if (c_.sliding_window && t - j >= *c_.sliding_window) continue;
            double acc = 0;
            for (int64_t e = 0; e < d; ++e) acc += q[((b * T + t) * H + h) * d + e] * k[((b * T + j) * K + kv) * d + e];
            s[j] = acc / std::sqrt(static_cast<double>(d));
            m = std::max(m, s[j]);
          }
          double sum = 0;
          for (int64_t j = 0; j <= last; ++j) sum += std::exp(s[j] - m);
          for (int64_t j = 0; j <= last; ++j) {
            const double pr = std::exp(s[j] - m) / sum;
            for (int64_t e = 0; e < d; ++e) o[((b * T + t) * H + h) * d + e] += pr * v[((b * T + j) * K + kv) * d + e];
          }
        }
    if (c_.sub_norm) o = norm(o, w(p, lp(i, "self_attn.attn_sub_norm.weight")), N, H * d);
    Vec y = matmul(o, w(p, lp(i, "self_attn.o_proj.weight")), N, H * d, D, true);
    if (c_.post_norm == PostNorm::Both) y = norm(y, w(p, lp(i, "post_attention_layernorm.weight")), N, D);
    Vec h(N * D);
    for (int64_t j = 0; j < N * D; ++j) h[j] = x[j] + y[j];
    Vec m = norm(h, w(p, lp(i, "pre_feedforward_layernorm.weight")), N, D);
    Vec u = matmul(m, w(p, lp(i, "mlp.up_proj.weight")), N, D, F, true);
    Vec s(N * F);
    if (c_.mlp_act == MlpAct::Relu2Glu) {
      Vec g = matmul(m, w(p, lp(i, "mlp.gate_proj.weight")), N, D, F, true);
      for (int64_t j = 0; j < N * F; ++j) s[j] = std::max(g[j], 0.0) * std::max(g[j], 0.0) * u[j];
    } else {
      for (int64_t j = 0; j < N * F; ++j) s[j] = std::max(u[j], 0.0) * std::max(u[j], 0.0);
    }
    if (c_.sub_norm) s = norm(s, w(p, lp(i, "mlp.ffn_sub_norm.weight")), N, F);
    Vec f = matmul(s, w(p, lp(i, "mlp.down_proj.weight")), N, F, D, true);
    if (c_.post_norm != PostNorm::None) f = norm(f, w(p, lp(i, "post_feedforward_layernorm.weight")), N, D);
    Vec out(N * D);
    for (int64_t j = 0; j < N * D; ++j) out[j] = h[j] + f[j];
    return out;
  }

  TritterConfig c_;
  std::vector<TensorInfo> table_;
  bool record_ = false, frozen_ = false;
  size_t site_ = 0;
  std::vector<std::vector<double>> offsets_;
};

}  // namespace tritter::test
