#include "io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "core/error.h"

namespace tritter {

namespace {
std::atomic<unsigned> temp_counter{0};  // distinct temporaries for concurrent writers in one process
}

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  temp_ = target_;
  temp_ += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(temp_counter.fetch_add(1));
  file_ = std::fopen(temp_.c_str(), "wb");
  if (!file_) throw_error("cannot write '", target_.string(), "': ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t bytes) {
  TRITTER_CHECK(file_ != nullptr, "write after commit to ", target_.string());
  if (bytes && std::fwrite(data, 1, bytes, file_) != bytes) {
    throw_error("writing '", target_.string(), "' failed after ", written_, " bytes: ", std::strerror(errno));
  }
  written_ += bytes;
}

void AtomicFile::commit() {
  TRITTER_CHECK(file_ != nullptr, "double commit of ", target_.string());
  const bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int err = errno;
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  if (!ok) {
    std::filesystem::remove(temp_, ec);
    throw_error("writing '", target_.string(), "' failed: ", std::strerror(err));
  }
  std::filesystem::rename(temp_, target_, ec);
  if (ec) {
    const std::string why = ec.message();  // before remove() reuses ec (it said "Success")
    std::error_code ignored;
    std::filesystem::remove(temp_, ignored);
    throw_error("cannot rename temporary file '", temp_.string(), "' to '", target_.string(), "': ", why);
  }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

namespace {
const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO, which would block";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}
}  // namespace

void require_regular_file(const std::filesystem::path& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_error(what, " '", path.string(), "': ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    throw_error(what, " '", path.string(), "': not a regular file (found ", file_kind(st.st_mode),
                "), expected a regular file");
  }
}

std::string read_file_bytes(const std::filesystem::path& path) { return read_file_bytes(path, int64_t{1} << 40); }

std::string read_file_bytes(const std::filesystem::path& path, int64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_error("cannot read '", path.string(), "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    if (!S_ISREG(st.st_mode) && st.st_mode != 0) {
      throw_error("cannot read '", path.string(), "': not a regular file (found ", file_kind(st.st_mode),
                  "), expected a regular file");
    }
    throw_error("cannot read '", path.string(), "': ", std::strerror(err));
  }
  if (st.st_size > max_bytes) {
    ::close(fd);
    throw_error("cannot read '", path.string(), "': ", st.st_size, " bytes, expected at most ", max_bytes);
  }
  // Only the size fstat saw: a file that grows while it is read cannot make the read unbounded.
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw_error("cannot read '", path.string(), "' after ", got, " bytes: ", std::strerror(err));
    }
    if (n == 0) break;  // shrank while read
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

// ---------------------------------------------------------------- output locks and temporaries

namespace {
// The output's own name and its parent, with "x/", "." and ".." resolved: "runs/a/" is locked as runs/.a.lock.
std::pair<std::filesystem::path, std::string> parent_and_name(const std::filesystem::path& output) {
  std::filesystem::path p = std::filesystem::absolute(output).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return {p.parent_path(), p.filename().string()};
}

std::filesystem::path hidden_sibling(const std::filesystem::path& output, const std::string& suffix) {
  const auto [parent, name] = parent_and_name(output);
  return parent / ("." + name + suffix);
}
}  // namespace

std::filesystem::path lock_path_for(const std::filesystem::path& output) { return hidden_sibling(output, ".lock"); }

std::filesystem::path staging_dir_for(const std::filesystem::path& dir) {
  return hidden_sibling(dir, ".tmp-" + std::to_string(::getpid()));
}

OutputLock::OutputLock(const std::filesystem::path& output, const std::string& who) {
  lock_path_ = lock_path_for(output);
  for (;;) {
    fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw_error(who, ": output '", output.string(), "': cannot create the lock file '", lock_path_.string(),
                  "': ", std::strerror(errno));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      fd_ = -1;
      if (err == EWOULDBLOCK) {
        const long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
        throw_error(who, ": output '", output.string(), "' is locked by ",
                    pid > 0 ? "pid " + std::to_string(pid) : std::string("another process"),
                    " (another run is writing it); expected an output no other run holds: wait for it or choose "
                    "another output");
      }
      throw_error(who, ": output '", output.string(), "': cannot lock '", lock_path_.string(), "': ",
                  std::strerror(err));
    }
    // The holder before us removes its file on release: if ours was removed between open and flock, we hold an
    // unlinked inode that a third run would not see, so lock the file now at the path instead.
    struct stat held {}, named {};
    if (::fstat(fd_, &held) == 0 && ::stat(lock_path_.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      break;
    }
    ::close(fd_);
    fd_ = -1;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    release();
    throw_error(who, ": output '", output.string(), "': cannot write the lock file '", lock_path_.string(), "': ",
                std::strerror(err));
  }
}

OutputLock::~OutputLock() { release(); }

OutputLock::OutputLock(OutputLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), lock_path_(std::move(other.lock_path_)) {}

OutputLock& OutputLock::operator=(OutputLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    lock_path_ = std::move(other.lock_path_);
  }
  return *this;
}

void OutputLock::release() {
  if (fd_ < 0) return;
  std::error_code ec;
  std::filesystem::remove(lock_path_, ec);  // unlinked while still held: a waiting locker sees it and retries
  ::close(fd_);
  fd_ = -1;
}

namespace {
// The pid in a temporary's name ("x.tmp-123", "x.tmp-123-4", ".x.old-123") and whether it is an old copy, or
// pid 0 when it is not one of ours.
std::pair<long, bool> temporary_pid(const std::string& name) {
  for (const char* tag : {".tmp-", ".old-"}) {
    const size_t at = name.rfind(tag);
    if (at == std::string::npos) continue;
    const std::string rest = name.substr(at + 5);
    const size_t dash = rest.find('-');
    const std::string pid = rest.substr(0, dash);
    const std::string counter = dash == std::string::npos ? "" : rest.substr(dash + 1);
    const auto digits = [](const std::string& s) {
      return !s.empty() && s.size() < 12 && s.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits(pid) || (dash != std::string::npos && !digits(counter))) continue;
    return {std::strtol(pid.c_str(), nullptr, 10), tag[1] == 'o'};
  }
  return {0, false};
}

bool process_alive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }
}  // namespace

int remove_stale_temporaries(const std::filesystem::path& dir, const std::string& prefix) {
  std::error_code ec;
  std::vector<std::filesystem::path> entries;  // listed first: entries are renamed and removed below
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (prefix.empty() || name.rfind(prefix, 0) == 0) entries.push_back(it->path());
  }
  int handled = 0;
  for (const std::filesystem::path& path : entries) {
    const std::string name = path.filename().string();
    const auto [pid, old_copy] = temporary_pid(name);
    if (pid <= 0 || pid == ::getpid() || process_alive(pid)) continue;
    std::error_code rm;
    const std::filesystem::path original =
        old_copy && name.size() > 1 && name[0] == '.' ? dir / name.substr(1, name.rfind(".old-") - 1) : path;
    if (old_copy && original != path && !std::filesystem::exists(std::filesystem::symlink_status(original, rm))) {
      std::filesystem::rename(path, original, rm);  // killed between the fallback's two renames: put it back
    } else {
      std::filesystem::remove_all(path, rm);
    }
    if (!rm) ++handled;
  }
  return handled;
}

void replace_dir_atomic(const std::filesystem::path& staged, const std::filesystem::path& target) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(target, ec))) {
    std::filesystem::rename(staged, target, ec);
    if (ec) throw_error("cannot rename '", staged.string(), "' to '", target.string(), "': ", ec.message());
    return;
  }
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    std::filesystem::remove_all(staged, ec);  // now holds the old directory
    return;
  }
  const int err = errno;
  if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP) {
    throw_error("cannot swap '", staged.string(), "' into '", target.string(), "': ", std::strerror(err));
  }
  // A file system without RENAME_EXCHANGE: move the old one aside first.
  const std::filesystem::path old = hidden_sibling(target, ".old-" + std::to_string(::getpid()));
  std::filesystem::remove_all(old, ec);
  std::filesystem::rename(target, old, ec);
  if (ec) throw_error("cannot move '", target.string(), "' aside to '", old.string(), "': ", ec.message());
  std::filesystem::rename(staged, target, ec);
  if (ec) throw_error("cannot rename '", staged.string(), "' to '", target.string(), "': ", ec.message());
  std::filesystem::remove_all(old, ec);
}

}  // namespace tritter
