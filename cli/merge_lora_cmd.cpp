// `tritter merge-lora --base MODEL --lora DIR[:weight]... --out CKPT`: writes a full-precision checkpoint
// (tritter-v1) whose BitLinear weights are W̃ + Σ weight·(α/r)·B A (W̃ = Wq/σ, the base's dequantized ternary
// weight) and reports the error that re-packing it to ternary would add. Merging into a ternary base is lossy: the
// low-rank update is mostly far below the ternary step β and is rounded away, so adapters stay separate by default.
#include <cmath>
#include <cstdio>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "infer/lora_apply.h"
#include "kernels/quantize.h"
#include "kernels/ternary_matmul.h"
#include "model/checkpoint.h"
#include "train/lora_finetune.h"
#include "train/lora_io.h"

namespace tritter::cli {

namespace {

struct MergeArgs {
  std::string base, out;
  std::vector<std::string> lora;
};

const TernaryMatrix* matrix_of(const LayerWeights& L, const std::string& kind) {
  if (kind == "q_proj") return &L.q;
  if (kind == "k_proj") return &L.k;
  if (kind == "v_proj") return &L.v;
  if (kind == "o_proj") return &L.o;
  if (kind == "gate_proj") return &L.gate;
  if (kind == "up_proj") return &L.up;
  return &L.down;
}

void run_merge(const MergeArgs& a, const GlobalOptions& global) {
  auto ctx = make_context(global);
  const PackedModel base = train::open_lora_base(a.base, &ctx->memory);
  const ModelWeights& w = base.weights();
  const TritterConfig& c = w.config;
  struct Loaded {
    train::LoraAdapter adapter;
    double weight;
  };
  std::vector<Loaded> adapters;
  for (const auto& spec : a.lora) {  // DIR or DIR:weight, parsed as `generate --lora` parses it
    const auto [dir, weight] = parse_lora_spec(spec);
    adapters.push_back({train::load_lora_adapter(dir, c, &ctx->memory), weight});
  }
  double sum_rel = 0, worst_rel = 0, sum_lost = 0;
  int64_t merged = 0;
  std::string worst_name;
  auto produce = [&](float* out, const TensorInfo& info, size_t) {
    const int64_t n = info.numel();
    if (info.role != TensorRole::BitLinear) {
      const float* src = info.role == TensorRole::Embedding ? w.embed
                         : info.kind == "norm"             ? w.final_norm
                                                           : nullptr;
      if (info.role == TensorRole::LmHead) {
        if (w.head.format == HeadFormat::F32) {
          src = w.head.f32;
        } else {
          for (int64_t r = 0; r < info.shape[0]; ++r)
            for (int64_t j = 0; j < info.shape[1]; ++j)
              out[r * info.shape[1] + j] = w.head.i8[r * info.shape[1] + j] * w.head.row_scale[r];
          return;
        }
      }
      if (!src) {  // a layer gain: find it through the packed file's names
        const LayerWeights& L = w.layers[static_cast<size_t>(info.layer)];
        const std::string& k = info.kind;
        src = k == "input_layernorm" ? L.input_norm : k == "q_norm" ? L.q_norm : k == "k_norm" ? L.k_norm
            : k == "attn_sub_norm" ? L.attn_sub_norm : k == "post_attention_layernorm" ? L.post_attn_norm
            : k == "pre_feedforward_layernorm" ? L.pre_ff_norm : k == "ffn_sub_norm" ? L.ffn_sub_norm
            : L.post_ff_norm;
      }
      TRITTER_CHECK(src != nullptr, info.name);
      std::copy(src, src + n, out);
      return;
    }
    const TernaryMatrix& m = *matrix_of(w.layers[static_cast<size_t>(info.layer)], info.kind);
    const int64_t O = m.rows, I = m.cols;
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) out[o * I + i] = static_cast<float>(ternary_matrix_at(m, o, i)) / m.sigma;
    std::vector<double> delta(static_cast<size_t>(n), 0.0);
    bool touched = false;
    for (const auto& ad : adapters) {
      const auto& cfg = ad.adapter.config;
      for (const auto& t : ad.adapter.table) {
        if (t.base_name != info.name) continue;
        touched = true;
        const float* A = ad.adapter.params.as<float>().data() + t.a_offset;  // (r, I)
        const float* B = ad.adapter.params.as<float>().data() + t.b_offset;  // (O, r)
        const double s = ad.weight * cfg.scale();
        for (int64_t o = 0; o < O; ++o)
          for (int64_t k = 0; k < cfg.rank; ++k) {
            const double b = s * B[o * cfg.rank + k];
            for (int64_t i = 0; i < I; ++i) delta[static_cast<size_t>(o * I + i)] += b * A[k * I + i];
          }
      }
    }
    if (!touched) return;
    ++merged;
    for (int64_t j = 0; j < n; ++j) out[j] += static_cast<float>(delta[static_cast<size_t>(j)]);
    // What re-packing would do: W̃' = rne(W·σ')/σ' with σ' from the merged weights (§4.2).
    std::vector<int8_t> q(static_cast<size_t>(n));
    const float sigma = ternary_sigma(out, n);
    ternary_quantize(q.data(), out, n, sigma);
    double e2 = 0, w2 = 0, lost2 = 0, d2 = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double requant = q[static_cast<size_t>(j)] / static_cast<double>(sigma);
      const double base_v = static_cast<double>(ternary_matrix_at(m, j / I, j % I)) / m.sigma;
      const double dj = delta[static_cast<size_t>(j)];
      e2 += (requant - out[j]) * (requant - out[j]);
      w2 += static_cast<double>(out[j]) * out[j];
      lost2 += (requant - base_v - dj) * (requant - base_v - dj);
      d2 += dj * dj;
    }
    const double rel = std::sqrt(e2 / std::max(w2, 1e-300));
    sum_rel += rel;
    sum_lost += d2 > 0 ? std::sqrt(lost2 / d2) : 0.0;
    if (rel > worst_rel) {
      worst_rel = rel;
      worst_name = info.name;
    }
  };
  save_checkpoint_streaming(a.out, c, produce, {{"merged_lora", std::to_string(adapters.size())}});
  std::printf("merged %zu adapter(s) into %lld BitLinear matrices: %s (full precision, %s)\n", adapters.size(),
              static_cast<long long>(merged), a.out.c_str(), kCheckpointFormat);
  if (merged > 0) {
    std::printf("re-packing to ternary would add rel-L2 error %.4f to the merged weights (mean over matrices; worst "
                "%.4f in %s) and lose rel-L2 %.3f of the LoRA update itself: merging into a ternary base is lossy; "
                "keep adapters separate unless the merged model is trained further\n",
                sum_rel / static_cast<double>(merged), worst_rel, worst_name.c_str(),
                sum_lost / static_cast<double>(merged));
  }
}

}  // namespace

void add_merge_lora_command(CLI::App& app, GlobalOptions& global) {
  auto m = std::make_shared<MergeArgs>();
  CLI::App* mc = app.add_subcommand("merge-lora", "Merge LoRA adapters into a full-precision checkpoint (lossy if re-packed)");
  mc->add_option("--base", m->base, "Base model: packed file or checkpoint")->required();
  mc->add_option("--lora", m->lora, "Adapter directory, optionally DIR:weight (repeatable)")->required();
  mc->add_option("--out", m->out, "Merged checkpoint (.safetensors, tritter-v1)")->required();
  mc->callback([m, &global] { run_merge(*m, global); });
}

}  // namespace tritter::cli
