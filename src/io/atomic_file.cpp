#include "io/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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
    std::filesystem::remove(temp_, ec);
    throw_error("cannot rename temporary file to '", target_.string(), "': ", ec.message());
  }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

std::string read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("cannot read '", path.string(), "': ", std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace tritter
