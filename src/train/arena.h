// Carving one activation arena into 64-byte-aligned views. The same walk with a null base only counts bytes, so
// the size function and the allocation cannot disagree (DESIGN.md principle 4). Used by the full model and LoRA.
#pragma once
#include <cstdint>

namespace tritter::train {

class Carver {
 public:
  explicit Carver(uint8_t* base) : base_(base) {}
  template <typename T>
  T* take(int64_t count) {
    offset_ = (offset_ + 63) & ~static_cast<int64_t>(63);
    T* p = base_ ? reinterpret_cast<T*>(base_ + offset_) : nullptr;
    offset_ += count * static_cast<int64_t>(sizeof(T));
    return p;
  }
  int64_t bytes() const { return (offset_ + 63) & ~static_cast<int64_t>(63); }

 private:
  uint8_t* base_;
  int64_t offset_ = 0;
};

}  // namespace tritter::train
