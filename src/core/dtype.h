// Element types and shapes shared by files, kernels and the model. Names are safetensors' dtype strings.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tritter {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);                          // "F32", "U8", ...
std::optional<DType> dtype_from_name(std::string_view name);  // nullopt for unknown names

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);      // 1 for a scalar []; throws Error on negative dims or overflow
std::string shape_str(const Shape& shape);    // "[1536, 512]"

// The index of the first NaN or ±Inf in p[0, n), or -1 when every value is finite (a bit test the compiler
// vectorizes: loaders scan whole embeddings with it).
int64_t first_non_finite(const float* p, int64_t n);

// A non-owning view of a tensor in memory; the owner is a Buffer or an mmap'd file.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::F32;
  Shape shape;

  int64_t numel() const { return shape_numel(shape); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

}  // namespace tritter
