#include "serve/metrics.h"

#include <cstdio>

namespace tritter::serve {

namespace {
std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}
}  // namespace

void Histogram::observe(double s) {
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (s <= kBounds[i]) ++counts_[i];
  }
  ++count_;
  sum_ += s;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  for (size_t i = 0; i < kBounds.size(); ++i) {
    out += name + "_bucket{le=\"" + num(kBounds[i]) + "\"} " + std::to_string(counts_[i]) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(m_);
  ++requests_[{endpoint, status}];
}

void Metrics::tokens(int64_t prompt, int64_t generated, int64_t cached) {
  std::lock_guard<std::mutex> lock(m_);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  generated_tokens_ += static_cast<uint64_t>(generated);
  cached_tokens_ += static_cast<uint64_t>(cached);
}

void Metrics::prefix_copy(int64_t tokens) {
  std::lock_guard<std::mutex> lock(m_);
  copied_tokens_ += static_cast<uint64_t>(tokens);
}

void Metrics::latency(double request_s, double first_token_s) {
  std::lock_guard<std::mutex> lock(m_);
  request_s_.observe(request_s);
  if (first_token_s >= 0) first_token_s_.observe(first_token_s);
}

void Metrics::decode_step(double seconds, int64_t rows) {
  std::lock_guard<std::mutex> lock(m_);
  step_s_.observe(seconds);
  ++decode_steps_;
  decode_rows_ += static_cast<uint64_t>(rows);
}

void Metrics::set_state(int64_t queue_depth, int64_t active_slots, int64_t slots) {
  std::lock_guard<std::mutex> lock(m_);
  queue_depth_ = queue_depth;
  active_ = active_slots;
  slots_ = slots;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(m_);
  std::string o;
  o += "# HELP tritter_requests_total HTTP requests answered, by endpoint and status.\n";
  o += "# TYPE tritter_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    o += "tritter_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
         std::to_string(n) + "\n";
  }
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
         std::to_string(v) + "\n";
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
         std::to_string(v) + "\n";
  };
  counter("tritter_prompt_tokens_total", "Prompt tokens processed (cached ones excluded).", prompt_tokens_);
  counter("tritter_prompt_tokens_cached_total", "Prompt tokens reused from a slot's cache.", cached_tokens_);
  counter("tritter_prompt_tokens_copied_total", "Of the cached prompt tokens, those copied from another slot.",
          copied_tokens_);
  counter("tritter_generated_tokens_total", "Tokens generated.", generated_tokens_);
  counter("tritter_decode_steps_total", "Batched forward steps run.", decode_steps_);
  counter("tritter_decode_rows_total", "Rows (decoded tokens and prompt tokens) summed over the steps.",
          decode_rows_);
  gauge("tritter_queue_depth", "Requests waiting for a slot.", queue_depth_);
  gauge("tritter_slots_active", "Slots running a request.", active_);
  gauge("tritter_slots", "Slots (--parallel).", slots_);
  request_s_.render(o, "tritter_request_seconds", "Time from a request's arrival to its last token.");
  first_token_s_.render(o, "tritter_time_to_first_token_seconds", "Time from arrival to the first token.");
  step_s_.render(o, "tritter_decode_step_seconds", "Wall time of one batched forward step.");
  return o;
}

}  // namespace tritter::serve
