// GGUF v3 files (ggml's container, docs/formats.md): "GGUF", version 3, tensor and key-value counts, typed
// key-values, tensor infos (name, dims ne[0] innermost, ggml type, offset), padding to general.alignment, then
// the data. The reader maps the file and checks every bound before handing out a pointer; the writer is atomic.
// Design goals: the same guarantees as io/safetensors.h (errors name the file and the key or tensor, never a
// crash on a hostile file: tests/fuzz/gguf_fuzz.cpp). Non-goals: what the tensors mean (model/gguf_model.h) and
// decoding block formats (kernels/block_quant.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/mapped_file.h"

namespace tritter {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as u32 LE
inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr size_t kGgufMaxName = 64;  // GGML_MAX_NAME: a tensor name is shorter
inline constexpr int kGgufMaxDims = 4;      // GGML_MAX_DIMS

enum class GgufValueType : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };
const char* gguf_value_type_name(GgufValueType t);

// A metadata value. Integers keep their type; `u`/`i`/`f` hold the number, `s` a string, `array` the elements
// (all of type `elem`; arrays may nest).
struct GgufValue {
  GgufValueType type = GgufValueType::U32;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  GgufValueType elem = GgufValueType::U8;
  std::vector<GgufValue> array;

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue str(std::string v);
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue i32s(const std::vector<int32_t>& v);
  static GgufValue f32s(const std::vector<float>& v);

  bool is_integer() const;
  bool is_number() const { return is_integer() || type == GgufValueType::F32 || type == GgufValueType::F64; }
  int64_t as_int() const;     // any integer type (throws Error on a u64 above INT64_MAX)
  double as_double() const;   // any number
};

// ggml tensor types (ids of ggml.h's enum ggml_type) with their block geometry.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9, Q2_K = 10, Q3_K = 11, Q4_K = 12,
  Q5_K = 13, Q6_K = 14, Q8_K = 15, IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34,
  TQ2_0 = 35, I2_S = 36, MXFP4 = 39,
};
struct GgmlTypeInfo {
  const char* name;
  int64_t block;   // elements per block along ne[0]
  int64_t bytes;   // bytes per block
};
// nullptr for an id that is removed, reserved or unknown. I2_S (36) is microsoft/BitNet's fork type: upstream
// treats the id as removed; its size is numel/4 + 32 (a 32-byte tail holds the scale), not a block multiple.
const GgmlTypeInfo* ggml_type_info(uint32_t id);
// Bytes of a tensor of `type` with dims `ne` (ne[0] innermost); throws Error on overflow or ne[0] not a multiple
// of the block. `where` names the tensor in errors.
uint64_t ggml_tensor_bytes(GgmlType type, const std::vector<int64_t>& ne, const std::string& where);

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;  // ne[0] innermost (the reverse of a PyTorch shape)
  uint64_t offset = 0;      // from the start of the data section
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;

  int64_t numel() const;
};

class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);  // maps and validates; Error "file '<path>': ..."
  GgufFile(const uint8_t* bytes, size_t size, std::string source);  // `bytes` must outlive the object

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  size_t file_bytes() const { return size_; }
  // In file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  const GgufValue* find_value(std::string_view key) const;  // nullptr when absent
  const GgufValue& value(std::string_view key) const;       // throws "file 'x': metadata has no key 'k'"
  // Typed look-ups: throw naming the key, the type found and the type expected.
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_number(std::string_view key) const;
  const GgufTensor* find(std::string_view name) const;
  const GgufTensor& get(std::string_view name) const;  // throws "file 'x': tensor 'n' is missing"

 private:
  void parse(const uint8_t* bytes, size_t size);
  MappedFile map_;
  std::string source_;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// One tensor to write: `data` (exactly ggml_tensor_bytes bytes) or `fill`, which writes exactly that many bytes
// to its sink (streaming producers).
struct GgufTensorOut {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;
  const void* data = nullptr;
  std::function<void(const std::function<void(const void*, size_t)>& sink)> fill;
};

// Writes a GGUF v3 file atomically (an existing `path` is untouched on error). `general.alignment`, when in
// `metadata`, must be a U32 power of two and is used; otherwise 32. Throws Error on duplicate keys or tensor
// names, names of 64 bytes or more, a wrong byte count from `fill`.
void write_gguf(const std::filesystem::path& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorOut>& tensors);

}  // namespace tritter
