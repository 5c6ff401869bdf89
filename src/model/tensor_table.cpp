#include "model/tensor_table.h"

#include "model/projections.h"

namespace tritter {

namespace {

void append_layer(std::vector<TensorInfo>& t, const TritterConfig& c, int i) {
  const int64_t D = c.hidden_size, F = c.intermediate_size, d = c.head_dim;
  const std::string p = "model.layers." + std::to_string(i) + ".";
  auto add = [&](const std::string& sub, const std::string& kind, Shape shape, TensorRole role) {
    t.push_back({p + sub, std::move(shape), role, i, kind, 0});
  };
  auto add_proj = [&](Proj q, Shape shape) {  // model.layers.N.<self_attn|mlp>.<name>.weight (O, I)
    add(std::string(proj_block(q)) + "." + proj_name(q) + ".weight", proj_name(q), std::move(shape),
        TensorRole::BitLinear);
  };
  add("input_layernorm.weight", "input_layernorm", {D}, TensorRole::Norm);
  add_proj(Proj::Q, {c.q_dim(), D});
  add_proj(Proj::K, {c.kv_dim(), D});
  add_proj(Proj::V, {c.kv_dim(), D});
  if (c.qk_norm) {
    add("self_attn.q_norm.weight", "q_norm", {d}, TensorRole::Norm);
    add("self_attn.k_norm.weight", "k_norm", {d}, TensorRole::Norm);
  }
  if (c.sub_norm) add("self_attn.attn_sub_norm.weight", "attn_sub_norm", {c.q_dim()}, TensorRole::Norm);
  add_proj(Proj::O, {D, c.q_dim()});
  if (c.post_norm == "both") add("post_attention_layernorm.weight", "post_attention_layernorm", {D}, TensorRole::Norm);
  add("pre_feedforward_layernorm.weight", "pre_feedforward_layernorm", {D}, TensorRole::Norm);
  if (c.gated_mlp()) add_proj(Proj::Gate, {F, D});
  add_proj(Proj::Up, {F, D});
  if (c.sub_norm) add("mlp.ffn_sub_norm.weight", "ffn_sub_norm", {F}, TensorRole::Norm);
  add_proj(Proj::Down, {D, F});
  if (c.post_norm != "none") {
    add("post_feedforward_layernorm.weight", "post_feedforward_layernorm", {D}, TensorRole::Norm);
  }
}

}  // namespace

std::vector<TensorInfo> tensor_table(const TritterConfig& c) {
  std::vector<TensorInfo> t;
  t.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, TensorRole::Embedding, -1, "embed_tokens", 0});
  for (int i = 0; i < c.num_hidden_layers; ++i) append_layer(t, c, i);
  t.push_back({"model.norm.weight", {c.hidden_size}, TensorRole::Norm, -1, "norm", 0});
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
