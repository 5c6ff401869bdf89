// The packed inference file ("tritter-packed-v1", docs/model-files.md): safetensors with, per BitLinear
// `<prefix>.qweight` U8 in the kernels' T16 tile layout (kernels/ternary_matmul.h; shape [16·⌈O/16⌉, 4·⌈I/16⌉],
// i.e. the layout's bytes) and `<prefix>.weight_scale` F32 [1] = β = 1/σ (training-spec §2, microsoft/BitNet's
// name); every other table tensor as F32 under its checkpoint name; optionally an int8 LM head
// `lm_head.qweight` I8 (V, D) + `lm_head.row_scale` F32 (V) (also when embeddings are tied), or a 4-bit one
// (kernels/head.h) `lm_head.q4` U8 (V, 16·⌈D/32⌉) + `lm_head.group_mult` U8 (V, ⌈D/32⌉) + `lm_head.row_scale` F32
// (V). File order: U8 qweights first (64-byte multiples), then F32, then the head's byte tensors, so every F32 view
// is 4-aligned. `__metadata__`: format, config, qweight_layout "T16", head "f32"|"i8"|"i4".
// Design goals: load = mmap + validate (no copy, no repack); one validation path for files and in-memory models;
// streaming write (one fp32 tensor in memory at a time). Non-goals: quant=false models (no packed form yet).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "io/safetensors.h"
#include "kernels/head.h"
#include "kernels/ternary_matmul.h"
#include "model/config.h"
#include "model/layer_view.h"
#include "model/tensor_table.h"

namespace tritter {

inline constexpr const char* kPackedFormat = "tritter-packed-v1";

// Every level nibble of V rows of a stored 4-bit head in [1, 15] (levels ±7: the kernels' integer range relies on
// it) and the padding past D at 8 (level 0); else an Error naming `where`, the row (counted from row0), the column.
void check_head_i4_levels(const uint8_t* q4, int64_t V, int64_t D, int64_t row0, const std::string& where);
// Every group multiplier of V rows ≥ 1; else an Error naming `where`, the row (from row0) and the group.
void check_head_i4_mults(const uint8_t* mult, int64_t V, int64_t D, int64_t row0, const std::string& where);
HeadFormat head_format_from_name(const std::string& name);  // "f32" | "i8" | "i4"; throws Error
const char* head_format_name(HeadFormat f);
// The int8 head of rows w (V, D): per-row absmax levels q (V, D) in [−127, 127] and scales (V), w[v] ≈ q[v]·scale[v]
// (an all-zero row gets scale 1). Throws Error naming `where` and the row on a non-finite value. Threads over rows.
void quantize_head_rows(int8_t* q, float* scale, const float* w, int64_t V, int64_t D, const std::string& where);

// One layer of a packed model (model/layer_view.h): gains (D), (d), (H·d), (F) as f32 views, projections in the
// kernel layout; absent tensors are null (a projection's data null).
using LayerWeights = LayerSlots<const float*, TernaryMatrix>;

struct ModelWeights {
  TritterConfig config;
  const float* embed = nullptr;  // (V, D)
  std::vector<LayerWeights> layers;
  const float* final_norm = nullptr;  // (D)
  const float* log_scale = nullptr;   // (1): the cosine head's log s (head_type cosine_tied), else null
  HeadWeights head;
  // Bytes one decode step reads from the weights (all ternary matrices, norms, the head): the DRAM-roof numerator.
  size_t bytes_per_token = 0;
};

struct PackOptions {
  // A constructor rather than an aggregate: PackOptions{HeadFormat::I8} stays the common spelling.
  PackOptions(HeadFormat head_format = HeadFormat::F32, std::string tokenizer = {}, bool bos = false,
              std::string chat = {})
      : head(head_format), tokenizer_json(std::move(tokenizer)), add_bos(bos), chat_template(std::move(chat)) {}
  HeadFormat head = HeadFormat::F32;
  std::string tokenizer_json;  // the model's tokenizer.json text, stored in the file; "" for the byte tokenizer
  bool add_bos = false;        // prompts start with <bos> (the tokenizer's; Tritter's trainer adds none)
  std::string chat_template;   // the tokenizer's chat template (a converted HF/GGUF model's), "" for none
  // How the qweights are stored (metadata qweight_layout "T16" or "T20"; kernels/ternary_matmul.h): T20 files are
  // 20 % smaller in their ternary bytes and are mapped as they are; an engine that runs T16 re-lays them at load.
  TernaryLayout layout = TernaryLayout::T16;
};

// Produces the fp32 values of table tensor `index` (info) into out (info.numel()).
using TensorProducer = std::function<void(float* out, const TensorInfo& info, size_t index)>;

// The packed file's __metadata__: format, config, qweight_layout, head, add_bos_token and the tokenizer if any.
std::map<std::string, std::string> packed_metadata(const TritterConfig& config, const PackOptions& options);

// Writes the packed file atomically, producing one tensor at a time. Throws Error on non-finite weights.
void write_packed_model(const std::filesystem::path& path, const TritterConfig& config, const TensorProducer& produce,
                        const PackOptions& options);
// Convenience over a flat parameter buffer (tensor-table order), e.g. a loaded checkpoint.
void pack_checkpoint(const std::filesystem::path& path, const TritterConfig& config, std::span<const float> params,
                     const PackOptions& options);

// Bytes of the packed file's tensor data (what PackedModel::in_memory allocates and an opened file maps, header
// aside), from the same file plan the writer follows; and of the tensors of one layer (qweights, β, gains).
int64_t packed_model_bytes(const TritterConfig& config, const PackOptions& options);
// A packed file's qweight_layout (T16 or T20; an Error naming the file and the value otherwise).
TernaryLayout qweight_layout_of(const SafeTensorsFile& file);
// Throws Error (where: "file 'x': tensor 'y'") naming the first byte of p[0, n) that is no T20 code.
void check_t20_codes(const uint8_t* p, size_t n, const std::string& where);
int64_t packed_layer_bytes(const TritterConfig& config, int layer, TernaryLayout layout = TernaryLayout::T16);

class PackedModel {
 public:
  // Maps and validates a packed file: format, config, every tensor's presence, dtype and shape, no extras, finite
  // positive scales, no code 11 in any qweight. Errors name the file and tensor.
  static PackedModel open(const std::filesystem::path& path);
  // The same tensors built in memory (tests, `bench model`), validated the same way.
  static PackedModel in_memory(const TritterConfig& config, const TensorProducer& produce, const PackOptions& options,
                               MemoryAccount* account);

  // Weights bound by another loader (model/model_files.h: HF folders, GGUF files); `owned` holds every byte the
  // views of `weights` point to.
  static PackedModel adopt(std::vector<Buffer> owned, std::unique_ptr<ModelWeights> weights);

  const ModelWeights& weights() const { return *weights_; }
  // Runs the head in int8 from now on: the f32 rows (a cosine head's unit rows) quantized by quantize_head_rows
  // into buffers the model holds; an f32 head buffer the model owns is freed unless it is the embedding. No-op
  // for an int8 head. bytes_per_token follows.
  void quantize_head_int8(MemoryAccount* account);
  // The same for the 4-bit head (kernels/head.h), from the f32 rows or from an int8 head's values. No-op for an
  // i4 head.
  void quantize_head_int4(MemoryAccount* account);
  // Runs every BitLinear matrix in `layout` from now on (kernels/ternary_matmul.h; T20 reads 20 % fewer bytes per
  // token), re-laid out into buffers the model holds. The old bytes are let go: owned buffers freed, a mapped
  // file's pages dropped from the resident set, so memory holds one copy. No-op when already in `layout`;
  // bytes_per_token follows.
  void use_ternary_layout(TernaryLayout layout, MemoryAccount* account);
  const TritterConfig& config() const { return weights_->config; }
  const SafeTensorsFile* file() const { return file_.get(); }  // null for in-memory models

 private:
  std::unique_ptr<SafeTensorsFile> file_;
  std::vector<Buffer> owned_;
  std::unique_ptr<ModelWeights> weights_;
};

// The cosine head's scale s = clamp(exp(log_scale), cos_scale_min, cos_scale_max) (head_type cosine_tied).
float cosine_head_scale(const TritterConfig& config, float log_scale);
// Binds the cosine head of `w` (head_type cosine_tied; no-op otherwise): head.cos_scale from log_scale and, for
// an f32 head, head.f32 = the unit rows of the embedding computed into `unit` (V·D floats). An int8 head's rows
// are already unit (the writer quantizes Ê). Every loader calls it once the views are bound.
void bind_cosine_head(ModelWeights& w, Buffer& unit, MemoryAccount* account);

// The matrix of projection `p` in `layer` (gate's data is null unless relu2_glu).
TernaryMatrix& layer_matrix(LayerWeights& layer, Proj p);
const TernaryMatrix& layer_matrix(const LayerWeights& layer, Proj p);
// The field of `layer` that holds the tensor of table kind `kind` ("q_proj", "input_layernorm", ...); nullptr for
// a kind of the other family. Loading, streaming and LoRA bind tensors through these two.
TernaryMatrix* layer_matrix_slot(LayerWeights& layer, const std::string& kind);
const float** layer_norm_slot(LayerWeights& layer, const std::string& kind);

// Whether prompts start with <bos>: the file's "add_bos_token" (the name of Hugging Face's tokenizer_config key).
// Tritter writes "false": its trainer starts documents without <bos> (each ends with <eos>), so <bos> is a token
// the model never saw. Files without the key (written before it existed) get true.
bool packed_add_bos(const SafeTensorsFile& file);
// A checkpoint's add_bos_token (written by `train --tokenizer` runs); absent: false, as Tritter's trainer adds none.
bool checkpoint_add_bos(const SafeTensorsFile& file);
// How `pack` and `export` write a checkpoint: `head`, and the checkpoint's own tokenizer and add_bos_token.
PackOptions checkpoint_pack_options(const SafeTensorsFile& checkpoint, HeadFormat head);

// A Tritter file's own tokenizer (packed files and checkpoints of a model trained with `train --tokenizer`): the
// tokenizer.json text under __metadata__ key "tokenizer", so the file is the whole model, text included. "" when
// the file uses the byte tokenizer.
inline constexpr const char* kTokenizerMetadataKey = "tokenizer";
inline constexpr const char* kChatTemplateMetadataKey = "chat_template";  // beside it, when the model has one
std::string tritter_file_tokenizer_json(const SafeTensorsFile& file);

// "<prefix>.qweight" for "<prefix>.weight".
std::string qweight_name(const std::string& weight_name);
std::string weight_scale_name(const std::string& weight_name);

}  // namespace tritter
