// Output directories that are replaced whole: an exclusive lock against a concurrent writer, the atomic swap of a
// finished staging directory into place, and the removal of what killed runs left behind.
#pragma once
#include <filesystem>
#include <string>

namespace tritter {

// An exclusive flock(2) on PARENT/.NAME.lock, beside the directory rather than inside it: the directory itself is
// replaced by a rename, and a lock file inside it would be a different file after each swap. Held while the object
// lives; the kernel drops it when the process dies, so a kill -9 never leaves the directory locked. The lock file
// (kept: removing it would race with the next locker) holds the owner's pid for the message a second run gets:
// "<who>: output 'DIR' is locked by pid N (another run is writing it)".
class DirLock {
 public:
  DirLock(const std::filesystem::path& dir, const std::string& who);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

// PARENT/.NAME.tmp-PID: where a run stages `dir`'s replacement (a sibling, so the swap is a rename).
std::filesystem::path staging_dir_for(const std::filesystem::path& dir);

// Puts the complete directory `staged` (a sibling of `target`) at `target`. Absent target: one rename. Present:
// renameat2(RENAME_EXCHANGE), so `target` is at every instant either the whole old or the whole new directory, then
// the old one (now under the staging name) is removed. A filesystem without RENAME_EXCHANGE gets two renames via
// PARENT/.NAME.old-PID, which remove_stale_staging() puts back if a kill lands between them.
void swap_dir_atomic(const std::filesystem::path& staged, const std::filesystem::path& target);

// What killed runs left beside `dir`: staging directories (.NAME.tmp-PID) whose process is gone are removed, and
// an old copy (.NAME.old-PID) is moved back to `dir` when `dir` is missing, else removed. Call it holding the
// DirLock. Returns how many entries it handled.
int remove_stale_staging(const std::filesystem::path& dir);

}  // namespace tritter
