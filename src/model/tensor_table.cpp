#include "model/tensor_table.h"

#include "model/layer_view.h"

namespace tritter {

namespace {

void append_layer(std::vector<TensorInfo>& t, const TritterConfig& c, int i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
#define TRITTER_TABLE_ROW(field, kind, suffix, is_proj, present, rows, cols)                                       \
  if (present) {                                                                                                  \
    t.push_back({p + suffix, is_proj ? Shape{rows, cols} : Shape{rows},                                           \
                 is_proj ? TensorRole::BitLinear : TensorRole::Norm, i, kind, 0});                                \
  }
  TRITTER_LAYER_TENSORS(TRITTER_TABLE_ROW)
#undef TRITTER_TABLE_ROW
}

}  // namespace

std::vector<TensorInfo> tensor_table(const TritterConfig& c) {
  std::vector<TensorInfo> t;
  t.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, TensorRole::Embedding, -1, "embed_tokens", 0});
  for (int i = 0; i < c.num_hidden_layers; ++i) append_layer(t, c, i);
  t.push_back({"model.norm.weight", {c.hidden_size}, TensorRole::Norm, -1, "norm", 0});
  // The cosine head's learned scale, stored as log s (s = clamp(exp(log s), cos_scale_min, cos_scale_max)): a
  // 1-D fp tensor, so no weight decay and every loader and writer treats it as it treats a gain.
  if (c.cosine_head()) t.push_back({"lm_head.log_scale", {1}, TensorRole::Norm, -1, "log_scale", 0});
  if (!c.tie_word_embeddings) {
    t.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}, TensorRole::LmHead, -1, "lm_head", 0});
  }
  int64_t offset = 0;
  for (auto& info : t) {
    info.offset = offset;
    offset += info.numel();
  }
  return t;
}

std::vector<TensorInfo> layer_tensors(const TritterConfig& c, int layer) {
  std::vector<TensorInfo> out;
  for (auto& info : tensor_table(c)) {
    if (info.layer == layer) out.push_back(std::move(info));
  }
  return out;
}

int64_t parameter_count(const TritterConfig& c) {
  int64_t n = 0;
  for (const auto& info : tensor_table(c)) n += info.numel();
  return n;
}

const TensorInfo* find_tensor(const std::vector<TensorInfo>& table, const std::string& name) {
  for (const auto& info : table) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

}  // namespace tritter
