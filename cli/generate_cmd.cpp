// `tritter generate --model FILE --prompt TEXT|--file F`: load a packed model (mmap), encode the prompt with the
// byte tokenizer, prefill, decode with the KV cache and stream text; a timings line at the end (stderr), the
// per-phase split with --verbose, and one JSON object on stdout with --json.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/memory.h"      // format_bytes, process_memory: the report's numbers
#include "inference_commands.h"
#include "io/atomic_file.h"   // read_file_bytes
#include "tritter.h"          // everything about the model: the public API, nothing around it

namespace tritter::cli {

namespace {
struct GenerateCmdOptions {
  std::string model, prompt, file, kv = "f32";
  bool prompt_given = false, bos = false, no_bos = false, ignore_eos = false, json = false;
  int64_t ctx = 0, batch = 64;
  GenerationParams gen;
  std::string memory_budget;  // layer streaming (infer/streaming_engine.h) when given
  int layer_group_size = 0;
  bool no_prefetch = false;
  std::vector<std::string> lora;  // DIR[:weight], LoRA adapters applied unmerged (infer/lora_apply.h)
};
}  // namespace

void add_generate_command(CLI::App& app, GlobalOptions& global) {
  auto o = std::make_shared<GenerateCmdOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a packed model");
  cmd->add_option("-m,--model", o->model, "Packed model file (tritter pack / tritter init --packed)")->required();
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* f = cmd->add_option("-f,--file", o->file, "Read the prompt from this file");
  p->excludes(f);
  cmd->add_option("-n,--max-tokens", o->gen.max_tokens, "Tokens to generate at most")->capture_default_str();
  cmd->add_option("--temp", o->gen.sampling.temperature, "Temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->gen.sampling.top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o->gen.sampling.top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", o->gen.sampling.min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->gen.sampling.repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o->gen.sampling.repeat_last_n, "Tokens the penalty looks back")->capture_default_str();
  cmd->add_option("-s,--seed", o->gen.sampling.seed, "Sampling seed")->capture_default_str();
  cmd->add_option("--stop", o->gen.stop, "Stop string (repeatable)");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep going after <eos>");
  cmd->add_flag("--bos", o->bos, "Prepend <bos> (default: as the model file's add_bos_token says)");
  cmd->add_flag("--no-bos", o->no_bos, "Do not prepend <bos>")->excludes("--bos");
  cmd->add_option("-c,--ctx", o->ctx, "Context length (0 = min(max_position_embeddings, 4096))")->capture_default_str();
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8, int4")->capture_default_str();
  cmd->add_option("-b,--batch", o->batch, "Prompt tokens per forward chunk")->capture_default_str();
  cmd->add_option("--memory-budget", o->memory_budget, "Stream layers from the file within this budget (512M, 2G)");
  cmd->add_option("--layer-group-size", o->layer_group_size, "Layers per streamed group (0 = from the budget)");
  cmd->add_flag("--no-prefetch", o->no_prefetch, "Streaming: one buffer, read each group when needed");
  cmd->add_option("--lora", o->lora, "LoRA adapter DIR[:weight] (PEFT layout; repeatable), applied unmerged");
  cmd->add_flag("--json", o->json, "Print one JSON object (text and timings) instead of streaming");
  cmd->callback([o, p, &global] {
    const auto ctx = make_context(global);  // the thread count (and OpenMP's default), as every command
    const bool from_file = !o->file.empty();
    const std::string text = from_file ? read_file_bytes(o->file) : o->prompt;
    if (!from_file && p->count() == 0) throw_error("generate: give --prompt TEXT or --file F");
    if (text.empty()) throw_error(from_file ? "--file '" + o->file + "'" : std::string("--prompt"), ": empty prompt");
    o->gen.stop_at_eos = !o->ignore_eos;
    OpenOptions open{.lora = o->lora};
    if (!o->memory_budget.empty()) {
      const char* wayland = std::getenv("WAYLAND_DISPLAY");
      const char* x11 = std::getenv("DISPLAY");
      open.stream = true;
      open.memory_budget = parse_size(o->memory_budget, "--memory-budget");
      open.desktop = wayland && *wayland ? "wayland" : x11 && *x11 ? "x11" : "headless";
      open.layer_group_size = o->layer_group_size;
      open.prefetch = !o->no_prefetch;
    }
    const Model model = Model::open(o->model, open);
    // Tritter's trainer starts documents without <bos>, and files it packs say so (add_bos_token).
    const bool bos = o->bos || (!o->no_bos && model.info().add_bos);
    const auto ids = model.tokenize(text, bos);
    Session session(model, {.context = o->ctx, .threads = ctx->threads, .kv_cache = o->kv, .batch = o->batch,
                            .kernels = global.kernels});
    if (!o->json) {  // the prompt first, as llama.cpp prints it: the continuation reads on from it
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    const Generation r = session.generate(ids, o->gen, [&](int32_t, std::string_view piece) {
      if (o->json || piece.empty()) return true;
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    });
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
      j["prompt_seconds"] = r.prompt_s;
      j["prompt_tokens_per_second"] = pp;
      j["decode_steps"] = r.decode_steps;
      j["decode_seconds"] = r.decode_s;
      j["decode_tokens_per_second"] = tg;
      j["peak_rss_bytes"] = mem.peak_rss_bytes;
      j["kv_cache_bytes"] = stats.kv_cache_bytes;
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
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
      std::fprintf(stderr, "model: %s read per token, kv cache %s (%s, %lld positions), threads %d\n",
                   format_bytes(static_cast<double>(stats.bytes_per_token)).c_str(),
                   format_bytes(static_cast<double>(stats.kv_cache_bytes)).c_str(), stats.kv_cache.c_str(),
                   static_cast<long long>(stats.context), stats.threads);
      std::fprintf(stderr, "%s", stats.streaming_report.c_str());
    }
  });
}

}  // namespace tritter::cli
