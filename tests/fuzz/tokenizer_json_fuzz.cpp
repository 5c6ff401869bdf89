// libFuzzer target for the tokenizer.json reader (text/hf_tokenizer.h): any byte string must either parse — and then
// encode and decode text without crashing, every id inside the vocabulary — or throw tritter::Error. The input's
// own bytes are also encoded, so the pre-tokenizers and BPE see arbitrary (invalid UTF-8 included) text.
// Built and run by run_text_fuzz.sh (clang -fsanitize=fuzzer,address,undefined).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "text/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    const auto tok = tritter::parse_tokenizer_json(input, "fuzz");
    for (std::string_view text : {std::string_view("Hello, world! It's 123 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\n\n  x"),
                                  input.substr(0, 512)}) {
      for (bool special : {false, true}) {
        const auto ids = tok->encode(text, special);
        for (int32_t id : ids) {
          if (id < 0 || id >= tok->vocab_size()) std::abort();
          (void)tok->token_bytes(id);
        }
        (void)tok->decode(ids, !special);
      }
    }
  } catch (const tritter::Error&) {
  }
  return 0;
}
