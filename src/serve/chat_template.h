// The chat template for byte-level models: messages → prompt text. One function, so that a template engine
// (chat templates read from a model's tokenizer files) can replace it without touching the server.
// The built-in format, one turn per message, then the assistant's opening:
//   <|system|>\nYou are ...\n<|user|>\nHello\n<|assistant|>\n
// and generation stops at "\n<|" (the start of the next turn), which the server adds to the stop strings.
#pragma once
#include <string>
#include <vector>

namespace tritter::serve {

struct ChatMessage {
  std::string role;     // system, user, assistant (others are kept as given)
  std::string content;  // text
};

struct ChatTemplate {
  std::string prompt;              // the rendered conversation, ending with the assistant's opening
  std::vector<std::string> stop;   // stop strings the format implies
};

ChatTemplate render_chat(const std::vector<ChatMessage>& messages);

}  // namespace tritter::serve
