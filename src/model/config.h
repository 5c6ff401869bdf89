// TritterConfig: the single source of truth for a model's architecture and the runtime choices around it
// (training-spec §2 keys, HF-style). A config is built from a preset (`model_size`) plus explicit overrides — real
// optionals, so any value can be asked for (unlike the original's sentinel defaults) — and validated as a whole.
// Non-goals: training hyper-parameters (train/) and LoRA settings (train/lora).
#pragma once
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "kernels/ops.h"  // RopeScaling

namespace tritter {

// Architecture switches are enums, parsed once from their JSON strings (post_norm_from_name ...), never compared
// as strings in hot code.
// Where the post-attention / post-FFN RMSNorm sits: Ffn = after the MLP only (x + norm(ffn(x))), Both = also after
// attention, None = neither (BitNet's layer).
enum class PostNorm { Ffn, Both, None };
// The MLP activation: Relu2 = relu(up)² (two matrices), Relu2Glu = relu(gate)² ⊙ up (three matrices).
enum class MlpAct { Relu2, Relu2Glu };
// The output head: Linear = z = h Wᵀ (lm_head, or the embedding when tied); CosineTied = z_v = s·cos(h, E_v) over
// the embedding table with a learned scale s (docs/embedding-prediction.md), whose argmax is the KNN exit.
enum class HeadType { Linear, CosineTied };
// The auxiliary embedding-prediction loss: None, or Cosine = β·(1 − cos(h, sg(E_y))) beside the cross-entropy.
enum class EmbedPredLoss { None, Cosine };
PostNorm post_norm_from_name(const std::string& name);  // "ffn" | "both" | "none"; throws Error naming the field
MlpAct mlp_act_from_name(const std::string& name);      // "relu2" | "relu2_glu"
const char* post_norm_name(PostNorm p);
const char* mlp_act_name(MlpAct a);
HeadType head_type_from_name(const std::string& name);             // "linear" | "cosine_tied"
EmbedPredLoss embed_pred_loss_from_name(const std::string& name);  // "none" | "cosine"
const char* head_type_name(HeadType h);
const char* embed_pred_loss_name(EmbedPredLoss l);
// β at training progress p ∈ [0, 1] of an embed_pred_weight schedule: "0.1" (constant) or "β@p,β@p,..."
// (piecewise linear between the points, p increasing, held flat outside them). Throws Error on a malformed spec.
double embed_pred_beta(const std::string& schedule, double progress);

// X(type, json_key, default) for every field. One list drives the struct, the overrides, JSON in and out, and
// the "unknown key" check. Runtime choices (KV cache dtype, streaming, budgets) are engine options, not config.
#define TRITTER_MODEL_FIELDS(X)                                                 \
  X(int64_t, vocab_size, 264)                                                   \
  X(int64_t, hidden_size, 256)                                                  \
  X(int64_t, intermediate_size, 1024)                                           \
  X(int64_t, num_hidden_layers, 4)                                              \
  X(int64_t, num_attention_heads, 4)                                            \
  X(int64_t, num_key_value_heads, 4)                                            \
  X(int64_t, head_dim, 64)                                                      \
  X(int64_t, max_position_embeddings, 2048)                                     \
  X(double, rope_theta, 10000.0)                                                \
  X(double, rms_norm_eps, 1e-5)                                                 \
  X(double, quant_eps, 1e-5)                                                    \
  X(int64_t, act_bits, 8)                                                       \
  X(bool, quant, true)                                                          \
  X(bool, qk_norm, true)                                                        \
  X(bool, sub_norm, true)                                                       \
  X(PostNorm, post_norm, PostNorm::Ffn)                                         \
  X(MlpAct, mlp_act, MlpAct::Relu2)                                             \
  X(std::optional<int64_t>, sliding_window, std::nullopt)                       \
  X(bool, tie_word_embeddings, false)                                           \
  X(double, z_loss, 0.0)                                                        \
  X(double, init_std, 0.02)                                                     \
  X(RopeScaling, rope_scaling, RopeScaling{})                                   \
  X(HeadType, head_type, HeadType::Linear)                                      \
  X(double, cos_scale_init, 16.0)                                               \
  X(double, cos_scale_min, 1.0)                                                 \
  X(double, cos_scale_max, 100.0)                                               \
  X(EmbedPredLoss, embed_pred_loss, EmbedPredLoss::None)                        \
  X(std::string, embed_pred_weight, "0.1")                                      \
  X(bool, embed_pred_stopgrad, true)


// Stated maxima (docs/model-files.md, "Limits"): validate() refuses a config beyond them before anything is sized
// from it, so a small file or flag cannot ask for unbounded memory. Each is above every published model's value.
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 24;         // 16,777,216 tokens
inline constexpr int64_t kMaxHiddenSize = int64_t{1} << 16;        // 65,536
inline constexpr int64_t kMaxIntermediateSize = int64_t{1} << 18;  // 262,144
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxHeads = 1024;
inline constexpr int64_t kMaxHeadDim = 1024;
inline constexpr int64_t kMaxPositions = int64_t{1} << 24;         // 16,777,216 tokens of context
inline constexpr int64_t kMaxParameters = int64_t{1} << 40;        // ~1.1 T parameters

struct TritterConfig {
  std::string model_size = "custom";  // the preset it came from ("test", "7B", ...), informational
#define TRITTER_DECLARE_FIELD(type, name, def) type name = def;
  TRITTER_MODEL_FIELDS(TRITTER_DECLARE_FIELD)
#undef TRITTER_DECLARE_FIELD

  int64_t q_dim() const { return num_attention_heads * head_dim; }    // H·d
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }   // K·d
  int64_t gqa_group() const { return num_attention_heads / num_key_value_heads; }  // G = H/K
  bool gated_mlp() const { return mlp_act == MlpAct::Relu2Glu; }
  bool cosine_head() const { return head_type == HeadType::CosineTied; }
  bool operator==(const TritterConfig&) const = default;

  // Throws Error naming the field, the value found and the value expected; also every stated maximum above.
  void validate() const;
};
// The parameter count from the config's sizes alone, in double (no table is built, nothing can overflow).
double parameter_estimate(const TritterConfig& c);

// Every field optional: what a user (flags or a JSON file) asked for explicitly.
struct ConfigOverrides {
  std::optional<std::string> model_size;
#define TRITTER_DECLARE_OPTIONAL(type, name, def) std::optional<type> name;
  TRITTER_MODEL_FIELDS(TRITTER_DECLARE_OPTIONAL)
#undef TRITTER_DECLARE_OPTIONAL
};

// The preset names, smallest first: "test", "tiny", "small", "700M-shape", "2B-shape", "1B" ... "70B".
const std::vector<std::string>& preset_names();
// The original project's spec sizes 1B ... 70B (the `tritter specs` table).
const std::vector<std::string>& spec_size_names();
// The preset's config, validated. Throws Error listing the valid names.
TritterConfig preset_config(const std::string& model_size);

// Preset (overrides.model_size, or "custom" when absent) with the overrides applied on top. Fields that derive
// from others (head_dim = D/H, num_key_value_heads = H, intermediate_size = 4D) follow an overridden base field
// unless they are themselves given or the preset fixes them. A "custom" config needs hidden_size,
// num_hidden_layers and num_attention_heads. The result is validated.
TritterConfig resolve_config(const ConfigOverrides& overrides);

// JSON. `source` names the file (or "config") in error messages. Unknown keys and wrong types are errors.
ConfigOverrides config_overrides_from_json(const nlohmann::json& j, const std::string& source);
TritterConfig config_from_json(const nlohmann::json& j, const std::string& source);  // resolve + validate
TritterConfig load_config_file(const std::string& path);
// One JSON value as an integer field: an integer, or a float with an integral value, within int64's range (checked
// before any cast: 1e308 is an error, not undefined behaviour). Errors name `source`, `key`, the value and the
// expected type. json_to_number: any finite number. Every JSON number that becomes a C++ field goes through these.
int64_t json_to_int(const nlohmann::json& v, const std::string& source, const char* key);
double json_to_number(const nlohmann::json& v, const std::string& source, const char* key);
// nlohmann's exception text without its "[json.exception.parse_error.101] " prefix: what a user reads after the
// file name and key ("parse error at line 1, column 15: syntax error ...").
std::string json_error_text(const std::exception& e);
// model_only: just the model keys of training-spec §2 (+ max_position_embeddings), as checkpoints store them.
// The head and embedding-prediction keys (head_type ... embed_pred_stopgrad) are written only when one differs
// from its default, so a linear model's JSON is what it was before they existed.
nlohmann::json config_to_json(const TritterConfig& c, bool model_only = false);
void save_config_file(const TritterConfig& c, const std::string& path);  // atomic

}  // namespace tritter
