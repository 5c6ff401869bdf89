// The chat page served at / (src/serve/chat_page.html, turned into this string at build time by
// cmake/embed_file.cmake, so the binary needs no files beside it).
#pragma once

namespace tritter::serve {
extern const char kChatPage[];
}  // namespace tritter::serve
