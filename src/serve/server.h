// The HTTP server: OpenAI-compatible endpoints over the scheduler, on cpp-httplib (a thread per connection from a
// bounded pool; the handlers only parse, submit and relay: the scheduler thread alone runs the model).
//   POST /v1/completions, /v1/chat/completions (server-sent events with stream: true, ending "data: [DONE]"),
//   POST /v1/embeddings, GET /v1/models, GET /health, GET /metrics (Prometheus text),
//   POST /tokenize, /detokenize (llama-server's shapes), GET / (the chat page, built into the binary).
// Limits: request bodies over max_body_bytes → 413; max_tokens above the cap → 400; a prompt that fills the
// context → 400; a full queue → 429; while shutting down → 503; every error an OpenAI error object. A client
// that disconnects cancels its generation (noticed at the next write; a silent wait writes a keep-alive every
// second: an SSE comment, or a space before a JSON body). --api-key: "Authorization: Bearer KEY" compared in
// constant time on every path but / and /health. CORS headers only when an origin is configured.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "infer/batch_engine.h"
#include "serve/openai.h"
#include "text/tokenizer.h"

namespace tritter::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port (bind() says which)
  std::string api_key;               // empty: no key asked
  std::string cors_origin;           // empty: no CORS headers (off)
  size_t max_body_bytes = 1 << 20;
  int64_t max_tokens = 4096;         // the most a request may ask for
  int64_t default_max_tokens = 256;
  int64_t max_queue = 64;            // requests waiting for a slot before 429
  double timeout_s = 600;            // per request, from arrival to its last token
  double shutdown_grace_s = 10;      // SIGTERM: in-flight requests get this long to finish, then are cancelled
  int http_threads = 0;              // 0: max(64, slots + max_queue) + 16 (each connection holds one)
  std::string model_id = "tritter";
  std::vector<std::string> adapters;  // model ids of the engine's adapter sets, in add_adapter order
  bool add_bos = false;
  // Chat template (Jinja source, the model's tokenizer_config.json / GGUF one) and its bos/eos text; "": Tritter's
  // built-in byte-level format (text/chat_template.h builtin_chat_template), which stops at "\n<|".
  std::string chat_template, bos_token, eos_token;
  // The model's own tokenizer (must outlive the server) and the ids that end a generation (eos, the chat's
  // end-of-turn tokens, generation_config.json's eos_token_id); null / empty: the byte tokenizer and its <eos>.
  const Tokenizer* tokenizer = nullptr;
  std::vector<int32_t> end_ids{};
  // Non-empty: chat requests are refused (400) with this message (a BPE model whose files carry no template; the
  // built-in format is byte-level).
  std::string chat_unavailable;
  SamplingDefaults sampling;  // for fields a request omits (the model's generation_config.json)
};

class Server {
 public:
  // `engine` must outlive the server; the server's scheduler thread is the only one that uses it.
  Server(BatchEngine& engine, const ServerOptions& options);
  ~Server();
  // Binds the socket; returns the port. Throws Error when it cannot.
  int bind();
  // Serves until shutdown() (from another thread). Returns false when the listener failed.
  bool run();
  // Graceful: refuses new requests (503), lets in-flight ones finish within the grace, cancels the rest, then
  // stops the listener. Safe to call from any thread, more than once.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tritter::serve
