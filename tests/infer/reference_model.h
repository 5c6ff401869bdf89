// A plain double-precision forward pass written straight from training-spec §3–§5, §7 (fake-quantized form:
// x̃ = q/s, W̃ = Wq/σ, y = x̃ W̃ᵀ, full softmax attention), independent of the engine and its kernels. It also
// records how close any activation came to an int8 rounding boundary, so a test can tell a real mismatch from
// the level flips §10 describes.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "model/config.h"
#include "model/tensor_table.h"

namespace tritter::test {

struct ReferenceModel {
  const TritterConfig& c;
  const std::vector<float>& params;  // tensor-table order
  std::vector<TensorInfo> table = tensor_table(c);
  double min_margin = 1.0;  // smallest |frac(x·s) − 0.5| seen by the activation quantizer

  const float* tensor(const std::string& name) const {
    for (const auto& t : table) {
      if (t.name == name) return params.data() + t.offset;
    }
    throw std::runtime_error("reference: no tensor " + name);
  }

  // x (N, n) ← RMSNorm(x) · g, eps inside the root.
  void rmsnorm(std::vector<double>& x, int64_t N, int64_t n, const float* g) const {
    for (int64_t r = 0; r < N; ++r) {
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += x[r * n + j] * x[r * n + j];
      const double inv = 1.0 / std::sqrt(ss / n + c.rms_norm_eps);
      for (int64_t j = 0; j < n; ++j) x[r * n + j] = x[r * n + j] * inv * g[j];
    }
  }

  // y (N, O) = x̃ W̃ᵀ with the spec's quantizers (float ops where §3 prescribes them).
  std::vector<double> bitlinear(const std::vector<double>& x, int64_t N, int64_t I, const float* w, int64_t O) {
    double sum = 0;
    for (int64_t i = 0; i < O * I; ++i) sum += std::fabs(static_cast<double>(w[i]));
    const float beta = std::fmax(static_cast<float>(sum / static_cast<double>(O * I)), 1e-5f);
    const float sigma = 1.0f / beta;
    std::vector<double> wt(O * I);
    for (int64_t i = 0; i < O * I; ++i) {
      const float q = std::fmin(std::fmax(std::nearbyint(w[i] * sigma), -1.0f), 1.0f);
      wt[i] = static_cast<double>(q) / static_cast<double>(sigma);
    }
    std::vector<double> y(N * O);
    std::vector<double> xt(I);
    for (int64_t r = 0; r < N; ++r) {
      float a = 0;
      for (int64_t k = 0; k < I; ++k) a = std::fmax(a, std::fabs(static_cast<float>(x[r * I + k])));
      const float s = 127.0f / std::fmax(a, 1e-5f);
      for (int64_t k = 0; k < I; ++k) {
        const float xs = static_cast<float>(x[r * I + k]) * s;
        const double frac = std::fabs(xs - std::floor(xs) - 0.5);
        if (std::fabs(xs) < 127.0f) min_margin = std::min(min_margin, frac);
        const float q = std::fmin(std::fmax(std::nearbyint(xs), -127.0f), 127.0f);
        xt[k] = static_cast<double>(q / s);
      }
      for (int64_t o = 0; o < O; ++o) {
        double acc = 0;
        for (int64_t k = 0; k < I; ++k) acc += xt[k] * wt[o * I + k];
        y[r * O + o] = acc;
      }
    }
    return y;
  }

  void rope(std::vector<double>& x, int64_t T, int64_t heads) const {
    const int64_t d = c.head_dim, h2 = d / 2;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < h2; ++j) {
        const double phi = static_cast<double>(t) * std::pow(c.rope_theta, -2.0 * j / d);
        const double cs = static_cast<float>(std::cos(phi)), sn = static_cast<float>(std::sin(phi));
        for (int64_t h = 0; h < heads; ++h) {
          double* u = &x[(t * heads + h) * d];
          const double u1 = u[j], u2 = u[j + h2];
          u[j] = u1 * cs - u2 * sn;
          u[j + h2] = u2 * cs + u1 * sn;
        }
      }
    }
  }

  // logits (T, V) for tokens at positions 0 .. T−1.
  std::vector<double> forward(const std::vector<int32_t>& ids) {
    const int64_t T = ids.size(), D = c.hidden_size, F = c.intermediate_size, H = c.num_attention_heads;
    const int64_t K = c.num_key_value_heads, d = c.head_dim, G = H / K, V = c.vocab_size;
    const int64_t W = c.sliding_window.value_or(0);
    std::vector<double> x(T * D);
    const float* E = tensor("model.embed_tokens.weight");
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < D; ++j) x[t * D + j] = E[ids[t] * D + j];
    }
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      std::vector<double> a = x;
      rmsnorm(a, T, D, tensor(p + "input_layernorm.weight"));
      auto q = bitlinear(a, T, D, tensor(p + "self_attn.q_proj.weight"), H * d);
      auto k = bitlinear(a, T, D, tensor(p + "self_attn.k_proj.weight"), K * d);
      auto v = bitlinear(a, T, D, tensor(p + "self_attn.v_proj.weight"), K * d);
      if (c.qk_norm) {
        rmsnorm(q, T * H, d, tensor(p + "self_attn.q_norm.weight"));
        rmsnorm(k, T * K, d, tensor(p + "self_attn.k_norm.weight"));
      }
      rope(q, T, H);
      rope(k, T, K);
      std::vector<double> o(T * H * d, 0.0);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t kv = h / G;
        for (int64_t i = 0; i < T; ++i) {
          std::vector<double> s(T, -std::numeric_limits<double>::infinity());
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j <= i; ++j) {
            if (W > 0 && i - j >= W) continue;
            double dot = 0;
            for (int64_t e = 0; e < d; ++e) dot += q[(i * H + h) * d + e] * k[(j * K + kv) * d + e];
            s[j] = dot / std::sqrt(static_cast<double>(d));
            mx = std::max(mx, s[j]);
          }
          double z = 0;
          for (int64_t j = 0; j <= i; ++j) z += std::isinf(s[j]) ? 0.0 : std::exp(s[j] - mx);
          for (int64_t j = 0; j <= i; ++j) {
            if (std::isinf(s[j])) continue;
            const double pj = std::exp(s[j] - mx) / z;
            for (int64_t e = 0; e < d; ++e) o[(i * H + h) * d + e] += pj * v[(j * K + kv) * d + e];
          }
        }
      }
      if (c.sub_norm) rmsnorm(o, T, H * d, tensor(p + "self_attn.attn_sub_norm.weight"));
      auto y = bitlinear(o, T, H * d, tensor(p + "self_attn.o_proj.weight"), D);
      if (c.post_norm == PostNorm::Both) rmsnorm(y, T, D, tensor(p + "post_attention_layernorm.weight"));
      for (int64_t i = 0; i < T * D; ++i) x[i] += y[i];
      std::vector<double> m = x;
      rmsnorm(m, T, D, tensor(p + "pre_feedforward_layernorm.weight"));
      auto u = bitlinear(m, T, D, tensor(p + "mlp.up_proj.weight"), F);
      if (c.mlp_act == MlpAct::Relu2Glu) {
        auto gt = bitlinear(m, T, D, tensor(p + "mlp.gate_proj.weight"), F);
        for (int64_t i = 0; i < T * F; ++i) u[i] = std::max(gt[i], 0.0) * std::max(gt[i], 0.0) * u[i];
      } else {
        for (int64_t i = 0; i < T * F; ++i) u[i] = std::max(u[i], 0.0) * std::max(u[i], 0.0);
      }
      if (c.sub_norm) rmsnorm(u, T, F, tensor(p + "mlp.ffn_sub_norm.weight"));
      auto f = bitlinear(u, T, F, tensor(p + "mlp.down_proj.weight"), D);
      if (c.post_norm != PostNorm::None) rmsnorm(f, T, D, tensor(p + "post_feedforward_layernorm.weight"));
      for (int64_t i = 0; i < T * D; ++i) x[i] += f[i];
    }
    rmsnorm(x, T, D, tensor("model.norm.weight"));
    const float* Wlm = tensor(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
    std::vector<double> z(T * V);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t vv = 0; vv < V; ++vv) {
        double acc = 0;
        for (int64_t j = 0; j < D; ++j) acc += x[t * D + j] * Wlm[vv * D + j];
        z[t * V + vv] = acc;
      }
    }
    return z;
  }
};

}  // namespace tritter::test
