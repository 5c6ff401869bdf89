// The server's counters and latency histograms, rendered as Prometheus text (GET /metrics). Thread-safe: HTTP
// threads and the scheduler thread update it.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace tritter::serve {

// Cumulative buckets in seconds, as Prometheus histograms are.
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  void observe(double seconds);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::array<uint64_t, kBounds.size()> counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  void request(const std::string& endpoint, int status);  // one finished HTTP request
  void tokens(int64_t prompt, int64_t generated, int64_t cached);
  void prefix_copy(int64_t tokens);  // prompt positions copied from another slot's cache (of the cached ones)
  void latency(double request_s, double first_token_s);   // first_token_s < 0: none
  void decode_step(double seconds, int64_t rows);
  void set_state(int64_t queue_depth, int64_t active_slots, int64_t slots);
  std::string render() const;

 private:
  mutable std::mutex m_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0, cached_tokens_ = 0, copied_tokens_ = 0, decode_steps_ = 0,
           decode_rows_ = 0;
  int64_t queue_depth_ = 0, active_ = 0, slots_ = 0;
  Histogram request_s_, first_token_s_, step_s_;
};

}  // namespace tritter::serve
