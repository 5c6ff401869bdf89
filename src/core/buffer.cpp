#include "core/buffer.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "core/error.h"

namespace tritter {

const char* device_name(Device d) { return d == Device::Cuda ? "cuda" : "cpu"; }

bool device_available(Device d) { return d == Device::Cpu; }

Buffer::Buffer(size_t bytes, MemCategory category, MemoryAccount* account, Device device)
    : bytes_(bytes), category_(category), account_(account), device_(device) {
  if (!device_available(device)) {
    bytes_ = 0;
    throw_error("buffer: device '", device_name(device), "' is not available in this build (expected cpu)");
  }
  if (bytes == 0) return;
  // Only large requests read /proc/meminfo; a small one that fails is reported by the aligned_alloc check below.
  if (bytes >= (size_t{64} << 20)) {
    try {
      check_allocation(static_cast<double>(bytes), mem_category_name(category));
    } catch (...) {
      bytes_ = 0;
      throw;
    }
  }
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded);
  if (!data_) {
    throw_error("out of memory: could not allocate ", format_bytes(static_cast<double>(bytes)), " for ",
                mem_category_name(category));
  }
  std::memset(data_, 0, rounded);
  if (account_) account_->add(category_, static_cast<int64_t>(bytes_));
}

Buffer::~Buffer() { release(); }

void Buffer::release() {
  if (data_) {
    if (account_) account_->sub(category_, static_cast<int64_t>(bytes_));
    std::free(data_);
  }
  data_ = nullptr;
  bytes_ = 0;
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      category_(other.category_),
      account_(other.account_),
      device_(other.device_) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    category_ = other.category_;
    account_ = other.account_;
    device_ = other.device_;
  }
  return *this;
}

Buffer Buffer::clone() const {
  Buffer copy(bytes_, category_, account_, device_);
  if (bytes_) std::memcpy(copy.data_, data_, bytes_);
  return copy;
}

}  // namespace tritter
