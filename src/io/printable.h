// A byte string from a file, quoted for an error message: printable ASCII as is, other bytes as \xNN, at most
// 200 bytes then "...". Names in hostile files (safetensors, GGUF) may hold anything; messages stay one short line.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace tritter {

inline std::string printable(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 200; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

}  // namespace tritter
