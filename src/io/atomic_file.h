// Writing files so that a failure never leaves a half-written file under the final name: write to a temporary
// sibling (same directory, so rename is atomic), fsync, then rename over the target. An existing target stays
// untouched until the rename.
#pragma once
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace tritter {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);  // opens "<target>.tmp-<pid>-<n>"; throws Error naming the path
  ~AtomicFile();                                     // not committed: the temporary is removed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);  // throws Error (disk full, ...) naming the target
  void write(std::string_view text) { write(text.data(), text.size()); }
  size_t bytes_written() const { return written_; }
  void commit();  // flush, fsync, close, rename over the target

  const std::filesystem::path& target() const { return target_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::FILE* file_ = nullptr;
  size_t written_ = 0;
};

// The whole of `contents` to `path`, atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);
// The whole file; throws Error naming the path when it cannot be read.
std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace tritter
