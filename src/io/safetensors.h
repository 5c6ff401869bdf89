// safetensors files (huggingface/safetensors; ecosystem.md §2.1): an 8-byte little-endian header length N, N bytes
// of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data.
// The reader maps the file and checks every rule of the format before handing out a pointer; the writer is
// atomic (io/atomic_file.h), pads the header with spaces so the data starts 8-aligned, and keeps the given order.
// Design goals: one reader for every command (checkpoints, packed models, batches); errors that name the file,
// the tensor and the value found vs expected; never a crash on a hostile file (tests/fuzz). Non-goals: sharded
// index files, dtypes outside core/dtype.h (F8, U16, ...: rejected as unsupported).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "io/mapped_file.h"

namespace tritter {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;  // safetensors' MAX_HEADER_SIZE

struct SafeTensor {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0;            // data_offsets, relative to the start of the data region
  uint64_t end = 0;              // one past the last byte
  const uint8_t* data = nullptr; // into the mapping; aligned only as the file's layout makes it (see aligned())

  size_t bytes() const { return static_cast<size_t>(end - begin); }
  int64_t numel() const { return shape_numel(shape); }
  bool aligned(size_t alignment) const { return reinterpret_cast<uintptr_t>(data) % alignment == 0; }
};

class SafeTensorsFile {
 public:
  // Maps and validates `path`. Throws Error "file '<path>': ..." on any violation of the format.
  explicit SafeTensorsFile(const std::filesystem::path& path);
  // Validates an in-memory image (tests, the fuzzer). `bytes` must outlive the object; `source` names it in errors.
  SafeTensorsFile(const uint8_t* bytes, size_t size, std::string source);

  const std::string& source() const { return source_; }
  // In file order (ascending offsets).
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The metadata value, or throws "file 'x': __metadata__ has no 'key'".
  const std::string& metadata_value(const std::string& key) const;
  size_t header_bytes() const { return header_bytes_; }  // N
  size_t file_bytes() const { return size_; }
  // Whether p points into this object's own file mapping (false for an in-memory image).
  bool maps(const void* p) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return map_.data() != nullptr && b >= map_.data() && b < map_.data() + map_.size();
  }

  const SafeTensor* find(std::string_view name) const;  // nullptr when absent
  // The tensor, or throws "file 'x': tensor 'name' is missing".
  const SafeTensor& get(std::string_view name) const;
  // get() and check dtype and shape: "file 'x': tensor 'y': shape [512, 128], expected [1536, 512]".
  const SafeTensor& expect(std::string_view name, DType dtype, const Shape& shape) const;

 private:
  void parse(const uint8_t* bytes, size_t size);
  MappedFile map_;
  std::string source_;
  size_t size_ = 0;
  size_t header_bytes_ = 0;
  std::vector<SafeTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: either `data` (exactly numel·dtype_size bytes) or `fill`, which must write exactly that many
// bytes to the sink it is given (streaming producers: init and pack of multi-GB models).
struct SafeTensorOut {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const void* data = nullptr;
  std::function<void(const std::function<void(const void*, size_t)>& sink)> fill;
};

// Writes `tensors` in the given order, atomically (an existing `path` is untouched on any error). Throws Error on
// duplicate or empty names, "__metadata__" as a tensor name, or a fill that writes the wrong byte count.
void write_safetensors(const std::filesystem::path& path, const std::vector<SafeTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace tritter
