// Full-precision checkpoints (training-spec §2): safetensors with one F32 tensor per entry of the tensor table,
// named as the spec says, and `__metadata__` {format: "tritter-v1", config: <model keys as JSON>}, so a checkpoint
// written by another implementation of the spec loads as is. Loading checks every tensor's presence, dtype and
// shape against the table built from the file's own config, and rejects tensors the table does not know.
// Non-goals: optimizer state and training progress (train/), packed inference files (model/packed_model.h).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>

#include "core/buffer.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/tensor_table.h"

namespace tritter {

inline constexpr const char* kCheckpointFormat = "tritter-v1";

// Writes params (parameter_count floats, tensor-table order and offsets) atomically. `extra_metadata` is added to
// __metadata__ (it may not override format or config).
// `dtype` F32 (default), BF16 or F16 (rounded to nearest even: half the size, for sharing and other tools).
void save_checkpoint(const std::filesystem::path& path, const TritterConfig& config, std::span<const float> params,
                     const std::map<std::string, std::string>& extra_metadata = {}, DType dtype = DType::F32);

// Streaming form: produce(out, info, index) fills table tensor `index` (info.numel() floats); one tensor in memory
// at a time (`tritter init` of multi-GB models).
void save_checkpoint_streaming(const std::filesystem::path& path, const TritterConfig& config,
                               const std::function<void(float*, const TensorInfo&, size_t)>& produce,
                               const std::map<std::string, std::string>& extra_metadata = {});

// The config stored in a safetensors file's __metadata__ (format must be `expected_format`). Errors name the file.
TritterConfig config_from_metadata(const SafeTensorsFile& file, const std::string& expected_format);

// Checks every table tensor's presence, dtype (F32, BF16 or F16) and shape, and that there are no others. Errors name the file.
void check_checkpoint_tensors(const SafeTensorsFile& file, const TritterConfig& config);

// Copies every table tensor of `file` into params (parameter_count(config) floats), checking names, dtypes
// (F32, BF16 or F16, converted to f32) and shapes against the table; extra tensors are an error too.
void load_checkpoint_tensors(const SafeTensorsFile& file, const TritterConfig& config, std::span<float> params);

// One checked tensor of a checkpoint as f32 (out: info.numel()), whatever its float dtype.
void checkpoint_tensor_values(const SafeTensorsFile& file, const TensorInfo& info, float* out);

// Throws Error naming the file, the tensor and the element when a value of `params` is NaN or ±Inf.
void check_finite_tensors(const std::string& source, const TritterConfig& config, std::span<const float> params);

struct Checkpoint {
  TritterConfig config;
  Buffer params;  // (parameter_count) f32, tensor-table order
};
// Reads a checkpoint: config from the metadata, the tensors checked against the file before the buffer is
// allocated, then load_checkpoint_tensors and check_finite_tensors (a NaN weight is named here, not found later
// as empty text). Resuming training reads with load_checkpoint_tensors, where a non-finite step is counted.
// `account` may be null.
Checkpoint load_checkpoint(const std::filesystem::path& path, MemoryAccount* account);

}  // namespace tritter
