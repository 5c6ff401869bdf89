// Errors: tritter::Error for what a user can cause (bad file, bad flag, bad config), TRITTER_CHECK for
// internal invariants. Messages read "where: what: found X, expected Y". The library never calls exit().
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace tritter {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& detail);
}  // namespace detail

// Builds the message from any streamable parts: throw_error("file '", path, "': bad magic ", magic).
template <typename... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  throw Error(detail::concat(parts...));
}

}  // namespace tritter

// Always on (release too): an internal invariant, reported with the values that broke it.
#define TRITTER_CHECK(cond, ...)                                                                   \
  do {                                                                                             \
    if (!(cond)) ::tritter::detail::check_failed(#cond, __FILE__, __LINE__,                        \
                                                 ::tritter::detail::concat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
