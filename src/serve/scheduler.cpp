// The continuous-batching loop (serve/scheduler.h).
#include "serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include "core/error.h"
#include "infer/generate.h"
#include "text/byte_tokenizer.h"

namespace tritter::serve {

namespace {

// Bytes at the end of `text` that begin a UTF-8 sequence not yet complete (held so a character is never split
// between two streamed pieces).
size_t utf8_hold(std::string_view text) {
  const size_t n = text.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len > back ? back : 0;
  }
  return 0;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

struct Scheduler::Slot {
  enum class State { Idle, Prefill, Decode };
  int id = 0;
  State state = State::Idle;
  std::vector<int32_t> cached;  // the tokens the slot's cache holds, in order (prefix reuse)
  std::optional<Job> job;
  std::optional<Sampler> sampler;
  size_t prefilled = 0;          // prompt tokens in the cache
  int64_t reused = 0;            // of which came from the previous request
  int64_t generated = 0;
  int32_t next = -1;             // the sampled token to feed at the next decode step
  std::vector<int32_t> history;  // prompt + generated (the sampler's repetition window)
  std::string pending;           // generated text not yet delivered
  uint64_t admitted = 0, used = 0;  // ticks: prefill order, least recently used
  Clock::time_point first_token{};
  bool has_first = false;
};

Scheduler::Scheduler(BatchEngine& engine, const SchedulerOptions& options, Metrics& metrics)
    : engine_(engine), options_(options), metrics_(metrics) {
  for (int i = 0; i < engine.slots(); ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->id = i;
  }
  logits_.resize(static_cast<size_t>(engine.slots() * engine.config().vocab_size));  // ≤ one row per slot wants
  publish_state();
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(true); }

std::string Scheduler::text_of(int32_t id) const {
  const Tokenizer* t = options_.tokenizer;
  if (!t) return token_bytes(id);
  return id >= 0 && id < t->vocab_size() ? t->token_bytes(id) : std::string();  // a padded vocabulary's tail
}

bool Scheduler::ends(int32_t id) const {
  if (options_.end_ids.empty()) return id == kTokenEos;
  return std::find(options_.end_ids.begin(), options_.end_ids.end(), id) != options_.end_ids.end();
}

Scheduler::Submit Scheduler::submit(std::vector<Job> jobs) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (stopping_) return Submit::Stopping;
    if (static_cast<int64_t>(queue_.size() + jobs.size()) > options_.max_queue) return Submit::QueueFull;
    for (Job& j : jobs) queue_.push_back(std::move(j));
  }
  cv_.notify_all();
  return Submit::Ok;
}

void Scheduler::stop(bool cancel) {
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
    cancel_all_ = cancel_all_ || cancel;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::cancel_all() {
  {
    std::lock_guard<std::mutex> lock(m_);
    cancel_all_ = true;
  }
  cv_.notify_all();
}

int64_t Scheduler::queue_depth() const {
  std::lock_guard<std::mutex> lock(m_);
  return static_cast<int64_t>(queue_.size());
}

int Scheduler::active() const {
  std::lock_guard<std::mutex> lock(m_);
  return active_;
}

void Scheduler::publish_state() {
  int busy = 0;
  for (const auto& s : slots_) busy += s->state != Slot::State::Idle;
  int64_t q;
  {
    std::lock_guard<std::mutex> lock(m_);
    active_ = busy;
    q = static_cast<int64_t>(queue_.size());
  }
  metrics_.set_state(q, busy, static_cast<int64_t>(slots_.size()));
}

void Scheduler::loop() {
  for (;;) {
    bool cancel = false;
    {
      std::unique_lock<std::mutex> lock(m_);
      cancel = cancel_all_;
      if (cancel) {
        for (Job& j : queue_) {
          Event e;
          e.kind = Event::Kind::Done;
          e.index = j.index;
          e.finish_reason = "cancelled";
          j.channel->push(std::move(e));
        }
        queue_.clear();
      }
      const bool busy = std::any_of(slots_.begin(), slots_.end(), [](const auto& s) {
        return s->state != Slot::State::Idle;
      });
      if (!busy && queue_.empty()) {
        if (stopping_) break;
        cv_.wait_for(lock, std::chrono::milliseconds(200));
        continue;
      }
    }
    if (cancel) {
      for (auto& s : slots_) {
        if (s->state != Slot::State::Idle) finish(*s, "cancelled");
      }
    }
    ++tick_;
    try {
      admit();
      reap();
      step();
    } catch (const std::exception& ex) {  // an internal failure ends the running jobs, never the server
      for (auto& s : slots_) {
        if (s->state == Slot::State::Idle) continue;
        Event e;
        e.kind = Event::Kind::Error;
        e.index = s->job->index;
        e.error = ex.what();
        s->job->channel->push(std::move(e));
        engine_.reset(s->id);
        s->cached.clear();
        s->job.reset();
        s->state = Slot::State::Idle;
      }
    }
    publish_state();
  }
  publish_state();
}

bool Scheduler::admit() {
  bool any = false;
  for (;;) {
    Job job;
    Slot* best = nullptr;
    {
      std::lock_guard<std::mutex> lock(m_);
      if (queue_.empty()) break;
      // The free slot sharing the longest prefix with the prompt (under the same adapter set); among equals the
      // least recently used.
      size_t best_len = 0;
      const Job& next = queue_.front();
      for (auto& s : slots_) {
        if (s->state != Slot::State::Idle) continue;
        const size_t len = engine_.slot_adapter(s->id) == next.adapter ? common_prefix(s->cached, next.prompt) : 0;
        if (!best || len > best_len || (len == best_len && s->used < best->used)) {
          best = s.get();
          best_len = len;
        }
      }
      if (!best) break;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    any = true;
    Slot& s = *best;
    if (job.adapter < -1 || job.adapter >= engine_.adapters()) {
      Event e;
      e.kind = Event::Kind::Error;
      e.index = job.index;
      e.error = "adapter " + std::to_string(job.adapter) + " is not loaded";
      e.status = 400;
      job.channel->push(std::move(e));
      continue;
    }
    if (engine_.slot_adapter(s.id) != job.adapter) {
      engine_.set_slot_adapter(s.id, job.adapter);  // empties the slot
      s.cached.clear();
    }
    s.admitted = s.used = tick_;
    s.generated = 0;
    s.pending.clear();
    s.has_first = false;
    s.history = job.prompt;
    if (job.kind == Job::Kind::Embed) {
      Event e;
      e.kind = Event::Kind::Embedding;
      e.index = job.index;
      e.prompt_tokens = static_cast<int64_t>(job.prompt.size());
      try {
        e.embedding = engine_.embed(s.id, job.prompt);
      } catch (const std::exception& ex) {
        e.kind = Event::Kind::Error;
        e.error = ex.what();
        e.status = 400;
      }
      s.cached.clear();
      metrics_.tokens(e.prompt_tokens, 0, 0);
      job.channel->push(std::move(e));
      continue;
    }
    const int64_t V = engine_.config().vocab_size;
    const bool bad_id = std::any_of(job.prompt.begin(), job.prompt.end(), [&](int32_t t) { return t < 0 || t >= V; });
    if (job.prompt.empty() || bad_id) {  // caught here: a decode step must not fail for the whole batch
      Event e;
      e.kind = Event::Kind::Error;
      e.index = job.index;
      e.error = job.prompt.empty() ? "empty prompt" : "a prompt token id outside 0 .. " + std::to_string(V - 1);
      e.status = 400;
      job.channel->push(std::move(e));
      continue;
    }
    // Keep the shared prefix, but always run at least the prompt's last token (its logits start generation).
    const size_t shared = std::min(common_prefix(s.cached, job.prompt), job.prompt.size() - 1);
    int64_t kept = engine_.truncate(s.id, static_cast<int64_t>(shared));
    s.cached.resize(static_cast<size_t>(kept));
    // A longer prefix held by another slot (running the same adapters) is copied rather than recomputed.
    Slot* donor = nullptr;
    size_t donor_len = static_cast<size_t>(kept);
    for (auto& d : slots_) {
      if (d.get() == &s || engine_.slot_adapter(d->id) != job.adapter) continue;
      const size_t len = std::min(common_prefix(d->cached, job.prompt), job.prompt.size() - 1);
      if (len > donor_len) {
        donor = d.get();
        donor_len = len;
      }
    }
    if (donor) {
      // The slot now holds what was copied (fewer than kept only from a wrapped sliding-window ring: still exact).
      const int64_t copied = engine_.copy_prefix(donor->id, s.id, static_cast<int64_t>(donor_len));
      if (copied > kept) metrics_.prefix_copy(copied - kept);
      kept = copied;
      s.cached.assign(job.prompt.begin(), job.prompt.begin() + copied);
    }
    s.prefilled = static_cast<size_t>(kept);
    s.reused = kept;
    try {
      s.sampler.emplace(job.sampler);
    } catch (const std::exception& ex) {
      Event e;
      e.kind = Event::Kind::Error;
      e.index = job.index;
      e.error = ex.what();
      e.status = 400;
      job.channel->push(std::move(e));
      continue;
    }
    s.job = std::move(job);
    s.state = Slot::State::Prefill;
    if (s.prefilled + 1 == s.job->prompt.size()) start_decoding(s);  // the rest is one token: it joins the batch
  }
  return any;
}

void Scheduler::reap() {
  const auto now = Clock::now();
  for (auto& s : slots_) {
    if (s->state == Slot::State::Idle) continue;
    if (s->job->channel->cancelled()) {
      finish(*s, "cancelled");
    } else if (now > s->job->deadline) {
      finish(*s, "timeout");
    }
  }
}

// A prompt's last token runs as a decode row (its logits give the first generated token).
void Scheduler::start_decoding(Slot& s) {
  metrics_.tokens(static_cast<int64_t>(s.job->prompt.size()) - s.reused, 0, s.reused);
  s.next = s.job->prompt.back();
  s.state = Slot::State::Decode;
}

void Scheduler::step() {
  rows_slot_.clear();
  rows_token_.clear();
  rows_want_.clear();
  std::vector<Slot*> decoding;
  for (auto& s : slots_) {
    if (s->state != Slot::State::Decode) continue;
    rows_slot_.push_back(s->id);
    rows_token_.push_back(s->next);
    rows_want_.push_back(1);
    decoding.push_back(s.get());
  }
  // Prompt tokens of newcomers, oldest first, up to one chunk in all; a prompt that completes here also puts its
  // last token in the step (it counts against the chunk, so one slot never writes more than a chunk at once).
  std::vector<Slot*> waiting;
  for (auto& s : slots_) {
    if (s->state == Slot::State::Prefill) waiting.push_back(s.get());
  }
  std::sort(waiting.begin(), waiting.end(), [](const Slot* a, const Slot* b) { return a->admitted < b->admitted; });
  int64_t budget = engine_.max_batch();
  for (Slot* s : waiting) {
    if (budget <= 0) break;
    const std::vector<int32_t>& prompt = s->job->prompt;
    const size_t end = prompt.size() - 1;  // all but the last token
    const size_t n = std::min(end - s->prefilled, static_cast<size_t>(budget));
    for (size_t i = 0; i < n; ++i) {
      rows_slot_.push_back(s->id);
      rows_token_.push_back(prompt[s->prefilled + i]);
      rows_want_.push_back(0);
      s->cached.push_back(prompt[s->prefilled + i]);
    }
    s->prefilled += n;
    budget -= static_cast<int64_t>(n);
    if (s->prefilled == end && budget > 0) {
      start_decoding(*s);
      rows_slot_.push_back(s->id);
      rows_token_.push_back(s->next);
      rows_want_.push_back(1);
      decoding.push_back(s);
      --budget;
    }
  }
  if (rows_slot_.empty()) return;
  const auto t0 = Clock::now();
  engine_.step(rows_slot_, rows_token_, rows_want_.data(), logits_.data());
  metrics_.decode_step(seconds(t0, Clock::now()), static_cast<int64_t>(rows_slot_.size()));
  const int64_t V = engine_.config().vocab_size;
  for (size_t b = 0; b < decoding.size(); ++b) {
    Slot& s = *decoding[b];
    s.cached.push_back(s.next);
    s.used = tick_;
    emit(s, logits_.data() + static_cast<int64_t>(b) * V);
  }
}

void Scheduler::emit(Slot& s, float* logits) {
  const Job& job = *s.job;
  const int64_t V = engine_.config().vocab_size;
  Event e;
  e.index = job.index;
  std::vector<double> logp;
  if (job.top_logprobs >= 0) {  // log-softmax of the raw logits, before penalties and truncation
    double mx = logits[0];
    for (int64_t i = 1; i < V; ++i) mx = std::max<double>(mx, logits[i]);
    double z = 0;
    for (int64_t i = 0; i < V; ++i) z += std::exp(logits[i] - mx);
    const double lz = mx + std::log(z);
    logp.resize(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) logp[static_cast<size_t>(i)] = logits[i] - lz;
  }
  const int32_t id = s.sampler->sample(logits, V, s.history);
  if (!s.has_first) {
    s.has_first = true;
    s.first_token = Clock::now();
  }
  if (job.stop_at_eos && ends(id)) {
    finish(s, "stop");
    return;
  }
  ++s.generated;
  metrics_.tokens(0, 1, 0);  // live: counted as sampled, not when the request ends
  s.history.push_back(id);
  s.pending += text_of(id);
  size_t cut = std::string::npos;
  for (const auto& st : job.stop) {
    const size_t at = s.pending.find(st);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  const bool stopped = cut != std::string::npos;
  if (stopped) s.pending.resize(cut);
  size_t emit_n = s.pending.size();
  if (!stopped) {
    emit_n -= stop_string_hold(s.pending, job.stop);
    emit_n -= utf8_hold(std::string_view(s.pending).substr(0, emit_n));
  }
  e.kind = Event::Kind::Token;
  e.token = id;
  e.text = s.pending.substr(0, emit_n);
  s.pending.erase(0, emit_n);
  if (!logp.empty()) {
    e.logprob = logp[static_cast<size_t>(id)];
    if (job.top_logprobs > 0) {
      std::vector<int32_t> order(static_cast<size_t>(V));
      for (int32_t i = 0; i < V; ++i) order[static_cast<size_t>(i)] = i;
      const size_t k = std::min<size_t>(static_cast<size_t>(job.top_logprobs), order.size());
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                        [&](int32_t a, int32_t b) { return logp[static_cast<size_t>(a)] > logp[static_cast<size_t>(b)]; });
      for (size_t i = 0; i < k; ++i) e.top.push_back({order[i], logp[static_cast<size_t>(order[i])]});
    }
  }
  job.channel->push(std::move(e));
  if (stopped) return finish(s, "stop");
  if (s.generated >= job.max_tokens || engine_.position(s.id) >= engine_.context()) return finish(s, "length");
  s.next = id;
}

void Scheduler::finish(Slot& s, const std::string& reason) {
  Job& job = *s.job;
  if (!s.pending.empty() && reason != "cancelled") {  // held-back text that did not become a stop string
    Event t;
    t.index = job.index;
    t.text = std::move(s.pending);
    job.channel->push(std::move(t));
  }
  s.pending.clear();
  Event e;
  e.kind = Event::Kind::Done;
  e.index = job.index;
  e.finish_reason = reason;
  e.prompt_tokens = static_cast<int64_t>(job.prompt.size());
  e.completion_tokens = s.generated;
  e.cached_tokens = s.reused;
  const auto now = Clock::now();
  metrics_.latency(seconds(job.arrival, now), s.has_first ? seconds(job.arrival, s.first_token) : -1.0);
  job.channel->push(std::move(e));
  // A slot left mid-prefill holds only part of its prompt: `cached` says which part, so reuse stays exact.
  s.job.reset();
  s.sampler.reset();
  s.state = Slot::State::Idle;
}

}  // namespace tritter::serve
