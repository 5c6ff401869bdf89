// The split regexes of byte-level BPE files (GPT-2, Llama 3, Qwen2), matched by hand over Unicode categories:
// the patterns use a lookahead (\s+(?!\S)) that RE2 lacks, and a dedicated matcher is several times faster than
// a general backtracking engine. Each function gives exactly the pieces the regex's leftmost-first matches give
// (every code point is covered, so there are no gaps). Non-goals: arbitrary regexes — an unknown pattern is
// reported as unsupported by the tokenizer.json reader.
#pragma once
#include <optional>
#include <string_view>
#include <vector>

namespace tritter {

enum class SplitPattern {
  gpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  llama3,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  qwen2,   // llama3 with \p{N} (one digit per piece)
};

// The pattern a tokenizer.json Split regex spells, or nullopt.
std::optional<SplitPattern> recognize_split_pattern(std::string_view regex);

// Appends the pieces of utf8 (valid UTF-8) to out, in order; they tile utf8 exactly.
void split_pieces(std::string_view utf8, SplitPattern pattern, std::vector<std::string_view>& out);

}  // namespace tritter
