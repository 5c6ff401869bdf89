#include "core/context.h"

#include <cstdarg>

#include "core/error.h"

namespace tritter {

const char* kernel_tier_name(KernelTier t) {
  switch (t) {
    case KernelTier::Auto: return "auto";
    case KernelTier::Reference: return "ref";
    case KernelTier::Scalar: return "scalar";
    case KernelTier::Avx2: return "avx2";
    case KernelTier::Avx512Vnni: return "avx512-vnni";
  }
  return "?";
}

KernelTier kernel_tier_from_name(const std::string& name) {
  for (KernelTier t : {KernelTier::Auto, KernelTier::Reference, KernelTier::Scalar, KernelTier::Avx2,
                       KernelTier::Avx512Vnni}) {
    if (name == kernel_tier_name(t)) return t;
  }
  throw_error("--kernels: unknown kernel path '", name, "'; expected one of auto, ref, scalar, avx2, avx512-vnni");
}

void Context::log(LogLevel level, const char* fmt, ...) const {
  if (static_cast<int>(level) > static_cast<int>(log_level)) return;
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fputc('\n', stderr);
}

}  // namespace tritter
