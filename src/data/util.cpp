// SHA-256 (FIPS 180-4, written out: no crypto library in the dependency list), entropy, UTF-8, whitespace folding.
#include "data/util.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "data/document.h"
#include "kernels/text_scan.h"

namespace tritter::data {
namespace {

constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void sha256_block(uint32_t h[8], const uint8_t* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) | p[4 * i + 3];
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
    const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

}  // namespace

std::array<uint8_t, 32> sha256(std::string_view bytes) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t n = bytes.size();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) sha256_block(h, p + i);
  uint8_t tail[128] = {};
  const size_t rest = n - i;
  std::memcpy(tail, p + i, rest);
  tail[rest] = 0x80;
  const size_t tail_len = rest + 9 <= 64 ? 64 : 128;
  const uint64_t bits = uint64_t(n) * 8;
  for (int k = 0; k < 8; ++k) tail[tail_len - 1 - k] = uint8_t(bits >> (8 * k));
  for (size_t k = 0; k < tail_len; k += 64) sha256_block(h, tail + k);
  std::array<uint8_t, 32> out{};
  for (int k = 0; k < 8; ++k)
    for (int j = 0; j < 4; ++j) out[4 * k + j] = uint8_t(h[k] >> (24 - 8 * j));
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto d = sha256(bytes);
  std::string s(64, '0');
  for (int i = 0; i < 32; ++i) {
    s[2 * i] = kHex[d[i] >> 4];
    s[2 * i + 1] = kHex[d[i] & 15];
  }
  return s;
}

double shannon_entropy(std::string_view s) {
  if (s.empty()) return 0.0;
  size_t counts[256] = {};
  for (unsigned char c : s) ++counts[c];
  double h = 0.0;
  const double n = double(s.size());
  for (size_t c : counts)
    if (c) {
      const double p = double(c) / n;
      h -= p * std::log2(p);
    }
  return h;
}

std::string fold_whitespace(std::string_view s) {
  std::string out(s.size(), '\0');
  out.resize(fold_whitespace_into(s, out.data()));
  return out;
}

std::string to_lower_ascii(std::string_view s) {
  std::string out(s);
  // Branch-free, so the compiler vectorizes it.
  for (char& c : out) c = char(c + (static_cast<unsigned char>(c - 'A') < 26 ? 'a' - 'A' : 0));
  return out;
}

LineCol line_col(std::string_view text, size_t pos) {
  LineCol lc;
  if (pos > text.size()) pos = text.size();
  size_t line_start = 0;
  for (size_t i = 0; i < pos; ++i)
    if (text[i] == '\n') {
      ++lc.line;
      line_start = i + 1;
    }
  lc.col = int(pos - line_start) + 1;
  return lc;
}

LineIndex::LineIndex(std::string_view text) {
  line_starts_.push_back(0);
  for (const char* p = text.data(), *end = text.data() + text.size();;) {
    const void* nl = std::memchr(p, '\n', size_t(end - p));
    if (!nl) break;
    p = static_cast<const char*>(nl) + 1;
    line_starts_.push_back(size_t(p - text.data()));
  }
}

LineCol LineIndex::at(size_t pos) const {
  const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
  const size_t line = size_t(it - line_starts_.begin());  // >= 1: line_starts_[0] == 0 <= pos
  return {int(line), int(pos - line_starts_[line - 1]) + 1};
}

}  // namespace tritter::data
