// `tritter generate --model FILE --prompt TEXT|--file F`: open a model (a packed file is mapped; a checkpoint, a
// training run, a HF folder or a GGUF file is converted in memory), encode the prompt with the model's tokenizer,
// prefill, decode with the KV cache and stream text; a timings line at the end (stderr), the per-phase split with
// --verbose, and one JSON object on stdout with --json. --chat renders the prompt as one user turn with the model's
// chat template; -cnv holds a conversation read from standard input (one line per turn), keeping the KV cache
// across turns. Sampling defaults are llama.cpp's (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05) with a
// random seed, or a HF folder's generation_config.json; --temp 0 is greedy. llama.cpp's long flag names are
// accepted as aliases.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/memory.h"      // format_bytes, process_memory: the report's numbers
#include "inference_commands.h"
#include "io/atomic_file.h"   // read_file_bytes
#include "tritter.h"          // everything about the model: the public API, nothing around it

namespace tritter::cli {

namespace {
struct GenerateCmdOptions {
  std::string head = "auto";  // --head: the LM head of a converted model
  std::string layout = "auto";  // --ternary-layout
  std::string model, prompt, file, kv = "f16", seed = "-1";
  bool prompt_given = false, bos = false, no_bos = false, ignore_eos = false, json = false;
  bool escape = false, no_display_prompt = false, chat = false, conversation = false;
  std::string system, chat_template_file;
  int64_t ctx = 0, batch = 64, max_tokens = 128;
  GenerationParams gen;
  std::string memory_budget;  // layer streaming (infer/streaming_engine.h) when given
  int layer_group_size = 0;
  bool no_prefetch = false;
  std::vector<std::string> lora;  // DIR[:weight], LoRA adapters applied unmerged (infer/lora_apply.h)
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// -e: llama.cpp's escapes in the prompt: \n \t \r \\ \' \" \0 and \xHH; any other backslash stays as written.
std::string process_escapes(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 == in.size()) {
      out += in[i];
      continue;
    }
    const char c = in[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case '\\': case '\'': case '"': out += c; break;
      case 'x':
        if (i + 2 < in.size() && hex_digit(in[i + 1]) >= 0 && hex_digit(in[i + 2]) >= 0) {
          out += static_cast<char>(hex_digit(in[i + 1]) * 16 + hex_digit(in[i + 2]));
          i += 2;
          break;
        }
        [[fallthrough]];
      default: out += '\\'; out += c;
    }
  }
  return out;
}

// What a conversation's session holds, as text and tokens, so that the next turn feeds only what is new.
struct Conversation {
  std::vector<ChatTurn> messages;
  std::string fed_text;  // the text whose tokens the KV cache holds
};

// Tokens generated and forwarded through the engine: every one when the model ended the turn (its end token is
// never forwarded), all but the last otherwise (the loop stops before forwarding it).
std::vector<int32_t> forwarded_tokens(const Generation& r) {
  std::vector<int32_t> t = r.tokens;
  if (r.stop_reason != "eos" && !t.empty()) t.pop_back();
  return t;
}
}  // namespace

void rewrite_llama_flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "-cnv") argv[i] = const_cast<char*>("--conversation");
    else if (std::string_view(argv[i]) == "-sys") argv[i] = const_cast<char*>("--system");
  }
}

void add_generate_command(CLI::App& app, GlobalOptions& global) {
  auto o = std::make_shared<GenerateCmdOptions>();
  o->gen.sampling.temperature = 0.8f;  // llama.cpp's default; the library's Sampling{} stays greedy
  auto* cmd = app.add_subcommand("generate", "Generate text from a model (Tritter file or run, HF folder, GGUF file)");
  cmd->add_option("-m,--model", o->model, "Packed file, checkpoint, training run directory, HF model folder or GGUF file")
      ->required();
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Prompt text (this or --file)");
  auto* f = cmd->add_option("-f,--file", o->file, "Read the prompt from this file; - reads standard input");
  p->excludes(f);
  cmd->add_flag("-e,--escape", o->escape, "Process escapes in the prompt: \\n \\t \\r \\\\ \\' \\\" \\xHH");
  cmd->add_flag("--no-display-prompt", o->no_display_prompt, "Do not echo the prompt before the continuation");
  cmd->add_option("-n,--max-tokens,--n-predict", o->max_tokens, "Tokens to generate at most; -1 = until <eos> or "
                  "the context is full")->capture_default_str();
  cmd->add_option("--exit", o->gen.exit, "softmax (sample the logits) or knn (cosine head: nearest embedding row)")
      ->capture_default_str();
  cmd->add_option("--latent-steps", o->gen.latent_steps, "Continuous thought: after the prompt, <bot>, N steps fed "
                  "the last hidden state, <eot> (a model trained for it; vocab_size >= 268)")
      ->capture_default_str();
  cmd->add_option("--latent-scale", o->gen.latent_scale, "Scale of a fed-back thought (0 = the embedding rows' RMS)")
      ->capture_default_str();
  cmd->add_option("--temp,--temperature", o->gen.sampling.temperature, "Temperature (0 = greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", o->gen.sampling.top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o->gen.sampling.top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", o->gen.sampling.min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->gen.sampling.repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o->gen.sampling.repeat_last_n, "Tokens the penalty looks back")->capture_default_str();
  cmd->add_option("-s,--seed", o->seed, "Sampling seed; -1 = random (printed with -v and in --json)")
      ->capture_default_str();
  cmd->add_option("--stop,-r,--reverse-prompt", o->gen.stop, "Stop string (repeatable)");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep going after <eos>");
  cmd->add_flag("--bos", o->bos, "Prepend <bos> (default: as the model file's add_bos_token says)");
  cmd->add_flag("--no-bos", o->no_bos, "Do not prepend <bos>")->excludes("--bos");
  cmd->add_option("-c,--ctx,--ctx-size", o->ctx, "Context length (0 = min(max_position_embeddings, 4096))")
      ->capture_default_str();
  add_head_option(cmd, &o->head);
  add_ternary_layout_option(cmd, &o->layout);
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8, int4 (or llama.cpp's q8_0, q4_0)")
      ->capture_default_str();
  cmd->add_option("-b,--batch,--batch-size", o->batch, "Prompt tokens per forward chunk")->capture_default_str();
  cmd->add_option("--memory-budget", o->memory_budget, "Stream layers from the file within this budget (512M, 2G)");
  cmd->add_option("--layer-group-size", o->layer_group_size, "Layers per streamed group (0 = from the budget)");
  cmd->add_flag("--no-prefetch", o->no_prefetch, "Streaming: one buffer, read each group when needed");
  cmd->add_option("--lora", o->lora, "LoRA adapter DIR[:weight] (PEFT layout; repeatable), applied unmerged");
  cmd->add_flag("--json", o->json, "Print one JSON object (text and timings) instead of streaming");
  auto* chat = cmd->add_flag("--chat", o->chat, "Render the prompt as one user turn with the model's chat template");
  auto* cnv = cmd->add_flag("--cnv,--conversation", o->conversation,
                            "Chat: read user turns from standard input, one line each (-p is the first), until EOF");
  chat->excludes(cnv);
  cmd->add_option("--system,--sys,--system-prompt", o->system, "Chat: the system message");
  cmd->add_option("--chat-template-file", o->chat_template_file, "Chat: use this Jinja template instead of the model's");
  cmd->callback([o, p, cmd, &global] {
    const auto ctx = make_context(global);  // the thread count (and OpenMP's default), as every command
    const bool from_file = !o->file.empty();
    std::string text = o->prompt;
    if (o->file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else if (from_file) {
      text = read_file_bytes(o->file);
    }
    if (o->escape) text = process_escapes(text);
    o->gen.stop_at_eos = !o->ignore_eos;
    if (o->max_tokens < -1) throw_error("--n-predict: found ", o->max_tokens, ", expected -1 (until <eos> or a full "
                                        "context) or a count >= 0");
    o->gen.max_tokens = o->max_tokens == -1 ? std::numeric_limits<int64_t>::max() : o->max_tokens;
    o->gen.sampling.seed = parse_seed(o->seed, "--seed");
    if (global.verbose) std::fprintf(stderr, "model: %s\n", describe_model_path(o->model).c_str());
    OpenOptions open{.lora = o->lora, .head = o->head,
                     .ternary_layout = effective_ternary_layout(o->layout, global.kernels)};
    if (!o->memory_budget.empty()) {
      const char* wayland = std::getenv("WAYLAND_DISPLAY");
      const char* x11 = std::getenv("DISPLAY");
      open.stream = true;
      open.memory_budget = parse_size(o->memory_budget, "--memory-budget");
      open.desktop = wayland && *wayland ? "wayland" : x11 && *x11 ? "x11" : "headless";
      open.layer_group_size = o->layer_group_size;
      open.prefetch = !o->no_prefetch;
    }
    Model model = Model::open(o->model, open);
    if (!o->chat_template_file.empty()) model.set_chat_template(read_file_bytes(o->chat_template_file));
    const ModelInfo info = model.info();
    if (global.verbose) {
      std::fprintf(stderr, "tokenizer: %s (%lld ids) from %s\n", info.tokenizer.c_str(),
                   static_cast<long long>(info.tokenizer_vocab_size), info.tokenizer_source.c_str());
      if (info.load_seconds > 0) std::fprintf(stderr, "load: %.2f s (converted into the engine's layout)\n", info.load_seconds);
      std::fprintf(stderr, "ternary layout: %s (%s bits per weight)\n", info.ternary_layout.c_str(),
                   info.ternary_layout == "t20" ? "1.6" : "2");
    }
    // generation_config.json's sampling, where the flags say nothing.
    const GenerationDefaults gd = model.generation_defaults();
    Sampling& sp = o->gen.sampling;
    if (gd.has_temperature && cmd->count("--temp") == 0) sp.temperature = gd.temperature;
    if (gd.has_top_k && cmd->count("--top-k") == 0) sp.top_k = gd.top_k;
    if (gd.has_top_p && cmd->count("--top-p") == 0) sp.top_p = gd.top_p;
    if (gd.has_repeat_penalty && cmd->count("--repeat-penalty") == 0) sp.repeat_penalty = gd.repeat_penalty;
    const bool chatting = o->chat || o->conversation;
    // Tritter's trainer starts documents without <bos>, and files it packs say so (add_bos_token). A chat template
    // writes <bos> itself where the model wants one (bos_token), so a chat prompt gets none added unless asked.
    const bool builtin_chat = !model.chat_stop().empty();
    const bool bos = o->bos || (!o->no_bos && (chatting ? builtin_chat && info.add_bos : info.add_bos));
    Session session(model, {.context = o->ctx, .threads = ctx->threads, .kv_cache = kv_cache_name(o->kv), .batch = o->batch,
                            .kernels = global.kernels, .timings = global.verbose});
    if (global.verbose) {
      std::fprintf(stderr, "sampling: %s, top-k %d, top-p %.2f, min-p %.2f, repeat-penalty %.2f, seed %llu\n",
                   sp.temperature > 0 ? ("temperature " + std::to_string(sp.temperature).substr(0, 4)).c_str()
                                      : "greedy (temperature 0)",
                   sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty, static_cast<unsigned long long>(sp.seed));
      if (chatting) std::fprintf(stderr, "chat template: %s\n", info.chat_template_source.c_str());
    }
    auto stream = [&](int32_t, std::string_view piece) {
      if (o->json || piece.empty()) return true;
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
    auto report = [&](const Generation& r) {
      const SessionStats stats = session.stats();
      const double pp = r.prompt_s > 0 ? r.prompt_tokens / r.prompt_s : 0;
      const double tg = r.decode_s > 0 ? r.decode_steps / r.decode_s : 0;
      const ProcessMemory mem = process_memory();
      if (o->json) {
        nlohmann::ordered_json j;
        j["text"] = r.text;  // invalid UTF-8 bytes would make dump() throw: replaced below
        j["prompt_tokens"] = r.prompt_tokens;
        j["generated_tokens"] = r.tokens.size();
        j["stop_reason"] = r.stop_reason;
        j["seed"] = sp.seed;
        j["temperature"] = sp.temperature;
        j["prompt_seconds"] = r.prompt_s;
        j["prompt_tokens_per_second"] = pp;
        j["decode_steps"] = r.decode_steps;
        if (r.latent_steps > 0) j["latent_steps"] = r.latent_steps;
        j["decode_seconds"] = r.decode_s;
        j["decode_tokens_per_second"] = tg;
        j["peak_rss_bytes"] = mem.peak_rss_bytes;
        j["kv_cache_bytes"] = stats.kv_cache_bytes;
        std::printf("%s\n", j.dump(o->conversation ? -1 : 2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        std::fflush(stdout);
        return;
      }
      std::printf("\n");
      std::fflush(stdout);  // the text ends before the timings line on stderr, also when both go to one pipe
      if (global.quiet) return;
      std::fprintf(stderr, "prompt: %lld tokens, %.1f t/s | generated: %zu tokens (%s), %.1f t/s | peak memory %s\n",
                   static_cast<long long>(r.prompt_tokens), pp, r.tokens.size(), r.stop_reason.c_str(), tg,
                   format_bytes(static_cast<double>(mem.peak_rss_bytes)).c_str());
      if (global.verbose) {
        std::fprintf(stderr, "phases: matmul %.3f s, attention %.3f s, head %.3f s, other %.3f s, sampling %.3f s\n",
                     stats.matmul_s, stats.attention_s, stats.head_s, stats.other_s, r.sample_s);
        std::fprintf(stderr, "model: %s read per token (head %s), kv cache %s (%s, %lld positions), threads %d\n",
                     format_bytes(static_cast<double>(stats.bytes_per_token)).c_str(), stats.head.c_str(),
                     format_bytes(static_cast<double>(stats.kv_cache_bytes)).c_str(), stats.kv_cache.c_str(),
                     static_cast<long long>(stats.context), stats.threads);
        std::fprintf(stderr, "%s", stats.streaming_report.c_str());
      }
    };
    if (!chatting) {
      if (!from_file && p->count() == 0) throw_error("generate: give --prompt TEXT or --file F");
      if (text.empty()) throw_error(from_file ? "--file '" + o->file + "'" : std::string("--prompt"), ": empty prompt");
      const auto ids = model.tokenize(text, bos);
      // Refused before it is echoed: a 10 MB prompt printed and then rejected buries the message.
      if (static_cast<int64_t>(ids.size()) > session.context()) {
        throw_error("generate: the prompt has ", ids.size(), " tokens, more than the context of ", session.context(),
                    " positions; expected at most ", session.context(), " (raise --ctx or shorten the prompt)");
      }
      if (!o->json && !o->no_display_prompt) {  // the prompt first, as llama.cpp prints it: the continuation reads on from it
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      }
      report(session.generate(ids, o->gen, stream));
      return;
    }
    // Chat: the template's stop strings join the user's; each turn feeds only the text the cache lacks.
    if (!model.has_chat_template()) model.chat_prompt({}, true);  // throws the model's "no chat template" error
    for (const std::string& s : model.chat_stop()) o->gen.stop.push_back(s);
    Conversation cv;
    if (!o->system.empty()) cv.messages.push_back({"system", o->system});
    auto turn = [&](const std::string& user) {
      cv.messages.push_back({"user", user});
      const std::string full = model.chat_prompt(cv.messages, true);
      std::vector<int32_t> ids;
      if (!cv.fed_text.empty() && full.compare(0, cv.fed_text.size(), cv.fed_text) == 0) {
        ids = model.tokenize(std::string_view(full).substr(cv.fed_text.size()), false);
      } else {  // the template rewrote earlier turns (or this is the first): start the sequence again
        if (global.verbose && !cv.fed_text.empty()) std::fprintf(stderr, "chat: the template changed earlier turns; re-reading the conversation\n");
        session.reset();
        ids = model.tokenize(full, bos);
      }
      if (ids.empty()) throw_error("chat: the template rendered nothing new for the turn");
      if (session.position() + static_cast<int64_t>(ids.size()) >= session.context()) {
        throw_error("chat: the conversation needs ", session.position() + static_cast<int64_t>(ids.size()),
                    " positions, more than the context of ", session.context(), " (raise --ctx)");
      }
      if (global.verbose) {
        std::fprintf(stderr, "chat: %zu new prompt tokens after %lld held in the cache\n", ids.size(),
                     static_cast<long long>(session.position()));
      }
      const Generation r = session.generate(ids, o->gen, stream);
      cv.fed_text = full;
      for (const int32_t id : forwarded_tokens(r)) cv.fed_text += model.token_text(id);
      cv.messages.push_back({"assistant", r.text});
      report(r);
      return r.stop_reason != "context";
    };
    if (o->chat) {
      if (!from_file && p->count() == 0) throw_error("generate --chat: give --prompt TEXT or --file F (the user's message)");
      turn(text);
      return;
    }
    if (!text.empty() && !turn(text)) return;
    for (std::string line;;) {
      if (!o->json) std::fprintf(stderr, "> "), std::fflush(stderr);
      if (!std::getline(std::cin, line)) break;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (o->escape) line = process_escapes(line);
      if (!turn(line)) break;
    }
  });
}

}  // namespace tritter::cli
