// Output-directory lock, swap and cleanup (see dir_lock.h).
#include "io/dir_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"

namespace fs = std::filesystem;

namespace tritter {
namespace {

fs::path sibling(const fs::path& dir, const std::string& suffix) {
  return dir.parent_path() / ("." + dir.filename().string() + suffix);
}

bool pid_alive(long pid) { return pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno == EPERM); }

}  // namespace

DirLock::DirLock(const fs::path& dir, const std::string& who) {
  const fs::path lock = sibling(dir, ".lock");
  fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw_error(who, ": output '", dir.string(), "': cannot create the lock file ", lock.string(), ": ",
                std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      const long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
      throw_error(who, ": output '", dir.string(), "' is locked by ", pid > 0 ? "pid " + std::to_string(pid) : "a process",
                  " (another run is writing it); wait for it or choose another output");
    }
    throw_error(who, ": output '", dir.string(), "': cannot lock ", lock.string(), ": ", std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The pid is only for the message a second run prints; the lock holds without it.
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing drops the flock
}

fs::path staging_dir_for(const fs::path& dir) { return sibling(dir, ".tmp-" + std::to_string(::getpid())); }

void swap_dir_atomic(const fs::path& staged, const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(target, ec))) {
    fs::rename(staged, target);
    return;
  }
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(staged, ec);  // the old directory, now under the staging name
    return;
  }
  const int err = errno;
  if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP)
    throw_error("cannot swap '", staged.string(), "' into '", target.string(), "': ", std::strerror(err));
  const fs::path old = sibling(target, ".old-" + std::to_string(::getpid()));
  fs::remove_all(old, ec);
  fs::rename(target, old);
  fs::rename(staged, target);
  fs::remove_all(old, ec);
}

int remove_stale_staging(const fs::path& dir) {
  const std::string tmp_prefix = "." + dir.filename().string() + ".tmp-";
  const std::string old_prefix = "." + dir.filename().string() + ".old-";
  int handled = 0;
  std::error_code ec;
  std::vector<fs::path> entries;  // listed first: entries are renamed and removed below
  for (const auto& e : fs::directory_iterator(dir.parent_path(), ec)) entries.push_back(e.path());
  for (const fs::path& path : entries) {
    const std::string name = path.filename().string();
    const bool is_tmp = name.starts_with(tmp_prefix), is_old = name.starts_with(old_prefix);
    if (!is_tmp && !is_old) continue;
    const std::string pid_text = name.substr((is_tmp ? tmp_prefix : old_prefix).size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid == long(::getpid()) || pid_alive(pid)) continue;
    std::error_code rec;
    if (is_old && !fs::exists(fs::symlink_status(dir, rec)))
      fs::rename(path, dir, rec);  // a kill between the fallback's two renames: the old copy goes back
    else
      fs::remove_all(path, rec);
    ++handled;
  }
  return handled;
}

}  // namespace tritter
