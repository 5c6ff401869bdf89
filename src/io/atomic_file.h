// Writing files so that a failure never leaves a half-written file under the final name: write to a temporary
// sibling (same directory, so rename is atomic), fsync, then rename over the target. An existing target stays
// untouched until the rename.
#pragma once
#include <cstddef>
#include <cstdint>
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
// The whole file; throws Error naming the path when it cannot be read, is not a regular file (a FIFO would block,
// /dev/zero never ends) or is larger than `max_bytes`.
std::string read_file_bytes(const std::filesystem::path& path, int64_t max_bytes);
std::string read_file_bytes(const std::filesystem::path& path);  // at most 1 TiB
// Throws Error "<what> 'PATH': not a regular file (found a FIFO ...)" unless `path` is one; never opens it.
void require_regular_file(const std::filesystem::path& path, const std::string& what);

// An exclusive lock on an output, held while the object lives: a directory's lock is DIR/.tritter-lock (kept), a
// file's is FILE.tritter-lock (removed on release). flock(2): the kernel drops it when the process dies, so a
// kill -9 never leaves an output locked. The lock file holds the owner's pid for the message a second run gets:
// "<who>: output 'X' is locked by pid N (another run writing it)".
class OutputLock {
 public:
  OutputLock() = default;
  OutputLock(const std::filesystem::path& output, bool is_directory, const std::string& who);
  ~OutputLock();
  OutputLock(OutputLock&& other) noexcept;
  OutputLock& operator=(OutputLock&& other) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  void release();
  int fd_ = -1;
  std::filesystem::path lock_path_;
  bool remove_on_release_ = false;
};
inline constexpr const char* kLockFileName = ".tritter-lock";

// Tritter's own temporaries in `dir` ("NAME.tmp-PID", "NAME.tmp-PID-N", "NAME.old-PID") whose process no longer
// runs, removed (files and directories); only names starting with `prefix` when it is not empty. Returns how many.
// What a killed or disk-full run left behind would otherwise hold its bytes forever.
int remove_stale_temporaries(const std::filesystem::path& dir, const std::string& prefix = "");

// Puts the finished directory `staged` at `target`: a plain rename when target does not exist, else an atomic
// exchange of the two (renameat2 RENAME_EXCHANGE) and then the old one removed, so `target` is always either the
// whole old directory or the whole new one.
void replace_dir_atomic(const std::filesystem::path& staged, const std::filesystem::path& target);

}  // namespace tritter
