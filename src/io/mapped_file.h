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

// Hands the whole pages inside [p, p + n) of a read-only file mapping back to the kernel (madvise DONTNEED): they
// leave the resident set and would be read from the file again if touched. For bytes a loader has copied into
// another form (a re-laid-out matrix) and will not read again. A no-op on an empty range; never an error.
void drop_mapped_pages(const void* p, size_t n);

}  // namespace tritter
