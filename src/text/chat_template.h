// Chat templates from tokenizer_config.json: the Jinja subset real templates use — {{ }}, {% if/elif/else %},
// {% for x in xs [if c] %} with loop.* and {% else %}, {% set %} (names, namespace attributes), whitespace control
// ({%- -%}, and the lstrip_blocks/trim_blocks Hugging Face turns on), filters (trim, length, upper, lower,
// capitalize, title, default, first, last, join, replace, string, int, list, reverse, items, tojson, selectattr,
// rejectattr, map(attribute)), tests (defined, none, string, mapping, ...), string/dict methods (strip, split,
// startswith, endswith, get, items, ...), raise_exception, namespace, range. Non-goals: macros, call blocks,
// includes/extends, set blocks — a template using one is reported as unsupported when it is parsed.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

namespace tritter {

struct ChatMessage {
  std::string role, content;
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // more variables (tools, date_string, ...)
};

class ChatTemplate {
 public:
  // Parses the template; throws Error "chat template: line L: ..." on a syntax error or an unsupported construct.
  explicit ChatTemplate(std::string_view source);
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders with these variables (messages, add_generation_prompt, bos_token, ...). raise_exception(msg) in the
  // template throws Error "chat template: raise_exception: msg".
  std::string render(const nlohmann::ordered_json& context) const;
  // render({"messages": [{"role", "content"}...], "add_generation_prompt", "bos_token", "eos_token"} + extra).
  std::string apply(std::span<const ChatMessage> messages, const ChatTemplateOptions& options) const;

  struct Node;

 private:
  std::unique_ptr<Node> root_;
};

// Tritter's chat format for byte-level models, whose files carry no template: one turn per message, then the
// assistant's opening, "<|system|>\nYou are ...\n<|user|>\nHello\n<|assistant|>\n". A reply ends at "\n<|" (the
// next turn's start): builtin_chat_stop().
const char* builtin_chat_template();
inline constexpr const char* builtin_chat_stop() { return "\n<|"; }

}  // namespace tritter
