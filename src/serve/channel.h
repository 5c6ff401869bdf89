// What the scheduler thread sends to the HTTP thread of one request: token events and one final event per choice,
// through a Channel (a mutex-guarded queue the HTTP thread waits on). The HTTP side cancels through the same
// channel (a client that went away, a timeout); the scheduler checks it between decode steps.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tritter::serve {

struct TokenLogprob {
  int32_t token = 0;
  double logprob = 0;
};

struct Event {
  enum class Kind { Token, Done, Embedding, Error };
  Kind kind = Kind::Token;
  int index = 0;                   // the choice (n) or input (embeddings) it belongs to
  std::string text;                // Token: newly final text (may be empty while a stop string may be forming)
  int32_t token = -1;              // Token: the id (−1: held-back text flushed at the end)
  double logprob = 0;              // Token, when asked: log p of the token under the raw distribution
  std::vector<TokenLogprob> top;   // Token: the most likely alternatives, when asked
  std::string finish_reason;       // Done: "stop", "length", "cancelled", "timeout"
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;  // Done / Embedding
  std::vector<float> embedding;    // Embedding
  std::string error;               // Error: the message
  int status = 500;                // Error: the HTTP status it maps to
};

class Channel {
 public:
  void push(Event e) {
    {
      std::lock_guard<std::mutex> lock(m_);
      q_.push_back(std::move(e));
    }
    cv_.notify_all();
  }
  // The next event, waiting at most `wait`; false when none came.
  bool pop(Event& e, std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(m_);
    if (!cv_.wait_for(lock, wait, [&] { return !q_.empty(); })) return false;
    e = std::move(q_.front());
    q_.pop_front();
    return true;
  }
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Event> q_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace tritter::serve
