// libFuzzer target for the JSON config readers: a model config (model/config.h, `--config FILE.json`) and a curation
// config (data/pipeline.h, `curate --config FILE.json`). Any bytes must either give a validated config or throw
// tritter::Error naming the file; never crash, hang, or hit undefined behaviour (an out-of-range number cast).
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/pipeline.h"
#include "fuzz_util.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = tritter::fuzz::write_input("config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    (void)tritter::load_config_file(path.string());
  } catch (const tritter::Error&) {
  }
  try {
    (void)tritter::data::load_curate_config(path);
  } catch (const tritter::Error&) {
  }
  return 0;
}
