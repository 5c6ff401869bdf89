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

// An exclusive lock on an output (a file or a directory), held while the object lives. The lock file sits beside
// the output, PARENT/.NAME.lock, never inside it: a directory replaced by a rename would otherwise carry its lock
// away. flock(2): the kernel drops the lock when the process dies, so a kill -9 never leaves an output locked. The
// lock file holds the owner's pid for the message a second run gets ("<who>: output 'X' is locked by pid N
// (another run is writing it) ..."), and is removed on release; a locker that finds its file removed between open
// and flock locks the new one, so removal never lets two runs hold one output.
class OutputLock {
 public:
  OutputLock() = default;
  OutputLock(const std::filesystem::path& output, const std::string& who);
  ~OutputLock();
  OutputLock(OutputLock&& other) noexcept;
  OutputLock& operator=(OutputLock&& other) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  const std::filesystem::path& path() const { return lock_path_; }

 private:
  void release();
  int fd_ = -1;
  std::filesystem::path lock_path_;
};

// PARENT/.NAME.lock, where OutputLock locks `output`.
std::filesystem::path lock_path_for(const std::filesystem::path& output);
// PARENT/.NAME.tmp-PID: where a run stages the replacement of directory `dir` (a sibling, so the swap is a rename).
std::filesystem::path staging_dir_for(const std::filesystem::path& dir);

// Tritter's own temporaries in `dir` whose process no longer runs: "NAME.tmp-PID", "NAME.tmp-PID-N" (files and
// staging directories, hidden or not) are removed; ".NAME.old-PID" (the old copy replace_dir_atomic moves aside
// when the file system cannot exchange) is moved back to NAME when NAME is missing (a kill between its two
// renames), else removed. Only names starting with `prefix` when it is not empty. Returns how many it handled.
// What a killed or disk-full run left behind would otherwise hold its bytes forever.
int remove_stale_temporaries(const std::filesystem::path& dir, const std::string& prefix = "");

// Puts the finished directory `staged` (a sibling of `target`) at `target`: a plain rename when target does not
// exist, else an atomic exchange of the two (renameat2 RENAME_EXCHANGE) and then the old one removed, so `target`
// is always either the whole old directory or the whole new one. Without RENAME_EXCHANGE: two renames via
// PARENT/.NAME.old-PID, which remove_stale_temporaries puts back if a kill lands between them.
void replace_dir_atomic(const std::filesystem::path& staged, const std::filesystem::path& target);

}  // namespace tritter
