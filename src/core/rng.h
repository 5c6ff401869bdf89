// Deterministic random numbers (xoshiro256**, seeded by splitmix64). The state is four words, saved in training
// checkpoints so a resumed run draws exactly what the uninterrupted one would.
#pragma once
#include <array>
#include <cstdint>

namespace tritter {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);

  uint64_t next_u64();
  uint32_t next_below(uint32_t n);  // uniform in [0, n), unbiased
  float uniform();                  // [0, 1) with 24 random bits
  double uniform_double();          // [0, 1) with 53 random bits
  float normal();                   // N(0, 1), Box-Muller in double

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

}  // namespace tritter
