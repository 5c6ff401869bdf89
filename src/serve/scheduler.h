// Continuous batching: one scheduler thread owns the BatchEngine and its slots. HTTP threads submit Jobs (a
// bounded queue: submit refuses when full) and read their Channel. Each step of the loop: queued jobs take free
// slots (the slot whose cached tokens share the longest prefix with the prompt, so a chat's next turn reuses its
// previous turn's cache); cancelled or timed-out jobs leave; then ONE forward pass runs the next token of every
// generating slot together with up to one chunk (max_batch) of newcomers' prompt tokens, as rows of one batch. A
// newcomer's prompt thus interleaves with the others' decoding, and a prompt's last token is a decode row (its
// logits give the first token), so a prompt whose earlier tokens are cached joins at once.
// Prefix cache: when another slot (busy or idle) holds a longer prefix of the prompt than the slot it takes, those
// positions are copied from it (BatchEngine::copy_prefix) instead of recomputed, so a system prompt shared by
// many requests is computed once. Cached positions count only for the same adapter set (Job::adapter).
// Non-goals: priorities, preemption, a paged cache.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "infer/batch_engine.h"
#include "infer/sampler.h"
#include "serve/channel.h"
#include "serve/metrics.h"
#include "text/tokenizer.h"

namespace tritter::serve {

using Clock = std::chrono::steady_clock;

struct Job {
  enum class Kind { Generate, Embed };
  Kind kind = Kind::Generate;
  int index = 0;                     // the choice / input index its events carry
  std::vector<int32_t> prompt;       // ≥ 1 token, fits the slot context (checked by the caller)
  int64_t max_tokens = 16;
  SamplerOptions sampler;
  std::vector<std::string> stop;     // never delivered; held back while one may be forming
  bool stop_at_eos = true;
  int top_logprobs = -1;             // −1: no logprobs; 0: the chosen token's; k: and the k most likely
  int adapter = -1;                  // the engine's adapter set (BatchEngine::add_adapter), −1 none
  std::shared_ptr<Channel> channel;
  Clock::time_point arrival = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
};

struct SchedulerOptions {
  int64_t max_queue = 64;  // jobs waiting for a slot; more are refused
  // The text each token adds (its bytes through the model's tokenizer) and the ids that end a generation (when
  // Job::stop_at_eos); null / empty: the byte tokenizer and its <eos>. The tokenizer must outlive the scheduler.
  const Tokenizer* tokenizer = nullptr;
  std::vector<int32_t> end_ids{};
};

class Scheduler {
 public:
  // Starts the thread. `engine` and `metrics` must outlive the scheduler.
  Scheduler(BatchEngine& engine, const SchedulerOptions& options, Metrics& metrics);
  ~Scheduler();  // stop(true) and join
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Submit { Ok, QueueFull, Stopping };
  // Queues all of `jobs` or none of them.
  Submit submit(std::vector<Job> jobs);
  // Refuses new jobs; cancel = true also ends the running and queued ones (finish_reason "cancelled"), else
  // they finish first. Returns when the thread has ended.
  void stop(bool cancel);
  // Ends the running and queued jobs now (finish_reason "cancelled"); stop() still has to be called.
  void cancel_all();
  int64_t queue_depth() const;
  int active() const;

 private:
  struct Slot;
  void loop();
  bool admit();                       // queued jobs → free slots; true if any
  void step();                        // one forward: every generating slot's token + a chunk of prompt tokens
  void start_decoding(Slot& s);       // the prompt but its last token is cached: join the decode rows
  void emit(Slot& s, float* logits);  // sample the next token from logits (V), stream it, maybe finish
  void finish(Slot& s, const std::string& reason);
  void reap();                        // cancelled / timed out
  void publish_state();
  std::string text_of(int32_t id) const;  // the bytes token `id` adds to the text
  bool ends(int32_t id) const;            // an end-of-generation id

  BatchEngine& engine_;
  SchedulerOptions options_;
  Metrics& metrics_;
  std::vector<std::unique_ptr<Slot>> slots_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false, cancel_all_ = false;
  int active_ = 0;  // guarded by m_ (read by HTTP threads)
  uint64_t tick_ = 0;
  std::vector<float> logits_;
  std::vector<int> rows_slot_;
  std::vector<int32_t> rows_token_;
  std::vector<uint8_t> rows_want_;
  std::thread thread_;
};

}  // namespace tritter::serve
