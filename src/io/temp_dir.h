// A staging directory that a failure must not leave behind: removed, with what it holds, when the guard goes out of
// scope, unless `keep` was set once its contents were moved into place.
#pragma once
#include <filesystem>
#include <system_error>

namespace tritter {

struct TempDirGuard {
  std::filesystem::path path;
  bool keep = false;
  ~TempDirGuard() {
    std::error_code ec;
    if (!keep) std::filesystem::remove_all(path, ec);
  }
};

}  // namespace tritter
