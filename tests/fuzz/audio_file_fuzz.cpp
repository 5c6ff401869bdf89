// libFuzzer target for the audio reader (audio/audio_file.h, libsndfile underneath): any byte string must either
// decode (then the samples are finite and there are frames × channels of them) or throw tritter::Error — never crash,
// hang or read out of bounds. Files over 2 s are refused from the header, so a forged length cannot exhaust memory;
// decoding keeps the file's rate (resampling is exercised by the unit tests).
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "audio/audio_file.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tritter::audio::Audio a =
        tritter::audio::read_audio_bytes({data, size}, "fuzz", {.sample_rate = 0, .mono = true, .max_seconds = 2});
    if (a.channels != 1 || a.sample_rate < 1) std::abort();
    for (float x : a.samples)
      if (!std::isfinite(x)) std::abort();
  } catch (const tritter::Error&) {
  }
  return 0;
}
