#include "model/init.h"

#include <cmath>

#include "core/error.h"
#include "kernels/parallel.h"
#include "core/rng.h"

namespace tritter {

double init_std_for(const TritterConfig& c, const TensorInfo& info) {
  if (info.role == TensorRole::Norm) return 0.0;
  if (info.kind == "o_proj" || info.kind == "down_proj") {
    return c.init_std / std::sqrt(2.0 * static_cast<double>(c.num_hidden_layers));
  }
  return c.init_std;
}

void init_tensor(float* out, const TritterConfig& c, const TensorInfo& info, size_t index, uint64_t seed) {
  const int64_t n = info.numel();
  if (info.kind == "log_scale") {
    out[0] = static_cast<float>(std::log(c.cos_scale_init));
    return;
  }
  if (info.role == TensorRole::Norm) {
    for (int64_t i = 0; i < n; ++i) out[i] = 1.0f;
    return;
  }
  const double std = init_std_for(c, info);
  // splitmix-style mix so neighbouring seeds and indices give unrelated streams.
  Rng rng(seed * 0x9E3779B97F4A7C15ull + (index + 1) * 0xBF58476D1CE4E5B9ull);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(std * rng.normal());
}

void init_parameters(std::span<float> params, const TritterConfig& c, uint64_t seed) {
  const auto table = tensor_table(c);
  const int64_t total = table.empty() ? 0 : table.back().offset + table.back().numel();
  if (static_cast<int64_t>(params.size()) != total) {
    throw_error("init_parameters: buffer has ", params.size(), " floats, expected ", total);
  }
  parallel_for(0, static_cast<int64_t>(table.size()), [&](int64_t i, int) {
    init_tensor(params.data() + table[size_t(i)].offset, c, table[size_t(i)], size_t(i), seed);
  });
}

}  // namespace tritter
