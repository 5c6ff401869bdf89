// Byte scans that the curation stages (src/data) run over every document: the lexers' skip to the next quote or
// comment marker, a substring search, and the file-level line and alphanumeric counts. Sixteen bytes a step with
// SSE2 (every x86-64), a scalar loop elsewhere; every path returns exactly what the scalar loop does.
#pragma once
#include <cstddef>
#include <string_view>

namespace tritter {

// Index of the first byte at or after `from` that equals a, b or c; s.size() if there is none.
size_t find_first_of3(std::string_view s, size_t from, char a, char b, char c);

// std::string_view::find(needle): the first offset, or npos. The needle's first and last bytes are compared at
// sixteen positions at once and only positions where both agree are checked whole (string_view::find stops at
// every occurrence of the first byte, and 't' or 'a' comes every few bytes in code).
size_t find_bytes(std::string_view hay, std::string_view needle);

// Index of the first byte at or after `from` that a JSON string must escape (a control byte below 0x20, '"' or
// '\\'); s.size() if there is none.
size_t find_json_special(std::string_view s, size_t from);

// The text with every run of whitespace (' ', \t, \n, \v, \f, \r) made one space and none at either end,
// written to out (s.size() bytes); returns its length. Sixteen bytes a step where the CPU has SSSE3 (a shuffle
// drops the bytes of a run after its first); ref:: is the byte loop.
size_t fold_whitespace_into(std::string_view s, char* out);
namespace ref {
size_t fold_whitespace_into(std::string_view s, char* out);
}  // namespace ref

// s escaped for the inside of a JSON string (as nlohmann's dump writes it: \" \\ \b \f \n \r \t, other control
// bytes as \u00xx, every other byte copied), written to out, which must hold 6 * s.size() + 16 bytes; returns the
// count written. Sixteen bytes a step with SSE2: a block without special bytes is stored whole.
size_t escape_json_into(std::string_view s, char* out);
namespace ref {
size_t escape_json_into(std::string_view s, char* out);
}  // namespace ref

struct LineStats {
  size_t lines = 0;     // lines ended by '\n', plus a last one without
  size_t max_line = 0;  // bytes, without the '\n'
  size_t alnum = 0;     // ASCII letters and digits
};
// One pass: newlines by a compare mask, letters and digits by two unsigned range tests.
LineStats line_stats(std::string_view text);

}  // namespace tritter
