// Model specs and the memory planner (original.md §3.2–3.4, training-spec §5/§6/§9). Formulas in docs/memory.md;
// every Tritter figure is a call to the size function of the code that allocates it.
#include "plan/specs.h"

#include <algorithm>
#include <limits>
#include <map>

#include "core/error.h"
#include "infer/engine_sizes.h"
#include "infer/streaming_engine.h"
#include "kernels/ternary_matmul.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"
#include "train/lora.h"
#include "kernels/attention.h"
#include "train/dist.h"
#include "train/model.h"

namespace tritter {

namespace {

double gib(double bytes) { return bytes / kGiB; }

bool is_ternary(const TritterConfig& c, const TensorInfo& t) { return c.quant && t.role == TensorRole::BitLinear; }

// The original's accounting for any tensor: 2 bits per value, one fp32 scale.
int64_t all_packed_tensor_bytes(int64_t numel) { return (numel + 3) / 4 + 4; }
int64_t align64(int64_t n) { return (n + 63) / 64 * 64; }

std::string group_of(const TensorInfo& t) {
  switch (t.role) {
    case TensorRole::Embedding: return "embedding";
    case TensorRole::LmHead: return "lm_head";
    case TensorRole::Norm: return "norm";
    case TensorRole::BitLinear: break;
  }
  return (t.kind == "gate_proj" || t.kind == "up_proj" || t.kind == "down_proj") ? "mlp" : "attention";
}

// The original's act constants by layer count (rtx5080_feasibility).
double original_act(int64_t layers, double small, double mid, double big) {
  return layers <= 26 ? small : (layers <= 40 ? mid : big);
}

double original_kv32k_int4_gib(const TritterConfig& c) { return gib(original_kv_bytes(c, 1, 32768, 0.5)); }

// Finishes an rtx5080_feasibility line: base + kv(2048) + 0.5, falling back to kv(512) when over 15.5 GiB.
OriginalFeasibility original_fit(const TritterConfig& c, double base) {
  constexpr double kUsable = 15.5, kCudaOverhead = 0.5;
  const double kv32k = original_kv32k_int4_gib(c);
  OriginalFeasibility f{base + kv32k * 2048.0 / 32768.0 + kCudaOverhead, 2048, false};
  if (f.gib > kUsable) f = {base + kv32k * 512.0 / 32768.0 + kCudaOverhead, 512, false};
  f.fits = kUsable - f.gib >= 0;
  return f;
}

void require_positive(const char* where, const char* what, int64_t v) {
  if (v <= 0) throw_error(where, ": ", what, " ", v, " must be positive");
}

}  // namespace

// ---- The original's formulas ----------------------------------------------------------------------------------

int64_t original_param_count(const TritterConfig& c) {
  const int64_t H = c.hidden_size, L = c.num_hidden_layers, I = c.intermediate_size, V = c.vocab_size;
  const int64_t kvd = c.kv_dim();
  return V * H + L * (2 * H * H + 2 * H * kvd + 3 * H * I + 4 * H) + 2 * H + H * V;
}

int64_t original_packed_bytes(const TritterConfig& c) {
  const double P = static_cast<double>(original_param_count(c));
  return static_cast<int64_t>(P * 0.25 + (P / 4096.0) * 4.0);
}

int64_t original_kv_bytes(const TritterConfig& c, int64_t batch, int64_t seq, double bytes_per_value) {
  const double per_layer = 2.0 * static_cast<double>(batch) * static_cast<double>(seq) *
                           static_cast<double>(c.num_key_value_heads) * static_cast<double>(c.head_dim) *
                           bytes_per_value;
  return c.num_hidden_layers * static_cast<int64_t>(per_layer);
}

int64_t original_lora_params(const TritterConfig& c, int64_t rank, bool attention_only) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, r = rank;
  int64_t per_layer = 4 * (H * r + r * H);  // q, k, v, o, all taken as H → H
  if (!attention_only) per_layer += 2 * (H * r + r * I) + (I * r + r * H);  // gate, up, down
  return c.num_hidden_layers * per_layer;
}

OriginalFeasibility original_full_training(const TritterConfig& c) {
  const double P = static_cast<double>(original_param_count(c));
  const double act = original_act(c.num_hidden_layers, 1.5, 2.5, 4.0);
  return original_fit(c, 2 * P / kGiB + 2 * (4 * P / kGiB) + act);
}

OriginalFeasibility original_qlora(const TritterConfig& c, int64_t rank) {
  const double lora = static_cast<double>(original_lora_params(c, rank));
  const double lora_gib = lora * 2 / kGiB + lora * 2 / kGiB + lora * 8 / kGiB;  // fp16 w, fp16 grad, fp32 m, v
  const double act = original_act(c.num_hidden_layers, 1.0, 1.5, 2.5);
  return original_fit(c, gib(static_cast<double>(original_packed_bytes(c))) + lora_gib + act);
}

double original_check_kv128k_gib(const TritterConfig& c) {
  return 8.0 * gib(static_cast<double>(original_packed_bytes(c)));
}

// ---- Tritter's counts -----------------------------------------------------------------------------------------

std::vector<ComponentParams> component_params(const TritterConfig& c) {
  std::vector<ComponentParams> out;
  std::map<std::string, size_t> index;
  for (const auto& t : tensor_table(c)) {
    auto [it, inserted] = index.try_emplace(t.kind, out.size());
    if (inserted) out.push_back({t.kind, group_of(t), 0, 0});
    ComponentParams& p = out[it->second];
    p.total += t.numel();
    if (t.layer == 0) p.per_layer += t.numel();
  }
  return out;
}

int64_t ternary_param_count(const TritterConfig& c) {
  int64_t n = 0;
  for (const auto& t : tensor_table(c)) n += is_ternary(c, t) ? t.numel() : 0;
  return n;
}

int64_t fp_param_count(const TritterConfig& c) { return parameter_count(c) - ternary_param_count(c); }

int64_t weight_bytes(const TritterConfig& c, WeightStorage storage, HeadFormat head) {
  if (storage == WeightStorage::Packed && c.quant) return packed_model_bytes(c, PackOptions{head});
  int64_t bytes = 0;
  for (const auto& t : tensor_table(c)) {
    const int64_t n = t.numel();
    bytes += storage == WeightStorage::F16 ? 2 * n : storage == WeightStorage::AllPacked ? all_packed_tensor_bytes(n) : 4 * n;
  }
  return bytes;
}

int64_t layer_packed_bytes(const TritterConfig& c, int layer) {
  if (c.quant) return packed_layer_bytes(c, layer);
  int64_t bytes = 0;
  for (const auto& t : layer_tensors(c, layer)) bytes += 4 * t.numel();
  return bytes;
}

// ---- Memory items -------------------------------------------------------------------------------------------

int64_t total_bytes(const std::vector<MemoryItem>& items) {
  int64_t n = 0;
  for (const auto& i : items) n += i.bytes;
  return n;
}

int64_t training_scratch_bytes(const TritterConfig& c, int64_t B, int64_t T, int threads) {
  const AttnShape attn{B, T, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.sliding_window};
  const int64_t rope = 2 * T * (c.head_dim / 2) * static_cast<int64_t>(sizeof(float));
  return attention_scratch_floats(attn, std::max(1, threads)) * static_cast<int64_t>(sizeof(float)) + rope;
}

// ---- LoRA -----------------------------------------------------------------------------------------------------

namespace {
LoraConfig lora_config(int64_t rank, const std::vector<std::string>& targets) {
  require_positive("lora", "rank", rank);
  LoraConfig l;
  l.rank = rank;
  l.targets = targets;
  l.validate();
  return l;
}
}  // namespace

int64_t lora_param_count(const TritterConfig& c, int64_t rank, const std::vector<std::string>& targets) {
  const LoraConfig l = lora_config(rank, targets);
  return lora_num_params(lora_table(c, l), rank);
}

// ---- The planner ----------------------------------------------------------------------------------------------

PlanMode plan_mode_from_name(const std::string& name) {
  if (name == "infer") return PlanMode::Infer;
  if (name == "qlora") return PlanMode::Qlora;
  if (name == "train") return PlanMode::Train;
  throw_error("mode '", name, "' is unknown; expected one of infer, qlora, train");
}

const char* plan_mode_name(PlanMode mode) {
  switch (mode) {
    case PlanMode::Infer: return "infer";
    case PlanMode::Qlora: return "qlora";
    case PlanMode::Train: return "train";
  }
  return "?";
}

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// The engine's options as Engine resolves them (context, chunk ≤ context), with the plan's cache dtype.
EngineOptions engine_options(const TritterConfig& c, const PlanOptions& o) {
  EngineOptions e;
  e.context = o.context;
  e.kv_dtype = o.kv;
  e.max_batch = o.prefill_chunk;
  return resolve_engine_options(c, e);
}

std::vector<MemoryItem> plan_infer(const TritterConfig& c, const PlanOptions& o) {
  if (!c.quant) throw_error("plan: quant=false models have no packed form to infer with");
  const EngineOptions e = engine_options(c, o);
  const HeadFormat head = o.head;
  const int64_t kv = o.batch * static_cast<int64_t>(kv_cache_bytes(c, e.context, e.kv_dtype, e.max_batch));
  const int64_t engine = o.batch * static_cast<int64_t>(engine_buffer_bytes(c, e));
  const std::string kv_name = std::string("KV cache (") + kv_dtype_name(o.kv) + ", " + str(o.context) + " positions)";
  const std::string engine_name = "engine buffers (RoPE tables, chunk of " + str(e.max_batch) + ")";
  std::vector<MemoryItem> items;
  if (o.stream_group > 0 && 2 * o.stream_group < c.num_hidden_layers) {
    // What StreamingEngine allocates: no budget limit here, the fit check compares the total with the budget.
    const StreamingPlan p = plan_streaming(c, head, e, std::numeric_limits<int64_t>::max() / 4,
                                           static_cast<int>(o.stream_group), true);
    TRITTER_CHECK(p.fits, p.problem);
    items.push_back({"streamed layers (" + str(p.slots) + " buffers of a group of " + str(o.stream_group) + ")",
                     p.slots * p.slot_bytes, "plan_streaming: active + prefetched group; the head streams through them"});
    items.push_back({"final norm and the head's input (resident)", p.resident,
                     "plan_streaming; the embedding is read a row per token from the file"});
  } else {
    int64_t layers = 0;
    for (int i = 0; i < c.num_hidden_layers; ++i) layers += packed_layer_bytes(c, i);
    items.push_back({"layers (ternary tiles + β, fp32 gains)", layers, "packed_layer_bytes"});
    items.push_back({std::string("embedding, final norm, lm_head (") + (head == HeadFormat::I8 ? "int8 head" : head == HeadFormat::I4 ? "4-bit head" : "fp32") + ")",
                     packed_model_bytes(c, PackOptions{head}) - layers, "packed_model_bytes − the layers"});
  }
  items.push_back({kv_name, kv, "kv_cache_bytes (infer/kv_cache.h)"});
  items.push_back({engine_name, engine, "engine_buffer_bytes (infer/engine_sizes.h)"});
  return items;
}

std::string targets_name(const std::vector<std::string>& targets) {
  std::string s;
  for (const auto& t : targets) {
    if (!s.empty()) s += ',';
    s += t.substr(0, t.find('_'));
  }
  return s;
}

}  // namespace

std::vector<MemoryItem> plan_memory(const TritterConfig& c, const PlanOptions& o) {
  require_positive("plan", "context", o.context);
  require_positive("plan", "batch", o.batch);
  require_positive("plan", "prefill chunk", o.prefill_chunk);
  if (o.stream_group < 0) throw_error("plan: stream group ", o.stream_group, " must be >= 0 (0 = no streaming)");
  if (o.context > c.max_position_embeddings) {
    throw_error("plan: context ", o.context, " exceeds max_position_embeddings ", c.max_position_embeddings,
                "; expected at most ", c.max_position_embeddings);
  }
  if (o.mode == PlanMode::Infer) return plan_infer(c, o);
  if (o.ranks < 1) throw_error("plan: ranks: found ", o.ranks, ", expected >= 1");
  if (o.ranks > 1 && o.mode != PlanMode::Train) throw_error("plan: ranks > 1: data parallelism is for train only");
  if (o.batch < o.ranks) throw_error("plan: batch ", o.batch, " over ", o.ranks, " ranks: expected >= 1 sequence per rank");
  // Per rank (rank 0, which holds the largest shares): its rows of the global batch.
  const int64_t B = train::shard_range(o.batch, 0, o.ranks).size(), T = o.context;
  const std::string act_name = "activations (B=" + str(B) + ", T=" + str(T) + ", recompute " +
                               (o.recompute ? "on" : "off") + ")";
  const int threads = std::max(1, o.threads);
  const MemoryItem scratch{"attention scratch (" + str(threads) + (threads == 1 ? " thread" : " threads") +
                               ") and RoPE tables",
                           training_scratch_bytes(c, B, T, o.threads), "attention_scratch_floats + 2·T·(d/2)·4"};
  const int64_t P = parameter_count(c);
  std::vector<MemoryItem> items;
  if (o.mode == PlanMode::Train) {
    items.push_back({"weights (fp32 master)", 4 * P, "4·P"});
    items.push_back({"gradients (fp32)", 4 * P, "4·P"});
    if (o.ranks > 1 && o.zero1) {
      const int64_t shard = train::shard_range(P, 0, o.ranks).size();
      items.push_back({"AdamW m, v (fp32), ZeRO-1 shard 1/" + str(o.ranks), 8 * shard, "8·⌈P/ranks⌉"});
      items.push_back({"reduce-scatter receive scratch", train::dist_scratch_bytes(P, o.ranks),
                       "4·ranks·min(2²⁰, ⌈P/ranks⌉)"});
    } else {
      items.push_back({"AdamW m, v (fp32)", 8 * P, "8·P"});
      if (o.ranks > 1) {
        items.push_back({"reduce-scatter receive scratch", train::dist_scratch_bytes(P, o.ranks),
                         "4·ranks·min(2²⁰, ⌈P/ranks⌉)"});
      }
    }
    if (c.quant) {
      // As TrainModel's constructor allocates them (train/ has no size function for these; tests/plan checks the
      // sum against its accounting): the step's ternary weights as 64-aligned 2-bit tiles, their int8 levels,
      // and W̃ in fp32 for the sgemm dx.
      int64_t tiles = 0, levels = 0;
      for (const auto& t : tensor_table(c)) {
        if (t.role != TensorRole::BitLinear) continue;
        tiles += align64(static_cast<int64_t>(ternary_matrix_bytes(t.shape[0], t.shape[1])));
        levels += t.numel();
      }
      items.push_back({"ternary weights of the step (2-bit tiles + int8 levels)", tiles + levels,
                       "Σ tiles, 64-aligned, + 1 byte per BitLinear weight"});
      items.push_back({"dequantized BitLinear weights W̃ for dx (fp32)", 4 * levels,
                       "4 bytes per BitLinear weight (train --dx-kernel drops it)"});
    }
    items.push_back(scratch);
    items.push_back({act_name, train::train_activation_bytes(c, B, T, o.recompute), "train::train_activation_bytes"});
    return items;
  }
  if (!c.quant) throw_error("plan: quant=false models have no packed base for QLoRA");
  const LoraConfig lora = lora_config(o.lora_rank, o.lora_targets);
  const int64_t adapters = lora_num_params(lora_table(c, lora), lora.rank);
  const int64_t frozen_fp = 4 * fp_param_count(c);
  items.push_back({"ternary base, frozen (2-bit tiles + β)", packed_model_bytes(c, PackOptions{}) - frozen_fp,
                   "packed_model_bytes − the fp32 tensors"});
  items.push_back({"embedding + lm_head + gains, frozen (fp32)", frozen_fp, "4 bytes each"});
  items.push_back({"LoRA r=" + str(o.lora_rank) + " " + targets_name(o.lora_targets) + ": weights, grads, m, v (fp32)",
                   16 * adapters, "16 bytes × " + str(adapters) + " adapter parameters"});
  items.push_back(scratch);
  items.push_back({act_name, train::lora_activation_bytes(c, lora, B, T, o.recompute), "train::lora_activation_bytes"});
  return items;
}

}  // namespace tritter
