// Depth up-scaling (model/expand.h).
#include "model/expand.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "model/tensor_table.h"

namespace tritter {

ExpandMethod expand_method_from_name(const std::string& name) {
  if (name == "duplicate") return ExpandMethod::Duplicate;
  if (name == "interleave") return ExpandMethod::Interleave;
  if (name == "solar") return ExpandMethod::Solar;
  throw_error("expand: --method '", name, "': expected duplicate, interleave or solar");
}

const char* expand_method_name(ExpandMethod m) {
  switch (m) {
    case ExpandMethod::Duplicate: return "duplicate";
    case ExpandMethod::Interleave: return "interleave";
    case ExpandMethod::Solar: return "solar";
  }
  return "?";
}

std::vector<ExpandedLayer> expand_plan(int64_t L, int64_t N, ExpandMethod method) {
  if (L < 1) throw_error("expand: the model has ", L, " layers, expected at least 1");
  std::vector<ExpandedLayer> plan;
  switch (method) {
    case ExpandMethod::Duplicate:
    case ExpandMethod::Interleave:
      if (N < L) {
        throw_error("expand: --layers ", N, " is fewer than the model's ", L, " layers; expected at least ", L,
                    " (", expand_method_name(method), " only adds layers)");
      }
      if (method == ExpandMethod::Duplicate) {
        for (int64_t i = 0; i < N; ++i) plan.push_back({i % L, i >= L});
      } else {
        // Layer i gets ⌊(i+1)·k/L⌋ − ⌊i·k/L⌋ copies of itself (k = N − L copies in all, spread evenly).
        const int64_t k = N - L;
        for (int64_t i = 0; i < L; ++i) {
          plan.push_back({i, false});
          const int64_t copies = (i + 1) * k / L - i * k / L;
          for (int64_t c = 0; c < copies; ++c) plan.push_back({i, true});
        }
      }
      break;
    case ExpandMethod::Solar: {
      if (N < L || N > 2 * L || (2 * L - N) % 2 != 0) {
        throw_error("expand: --layers ", N, " with --method solar on ", L, " layers: expected an even count from ",
                    L + L % 2, " to ", 2 * L, " (2L − 2m layers: m dropped from the end of the first copy and the "
                    "start of the second)");
      }
      const int64_t m = (2 * L - N) / 2;
      for (int64_t i = 0; i < L - m; ++i) plan.push_back({i, false});
      for (int64_t i = m; i < L; ++i) plan.push_back({i, false});
      break;
    }
  }
  return plan;
}

TritterConfig expanded_config(const TritterConfig& c, int64_t new_layers) {
  TritterConfig g = c;
  g.num_hidden_layers = new_layers;
  g.model_size = "custom";
  g.validate();
  return g;
}

void expand_params(const TritterConfig& c, std::span<const float> in, const std::vector<ExpandedLayer>& plan,
                   std::span<float> out) {
  const TritterConfig g = expanded_config(c, static_cast<int64_t>(plan.size()));
  const std::vector<TensorInfo> src = tensor_table(c), dst = tensor_table(g);
  TRITTER_CHECK(static_cast<int64_t>(in.size()) == parameter_count(c), "expand: input of ", in.size(), " floats");
  TRITTER_CHECK(static_cast<int64_t>(out.size()) == parameter_count(g), "expand: output of ", out.size(), " floats");
  for (const TensorInfo& t : dst) {
    const TensorInfo* s = nullptr;
    bool zero = false;
    if (t.layer < 0) {
      s = find_tensor(src, t.name);
    } else {
      const ExpandedLayer& e = plan[static_cast<size_t>(t.layer)];
      TRITTER_CHECK(e.source >= 0 && e.source < c.num_hidden_layers, "expand: source layer ", e.source);
      for (const TensorInfo& u : src) {
        if (u.layer == e.source && u.kind == t.kind) s = &u;
      }
      zero = e.zeroed && (t.kind == "o_proj" || t.kind == "down_proj");
    }
    TRITTER_CHECK(s != nullptr && s->shape == t.shape, "expand: no source for ", t.name);
    float* o = out.data() + t.offset;
    if (zero) {
      std::fill(o, o + t.numel(), 0.0f);
    } else {
      std::memcpy(o, in.data() + s->offset, static_cast<size_t>(t.numel()) * sizeof(float));
    }
  }
}

}  // namespace tritter
