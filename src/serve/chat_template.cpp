#include "serve/chat_template.h"

namespace tritter::serve {

ChatTemplate render_chat(const std::vector<ChatMessage>& messages) {
  ChatTemplate t;
  for (const ChatMessage& m : messages) t.prompt += "<|" + m.role + "|>\n" + m.content + "\n";
  t.prompt += "<|assistant|>\n";
  t.stop = {"\n<|"};
  return t;
}

}  // namespace tritter::serve
