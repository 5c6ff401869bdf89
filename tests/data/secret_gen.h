// Fake secrets of the right shape, generated at run time from a seed, so that no committed file holds a
// key-shaped string (the repository must not trip secret scanners, this one included). Prefixes are joined
// from parts for the same reason.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace tritter::data::test_gen {

inline constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
inline constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
inline constexpr std::string_view kLowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789";
inline constexpr std::string_view kHex = "0123456789abcdef";
inline constexpr std::string_view kHexUpper = "0123456789ABCDEF";
inline constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
inline constexpr std::string_view kUrlSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
inline constexpr std::string_view kDigits = "0123456789";

// splitmix64: deterministic, so a failing case names the same value on every run.
inline uint64_t next_random(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// `n` characters drawn from `alphabet`; every alphabet class appears (a shape check cannot be met by luck alone).
inline std::string fake(std::string_view alphabet, size_t n, uint64_t seed) {
  std::string out;
  uint64_t s = seed * 0x2545F4914F6CDD1Dull + n;
  for (size_t i = 0; i < n; ++i) out.push_back(alphabet[next_random(s) % alphabet.size()]);
  return out;
}

// Concatenation of parts: "gh" + "p_" keeps the literal prefix of a real token out of the source.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

}  // namespace tritter::data::test_gen
