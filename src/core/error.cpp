#include "core/error.h"

namespace tritter::detail {

void check_failed(const char* expr, const char* file, int line, const std::string& detail) {
  throw Error(concat("internal check failed at ", file, ":", line, ": ", expr,
                     detail.empty() ? "" : ": ", detail));
}

}  // namespace tritter::detail
