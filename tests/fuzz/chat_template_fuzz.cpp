// libFuzzer target for the chat-template engine (text/chat_template.h): any template text must either parse and
// render over a fixed conversation, or throw tritter::Error — never crash, hang or read out of bounds.
// Built and run by run_text_fuzz.sh (clang -fsanitize=fuzzer,address,undefined).
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "text/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  try {
    const tritter::ChatTemplate t(source);
    const std::vector<tritter::ChatMessage> messages = {{"system", "S"}, {"user", " hi \n"}, {"assistant", "ok"}};
    (void)t.apply(messages, {.add_generation_prompt = true, .bos_token = "<s>", .eos_token = "</s>"});
  } catch (const tritter::Error&) {
  }
  return 0;
}
