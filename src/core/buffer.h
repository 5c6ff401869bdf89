// Buffer: the one owner of a block of aligned memory, reporting its bytes to a MemoryAccount. Move-only;
// a deep copy is the named clone(). Everything else holds spans or TensorViews into it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/device.h"
#include "core/memory.h"

namespace tritter {

// n rounded up to a multiple of 64 bytes: the alignment of every Buffer and of the views carved out of one.
constexpr uint64_t align64(uint64_t n) { return (n + 63) / 64 * 64; }

class Buffer {
 public:
  static constexpr size_t kAlignment = 64;  // one cache line; also the widest SIMD load (AVX-512)

  Buffer() = default;
  // Zero-filled. `account` may be null (untracked); when given it must outlive the buffer. `device`: where the
  // bytes live (Error when this build has no such backend); data() of a device buffer is a device pointer.
  Buffer(size_t bytes, MemCategory category, MemoryAccount* account, Device device = Device::Cpu);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  Buffer clone() const;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  MemCategory category() const { return category_; }
  Device device() const { return device_; }

  template <typename T>
  std::span<T> as() { return {static_cast<T*>(data_), bytes_ / sizeof(T)}; }
  template <typename T>
  std::span<const T> as() const { return {static_cast<const T*>(data_), bytes_ / sizeof(T)}; }

 private:
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
  MemCategory category_ = MemCategory::Other;
  MemoryAccount* account_ = nullptr;
  Device device_ = Device::Cpu;
};

}  // namespace tritter
