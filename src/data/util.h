// Small text helpers the curation stages share: SHA-256 fingerprints (the reject log stores these, never a
// secret), Shannon entropy (secret thresholds, as gitleaks computes it), UTF-8 validation, whitespace folding.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tritter::data {

std::array<uint8_t, 32> sha256(std::string_view bytes);
std::string sha256_hex(std::string_view bytes);  // 64 lowercase hex digits

// H = -sum p log2 p over the bytes of `s`, in bits per character (0 for an empty string).
double shannon_entropy(std::string_view s);

// Runs of ASCII whitespace become one space; leading and trailing whitespace go (the exact-dedup key).
std::string fold_whitespace(std::string_view s);

std::string to_lower_ascii(std::string_view s);

inline bool ends_with(std::string_view s, std::string_view suffix) { return s.ends_with(suffix); }

}  // namespace tritter::data
