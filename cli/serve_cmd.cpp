// `tritter serve -m MODEL`: the OpenAI-compatible HTTP server with continuous batching (src/serve/, docs/serve.md).
// Loads the packed model (mmap), makes --parallel slots sharing --ctx positions (as llama-server splits -c over
// -np), serves until SIGTERM or Ctrl-C, then shuts down gracefully.
#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "commands.h"
#include "core/error.h"
#include "core/memory.h"
#include "infer/batch_engine.h"
#include "infer/lora_apply.h"
#include "io/safetensors.h"
#include "model/packed_model.h"
#include "model/peft.h"
#include "api/model_source.h"
#include "model/model_files.h"
#include "model/model_text.h"
#include "serve/server.h"
#include "text/chat_template.h"

namespace tritter::cli {

namespace {
// "NAME=DIR[:w]" → {NAME, "DIR[:w]"}; a spec without a name ("DIR[:w]", or '=' after a '/') → {"", spec}. A name
// is letters, digits and . _ -.
std::pair<std::string, std::string> split_lora_name(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return {"", spec};
  const std::string name = spec.substr(0, eq);
  for (char ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') return {"", spec};
  }
  if (eq + 1 == spec.size()) throw_error("--lora '", spec, "': no adapter directory after '", name, "='");
  return {name, spec.substr(eq + 1)};
}

struct ServeCmdOptions {
  std::string head = "auto";  // --head: the LM head of a converted model
  std::string model, kv = "f16", max_body = "1M";
  int parallel = 4;
  int64_t ctx = 0, batch = 64;
  std::vector<std::string> lora;
  serve::ServerOptions server;
  bool show_port = false;
};
}  // namespace

void add_serve_command(CLI::App& app, GlobalOptions& global) {
  auto o = std::make_shared<ServeCmdOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API (continuous batching)");
  cmd->add_option("-m,--model", o->model, "Model: packed file, checkpoint, Hugging Face folder or GGUF file")->required();
  cmd->add_option("--host", o->server.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->server.port, "Port (0 = any free port, printed at start)")->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "Slots: sequences decoded together")->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx", o->ctx, "Context positions of all slots together, split evenly (0 = slots x min(max_position_embeddings, 2048))")
      ->capture_default_str();
  add_head_option(cmd, &o->head);
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8, int4 (or llama.cpp's q8_0, q4_0); f16 as generate")->capture_default_str();
  cmd->add_option("-b,--batch", o->batch, "Prompt tokens per prefill chunk (interleaved with decoding)")->capture_default_str();
  cmd->add_option("--api-key", o->server.api_key, "Require 'Authorization: Bearer KEY' (not on / and /health)");
  cmd->add_option("--cors", o->server.cors_origin, "Send CORS headers allowing this origin (off by default)");
  cmd->add_option("--alias", o->server.model_id, "Model id the API reports and accepts (default: the file's stem)");
  cmd->add_option("--max-body", o->max_body, "Largest request body (413 above)")->capture_default_str();
  cmd->add_option("--max-tokens", o->server.max_tokens, "Largest max_tokens a request may ask for")->capture_default_str();
  cmd->add_option("--default-max-tokens", o->server.default_max_tokens, "max_tokens when a request gives none")
      ->capture_default_str();
  cmd->add_option("--queue", o->server.max_queue, "Requests that may wait for a slot (429 beyond)")->capture_default_str();
  cmd->add_option("--timeout", o->server.timeout_s, "Seconds a request may take in all")->capture_default_str();
  cmd->add_option("--grace", o->server.shutdown_grace_s, "Seconds in-flight requests get to finish on SIGTERM")
      ->capture_default_str();
  cmd->add_option("--http-threads", o->server.http_threads, "HTTP worker threads (0 = max(64, slots + queue) + 16)")
      ->capture_default_str();
  cmd->add_option("--lora", o->lora,
                  "LoRA adapter DIR[:weight] applied to every request, or NAME=DIR[:weight] served as model NAME "
                  "(chosen per request by \"model\"; repeatable, one NAME may list several)");
  cmd->callback([o, &global] {
    // Signals go to one thread (sigwait) that shuts the server down; blocked before any thread starts.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a client that disconnects must not kill the server

    const auto ctx = make_context(global);
    // Any model file (a packed file is mapped; the rest converted in memory), tokenized by its own tokenizer (a HF
    // folder's tokenizer.json, a GGUF's vocabulary, the byte tokenizer for Tritter's files); its chat template (if
    // any) replaces the built-in format.
    const ModelSource src = resolve_model_source(o->model);
    LoadedModel loaded = load_any_model(src.file, &ctx->memory, LoadOptions{head_choice_from_name(o->head)});
    const ModelText text = load_model_text(src.kind, src.file, loaded.folder);
    if (text.tokenizer->vocab_size() > loaded.model.config().vocab_size) {
      throw_error("serve: model '", src.file.string(), "': the tokenizer (", text.where, ") has ",
                  text.tokenizer->vocab_size(), " ids, expected at most the model's vocab_size ",
                  loaded.model.config().vocab_size);
    }
    const PackedModel model = std::move(loaded.model);
    const TritterConfig& c = model.config();
    const int64_t per_slot = o->ctx > 0 ? o->ctx / o->parallel : std::min<int64_t>(c.max_position_embeddings, 2048);
    if (per_slot < 2) throw_error("--ctx ", o->ctx, ": ", per_slot, " positions per slot, expected at least 2");
    BatchEngineOptions eo{.slots = o->parallel, .context = per_slot, .kv_dtype = kv_dtype_from_name(kv_cache_name(o->kv)),
                          .max_batch = o->batch};
    BatchEngine engine(*ctx, model.weights(), eo);
    serve::ServerOptions so = o->server;
    if (so.model_id.empty() || so.model_id == "tritter") so.model_id = std::filesystem::path(o->model).stem().string();
    // Unnamed adapters apply to every request; named ones form sets a request picks by "model" (on top of those).
    LoraSet lora;
    std::vector<std::unique_ptr<LoraSet>> named;
    for (const std::string& spec : o->lora) {
      const auto [name, rest] = split_lora_name(spec);
      const auto [dir, weight] = parse_lora_spec(rest);
      if (name.empty()) {
        lora.add(dir, weight, c, &ctx->memory);
        continue;
      }
      if (name == so.model_id) throw_error("--lora '", spec, "': the name '", name, "' is the base model's id");
      const auto at = std::find(so.adapters.begin(), so.adapters.end(), name);
      if (at == so.adapters.end()) {
        so.adapters.push_back(name);
        named.push_back(std::make_unique<LoraSet>());
      }
      named[static_cast<size_t>(std::find(so.adapters.begin(), so.adapters.end(), name) - so.adapters.begin())]
          ->add(dir, weight, c, &ctx->memory);
    }
    engine.set_lora(&lora);
    for (const auto& set : named) engine.add_adapter(set.get());
    so.max_body_bytes = static_cast<size_t>(parse_bytes(o->max_body, "--max-body"));
    so.add_bos = loaded.add_bos;
    if (text.chat_template != builtin_chat_template()) so.chat_template = text.chat_template;
    so.bos_token = text.bos_token;
    so.eos_token = text.eos_token;
    so.tokenizer = text.tokenizer.get();
    so.end_ids = text.end_ids;
    // generation_config.json's sampling for the fields a request leaves out, as `tritter generate` applies it.
    const GenerationConfig& g = text.generation;
    if (const std::optional<float> t = generation_temperature(g)) so.sampling.temperature = *t;
    if (g.top_p) so.sampling.top_p = *g.top_p;
    if (g.top_k) so.sampling.top_k = *g.top_k;
    if (g.repetition_penalty) so.sampling.repeat_penalty = *g.repetition_penalty;
    if (text.chat_template.empty()) {  // a BPE model without a template: the built-in format is byte-level
      so.chat_unavailable = "model '" + src.file.string() + "' has no chat template (" + text.where +
                            "; expected tokenizer_config.json chat_template or GGUF tokenizer.chat_template), so "
                            "only /v1/completions serves it";
    }
    serve::Server server(engine, so);
    const int port = server.bind();
    std::string adapters;
    for (const auto& a : so.adapters) adapters += ", adapter '" + a + "'";
    std::printf("tritter serve: http://%s:%d (model '%s'%s, %d slots x %lld positions, KV %s/slot, %d threads)\n",
                so.host.c_str(), port, so.model_id.c_str(), adapters.c_str(), engine.slots(),
                static_cast<long long>(engine.context()),
                format_bytes(static_cast<int64_t>(engine.slot_cache_bytes())).c_str(), ctx->threads);
    std::fflush(stdout);
    std::atomic<bool> ended{false};
    std::thread signals([&] {
      int sig = 0;
      sigwait(&set, &sig);
      if (!ended) std::fprintf(stderr, "tritter serve: signal %d, shutting down\n", sig);
      server.shutdown();
    });
    const bool ok = server.run();
    ended = true;
    pthread_kill(signals.native_handle(), SIGTERM);  // wakes the signal thread if the listener ended first
    signals.join();
    if (!ok) throw_error("serve: the listener on ", so.host, ":", port, " failed");
    std::fprintf(stderr, "tritter serve: stopped\n");
  });
}

}  // namespace tritter::cli
