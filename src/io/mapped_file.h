// A read-only memory map of a whole file (POSIX mmap, MAP_PRIVATE). Move-only owner; views into it stay valid
// while it lives. Weights are read straight from the page cache, never copied at load (io/safetensors.h).
// Non-goals: writing through the map, Windows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace tritter {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::filesystem::path& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void release();
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;  // null for an empty file
  size_t size_ = 0;
};

}  // namespace tritter
