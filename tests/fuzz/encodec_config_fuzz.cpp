// libFuzzer target for EnCodec's config.json reader (audio/encodec.h): any byte string must parse to a config whose
// derived numbers are sane, or throw tritter::Error — never crash or hang (nlohmann's type errors included).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "audio/encodec.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tritter::audio::EncodecConfig c =
        tritter::audio::parse_encodec_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    if (c.hop() < 1 || c.frame_rate() < 1 || c.max_codebooks() < 1) std::abort();
  } catch (const tritter::Error&) {
  }
  return 0;
}
