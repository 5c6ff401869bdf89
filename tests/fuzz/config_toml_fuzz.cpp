// libFuzzer target for the TOML reader (data/config_toml.h, `curate --config FILE.toml`): any bytes must either give
// a validated curation config or throw tritter::Error naming the file; never crash, hang or hit undefined behaviour.
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/config_toml.h"
#include "data/pipeline.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)tritter::data::parse_toml_subset(text, "fuzz");
  } catch (const tritter::Error&) {
  }
  const auto path = tritter::fuzz::write_input("curate.toml", text);
  try {
    (void)tritter::data::load_curate_config(path);
  } catch (const tritter::Error&) {
  }
  return 0;
}
