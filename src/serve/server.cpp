// The HTTP layer (serve/server.h): routes, auth, limits and the relay from a request's channel to its response.
#include "serve/server.h"

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "serve/chat_page.h"
#include "serve/metrics.h"
#include "serve/openai.h"
#include "serve/scheduler.h"
#include "text/tokenizer.h"

namespace tritter::serve {

namespace {

// Equal strings in time that depends only on their lengths (an API key must not leak through timing).
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char b[32];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(prefix) + b;
}

const std::set<std::string>& known_paths() {
  static const std::set<std::string> k = {"/", "/health", "/metrics", "/v1/models", "/v1/completions",
                                          "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize",
                                          "/completions", "/chat/completions", "/embeddings", "/models"};
  return k;
}

void send_json(httplib::Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, error_body(e.status, e.what(), e.type, e.param, e.code));
}

}  // namespace

struct Server::Impl {
  BatchEngine& engine;
  ServerOptions o;
  ApiLimits limits;
  Metrics metrics;
  Scheduler scheduler;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  std::once_flag shutdown_once;
  int port = -1;

  Impl(BatchEngine& e, const ServerOptions& opts)
      : engine(e), o(opts),
        scheduler(e, {.max_queue = opts.max_queue, .tokenizer = opts.tokenizer, .end_ids = opts.end_ids}, metrics) {
    limits.context = e.context();
    limits.vocab_size = e.config().vocab_size;
    limits.max_tokens = o.max_tokens;
    limits.default_max_tokens = std::min(o.default_max_tokens, o.max_tokens);
    limits.add_bos = o.add_bos;
    limits.model_id = o.model_id;
    if (!o.chat_template.empty()) limits.chat = std::make_shared<const ChatTemplate>(o.chat_template);
    limits.bos_token = o.bos_token;
    limits.eos_token = o.eos_token;
    limits.adapters = o.adapters;
    limits.tokenizer = o.tokenizer;
    limits.chat_unavailable = o.chat_unavailable;
    limits.sampling = o.sampling;
    routes();
  }

  // Every handler body runs here: an ApiError becomes its status and error object, anything else a 500.
  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, ApiError(400, e.what()));
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, e.what(), "server_error"));
      }
    };
  }

  void routes() {
    // A keep-alive connection holds its thread while idle: room for every slot, every queued request and idle
    // connections beside them.
    const int threads = o.http_threads > 0 ? o.http_threads
                                           : std::max(64, engine.slots() + static_cast<int>(o.max_queue)) + 16;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http.set_payload_max_length(o.max_body_bytes);
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    http.set_keep_alive_timeout(2);  // an idle keep-alive connection holds a thread (and delays stop)
    http.set_tcp_nodelay(true);  // a response is several small writes: without it each waits ~40 ms for an ACK
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!o.cors_origin.empty()) {
        res.set_header("Access-Control-Allow-Origin", o.cors_origin);
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        if (req.method == "OPTIONS") {
          res.status = 204;
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      if (o.api_key.empty() || req.path == "/" || req.path == "/health") {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      if (!constant_time_equal(req.get_header_value("Authorization"), "Bearer " + o.api_key)) {
        send_error(res, ApiError(401, "Invalid API key: send 'Authorization: Bearer KEY'", "authentication_error",
                                 "", "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const std::string what = res.status == 413   ? "the request body is too large"
                               : res.status == 404 ? "no route " + req.method + " " + req.path
                               : res.status == 405 ? "method not allowed"
                                                   : "bad request";
      send_json(res, res.status, error_body(res.status, what, "invalid_request_error"));
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_json(res, 500, error_body(500, "internal error", "server_error"));
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      metrics.request(known_paths().count(req.path) ? req.path : "other", res.status);
    });

    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kChatPage, "text/html; charset=utf-8");
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (stopping) return send_json(res, 503, {{"status", "shutting down"}});
      send_json(res, 200, {{"status", "ok"}, {"slots", engine.slots()}, {"slots_active", scheduler.active()},
                           {"queue_depth", scheduler.queue_depth()}});
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(), "text/plain; version=0.0.4");
    });
    auto models = [this](const httplib::Request&, httplib::Response& res) {
      const TritterConfig& c = engine.config();
      Json data = Json::array({{{"id", o.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "tritter"},
                                {"meta", {{"n_ctx_slot", engine.context()}, {"n_vocab", c.vocab_size},
                                          {"n_embd", c.hidden_size}, {"slots", engine.slots()}}}}});
      for (const std::string& a : o.adapters) {  // each adapter set is a model of its own (its LoRA on the base)
        data.push_back({{"id", a}, {"object", "model"}, {"created", 0}, {"owned_by", "tritter"},
                        {"parent", o.model_id}});
      }
      send_json(res, 200, {{"object", "list"}, {"data", data}});
    };
    http.Get("/v1/models", guarded(models));
    http.Get("/models", guarded(models));
    http.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const Json b = parse_body(req.body);
      if (!b.contains("content") || !b["content"].is_string()) throw ApiError(400, "'content': expected a string");
      const bool special = b.value("add_special", false) && o.add_bos;
      const Tokenizer& tok = tokenizer_of(limits);
      const auto ids = encode_text(tok, b["content"].get<std::string>(), special);
      Json t = Json::array();
      if (b.value("with_pieces", false)) {
        for (int32_t id : ids) t.push_back({{"id", id}, {"piece", token_label(tok, id)}});
      } else {
        t = ids;
      }
      send_json(res, 200, {{"tokens", t}});
    }));
    http.Post("/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const Json b = parse_body(req.body);
      if (!b.contains("tokens") || !b["tokens"].is_array()) throw ApiError(400, "'tokens': expected an array of ids");
      std::vector<int32_t> ids;
      for (const Json& t : b["tokens"]) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= engine.config().vocab_size) {
          throw ApiError(400, "'tokens': ids must be integers in 0 .. " + std::to_string(engine.config().vocab_size - 1));
        }
        ids.push_back(t.get<int32_t>());
      }
      send_json(res, 200, {{"content", decode_ids(tokenizer_of(limits), ids)}});
    }));
    auto embeddings = [this](const httplib::Request& req, httplib::Response& res) { embed(req, res); };
    http.Post("/v1/embeddings", guarded(embeddings));
    http.Post("/embeddings", guarded(embeddings));
    auto completions = [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, false); };
    auto chat = [this](const httplib::Request& req, httplib::Response& res) { generate(req, res, true); };
    http.Post("/v1/completions", guarded(completions));
    http.Post("/completions", guarded(completions));
    http.Post("/v1/chat/completions", guarded(chat));
    http.Post("/chat/completions", guarded(chat));
  }

  void submit(std::vector<Job> jobs) {
    if (stopping) throw ApiError(503, "the server is shutting down", "server_error", "", "unavailable");
    switch (scheduler.submit(std::move(jobs))) {
      case Scheduler::Submit::Ok: return;
      case Scheduler::Submit::QueueFull:
        throw ApiError(429, "the server is busy: " + std::to_string(o.max_queue) +
                                " requests are already waiting for a slot; retry later",
                       "rate_limit_exceeded", "", "queue_full");
      case Scheduler::Submit::Stopping:
        throw ApiError(503, "the server is shutting down", "server_error", "", "unavailable");
    }
  }

  // The model id a response names: the adapter set's when the request chose one.
  const std::string& model_of(const GenerationRequest& g) const {
    return g.adapter < 0 ? o.model_id : o.adapters[static_cast<size_t>(g.adapter)];
  }

  Clock::time_point deadline_of(Clock::time_point t0) const {
    return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
  }

  void embed(const httplib::Request& req, httplib::Response& res) {
    const auto t0 = Clock::now();
    const Json b = parse_body(req.body);
    const auto inputs = parse_embedding_input(b, limits);
    const int adapter = resolve_model(b, limits);
    auto ch = std::make_shared<Channel>();
    std::vector<Job> jobs;
    for (size_t i = 0; i < inputs.size(); ++i) {
      Job j;
      j.kind = Job::Kind::Embed;
      j.adapter = adapter;
      j.index = static_cast<int>(i);
      j.prompt = inputs[i];
      j.channel = ch;
      j.arrival = t0;
      j.deadline = deadline_of(t0);
      jobs.push_back(std::move(j));
    }
    submit(std::move(jobs));
    Json data = Json::array();
    std::vector<Json> out(inputs.size());
    int64_t tokens = 0;
    for (size_t got = 0; got < inputs.size();) {
      Event e;
      if (!ch->pop(e, std::chrono::milliseconds(1000))) {
        if (Clock::now() > deadline_of(t0)) {
          ch->cancel();
          throw ApiError(504, "the request timed out", "server_error", "", "timeout");
        }
        continue;
      }
      if (e.kind == Event::Kind::Error) throw ApiError(e.status, e.error);
      if (e.kind != Event::Kind::Embedding) continue;
      tokens += e.prompt_tokens;
      out[static_cast<size_t>(e.index)] = {{"object", "embedding"}, {"index", e.index}, {"embedding", e.embedding}};
      ++got;
    }
    for (auto& x : out) data.push_back(std::move(x));
    const std::string& model = adapter < 0 ? o.model_id : o.adapters[static_cast<size_t>(adapter)];
    send_json(res, 200, {{"object", "list"}, {"data", data}, {"model", model},
                         {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  }

  void generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    const auto t0 = Clock::now();
    const Json body = parse_body(req.body);
    const GenerationRequest g = parse_generation(body, chat, limits);
    auto ch = std::make_shared<Channel>();
    std::vector<Job> jobs;
    for (int i = 0; i < g.n; ++i) {
      Job j;
      j.index = i;
      j.prompt = g.prompt;
      j.max_tokens = g.max_tokens;
      j.sampler = g.sampler;
      j.sampler.seed = g.sampler.seed + static_cast<uint64_t>(i);
      j.stop = g.stop;
      j.top_logprobs = g.top_logprobs;
      j.stop_at_eos = !g.ignore_eos;
      j.adapter = g.adapter;
      j.channel = ch;
      j.arrival = t0;
      j.deadline = deadline_of(t0);
      jobs.push_back(std::move(j));
    }
    submit(std::move(jobs));
    auto relay = std::make_shared<Relay>(Relay{this, g, ch, random_id(chat ? "chatcmpl-" : "cmpl-"),
                                              static_cast<int64_t>(std::time(nullptr)), t0});
    res.set_chunked_content_provider(
        g.stream ? "text/event-stream" : "application/json",
        [relay](size_t, httplib::DataSink& sink) { return relay->run(sink); },
        [ch](bool) { ch->cancel(); });  // whatever ended the response, the scheduler may drop the jobs
    if (g.stream) res.set_header("Cache-Control", "no-cache");
  }

  // Moves one request's events into its response: SSE chunks as they come, or one JSON object at the end.
  struct Relay {
    Impl* s;
    GenerationRequest g;
    std::shared_ptr<Channel> ch;
    std::string id;
    int64_t created;
    Clock::time_point t0;

    bool write(httplib::DataSink& sink, const std::string& text) {
      if (sink.write(text.data(), text.size())) return true;
      ch->cancel();  // the client went away
      return false;
    }
    bool sse(httplib::DataSink& sink, const Json& j) { return write(sink, "data: " + dump(j) + "\n\n"); }

    Json chunk(int index, Json delta_or_text, const Json& finish, const Json& logprobs) const {
      Json c = {{"index", index}, {"logprobs", logprobs}, {"finish_reason", finish}};
      if (g.chat) c["delta"] = std::move(delta_or_text);
      else c["text"] = std::move(delta_or_text);
      return {{"id", id}, {"object", g.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
              {"model", s->model_of(g)}, {"choices", Json::array({c})}};
    }

    bool run(httplib::DataSink& sink) {
      std::vector<ChoiceResult> choices(static_cast<size_t>(g.n));
      int done = 0;
      int64_t prompt_tokens = 0, completion = 0, cached = 0;
      if (g.stream && g.chat) {
        for (int i = 0; i < g.n; ++i) {
          if (!sse(sink, chunk(i, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr))) return false;
        }
      }
      if (!g.chat && g.echo) {
        for (auto& c : choices) c.text = g.prompt_text;
        if (g.stream) {
          for (int i = 0; i < g.n; ++i) {
            if (!sse(sink, chunk(i, g.prompt_text, nullptr, nullptr))) return false;
          }
        }
      }
      while (done < g.n) {
        Event e;
        if (!ch->pop(e, std::chrono::milliseconds(1000))) {
          if (Clock::now() > s->deadline_of(t0) + std::chrono::seconds(5)) {  // the scheduler should have ended it
            ch->cancel();
            return false;
          }
          if (!write(sink, g.stream ? ": keep-alive\n\n" : " ")) return false;
          continue;
        }
        ChoiceResult& c = choices[static_cast<size_t>(e.index)];
        if (e.kind == Event::Kind::Error) {
          const Json err = error_body(e.status, e.error, "server_error");
          if (g.stream) {
            sse(sink, err);
            write(sink, "data: [DONE]\n\n");
          } else {
            write(sink, dump(err));
          }
          sink.done();
          return true;
        }
        if (e.kind == Event::Kind::Token) {
          c.text += e.text;
          if (g.top_logprobs >= 0 && e.token >= 0) c.tokens.push_back(e);
          if (g.stream && (!e.text.empty() || g.top_logprobs >= 0)) {
            Json lp = nullptr;
            if (g.top_logprobs >= 0 && e.token >= 0) lp = logprobs_json({e}, g.chat, tokenizer_of(s->limits));
            Json delta = g.chat ? Json{{"content", e.text}} : Json(e.text);
            if (!sse(sink, chunk(e.index, delta, nullptr, lp))) return false;
          }
          continue;
        }
        if (e.kind != Event::Kind::Done) continue;
        ++done;
        c.finish_reason = e.finish_reason;
        prompt_tokens = e.prompt_tokens;
        completion += e.completion_tokens;
        cached = std::max(cached, e.cached_tokens);
        if (g.stream && !sse(sink, chunk(e.index, g.chat ? Json::object() : Json(""), e.finish_reason, nullptr))) {
          return false;
        }
      }
      const Json usage = usage_json(prompt_tokens, completion, cached);
      if (g.stream) {
        if (g.include_usage) {
          Json u = chunk(0, "", nullptr, nullptr);
          u["choices"] = Json::array();
          u["usage"] = usage;
          if (!sse(sink, u)) return false;
        }
        if (!write(sink, "data: [DONE]\n\n")) return false;
        sink.done();
        return true;
      }
      Json arr = Json::array();
      for (int i = 0; i < g.n; ++i) {
        const ChoiceResult& c = choices[static_cast<size_t>(i)];
        const Json lp = g.top_logprobs >= 0 ? logprobs_json(c.tokens, g.chat, tokenizer_of(s->limits)) : Json(nullptr);
        if (g.chat) {
          arr.push_back({{"index", i}, {"message", {{"role", "assistant"}, {"content", c.text}}},
                         {"logprobs", lp}, {"finish_reason", c.finish_reason}});
        } else {
          arr.push_back({{"index", i}, {"text", c.text}, {"logprobs", lp}, {"finish_reason", c.finish_reason}});
        }
      }
      const Json r = {{"id", id}, {"object", g.chat ? "chat.completion" : "text_completion"}, {"created", created},
                      {"model", s->model_of(g)}, {"choices", arr}, {"usage", usage}};
      if (!write(sink, dump(r))) return false;
      sink.done();
      return true;
    }
  };

  void shutdown() {
    std::call_once(shutdown_once, [this] {
      stopping = true;
      std::mutex m;
      std::condition_variable cv;
      bool drained = false;
      std::thread grace([&] {
        std::unique_lock<std::mutex> lock(m);
        const auto limit = std::chrono::duration<double>(o.shutdown_grace_s);
        if (!cv.wait_for(lock, limit, [&] { return drained; })) scheduler.cancel_all();
      });
      scheduler.stop(false);  // returns once every job has finished or been cancelled
      {
        std::lock_guard<std::mutex> lock(m);
        drained = true;
      }
      cv.notify_all();
      grace.join();
      // Let the handlers write what their channels still hold before the listener and its threads stop.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      http.stop();
    });
  }
};

Server::Server(BatchEngine& engine, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(engine, options)) {}

Server::~Server() { shutdown(); }

int Server::bind() {
  Impl& s = *impl_;
  if (s.o.port == 0) {
    s.port = s.http.bind_to_any_port(s.o.host);
  } else {
    s.port = s.http.bind_to_port(s.o.host, s.o.port) ? s.o.port : -1;
  }
  if (s.port < 0) throw_error("serve: cannot listen on ", s.o.host, ":", s.o.port, " (in use, or not an address here)");
  return s.port;
}

bool Server::run() { return impl_->http.listen_after_bind(); }

void Server::shutdown() { impl_->shutdown(); }

}  // namespace tritter::serve
