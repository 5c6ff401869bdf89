// `tritter bench batch -m MODEL [--rows 1,2,4,8,16] [--reps 5] [--rounds 2] [--positions 32] [--kv-cache f32]`:
// the batched engine's decode step (the step `tritter serve` runs each iteration) at B rows, one token of each of
// B slots whose caches hold --positions tokens, with the step's time split per op family. Each round runs every
// B once, --reps steps each (the slots are cut back to --positions after every step, so each step sees the same
// context); a B's figures are its fastest step and that step's own split ("other": the rest of that step — norms
// and activation quantization, RoPE, KV writes, residual adds, the embedding). Rounds interleave
// the row counts so that a shared machine's load falls on all of them alike; the ratios in a row of the table are
// from that one run. GMAC/s: the ternary projections' and the head's multiply-adds per second of their own time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "api/model_source.h"
#include "commands.h"
#include "core/error.h"
#include "infer/batch_engine.h"
#include "model/model_files.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {

struct BenchBatchOptions {
  std::string head = "auto";  // --head: the LM head of a converted model
  std::string model, rows = "1,2,4,8,16", kv = "f32";
  int reps = 5, rounds = 2;
  int64_t positions = 32;
};

using Clock = std::chrono::steady_clock;

// Multiply-adds of one row through the ternary projections of every layer.
double layer_macs_per_row(const TritterConfig& c) {
  const double D = static_cast<double>(c.hidden_size), F = static_cast<double>(c.intermediate_size);
  const double q = static_cast<double>(c.q_dim()), kv = static_cast<double>(c.kv_dim());
  const double per_layer = D * q + 2 * D * kv + q * D + (c.gated_mlp() ? 2 : 1) * D * F + F * D;
  return per_layer * static_cast<double>(c.num_hidden_layers);
}

struct Best {
  double step = 1e30;
  double op[static_cast<int>(Op::Count)] = {};
};

void run_bench_batch(const BenchBatchOptions& o, const GlobalOptions& global) {
  const std::vector<int> rows = parse_count_list(o.rows, "--rows", "row counts", 1024);
  if (o.reps < 1) throw_error("--reps: found ", o.reps, ", expected at least 1");
  if (o.rounds < 1) throw_error("--rounds: found ", o.rounds, ", expected at least 1");
  if (o.positions < 1) throw_error("--positions: found ", o.positions, ", expected at least 1");
  const auto ctx = make_context(global);
  LoadedModel loaded = load_any_model(resolve_model_source(o.model).file, &ctx->memory,
                                      LoadOptions{head_choice_from_name(o.head)});
  const PackedModel model = std::move(loaded.model);
  const TritterConfig& c = model.config();
  const int slots = *std::max_element(rows.begin(), rows.end());
  ctx->log_level = std::max(ctx->log_level, LogLevel::Verbose);  // the engine times its ops at Verbose
  BatchEngineOptions eo{.slots = slots, .context = std::min<int64_t>(c.max_position_embeddings, o.positions + 2),
                        .kv_dtype = kv_dtype_from_name(kv_cache_name(o.kv)), .max_batch = std::min<int64_t>(64, o.positions)};
  BatchEngine engine(*ctx, model.weights(), eo);
  if (o.positions + 1 > engine.context()) {
    throw_error("--positions ", o.positions, ": the model holds ", c.max_position_embeddings, " positions");
  }
  std::vector<int32_t> prompt(static_cast<size_t>(o.positions));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7 + 3) % c.vocab_size);
  for (int s = 0; s < slots; ++s) engine.prefill(s, prompt, nullptr);
  std::vector<float> logits(static_cast<size_t>(slots) * static_cast<size_t>(c.vocab_size));
  std::vector<Best> best(rows.size());
  for (int round = 0; round < o.rounds; ++round) {
    for (size_t r = 0; r < rows.size(); ++r) {
      const int B = rows[r];
      std::vector<int> step_slots(static_cast<size_t>(B));
      std::vector<int32_t> tokens(static_cast<size_t>(B));
      for (int b = 0; b < B; ++b) {
        step_slots[static_cast<size_t>(b)] = b;
        tokens[static_cast<size_t>(b)] = static_cast<int32_t>((b * 31 + 5) % c.vocab_size);
      }
      for (int rep = 0; rep <= o.reps; ++rep) {  // rep 0 warms up (caches, page faults), untimed
        const OpTimes before = engine.op_times();
        const auto t0 = Clock::now();
        engine.decode(step_slots, tokens, logits.data());
        const double t = std::chrono::duration<double>(Clock::now() - t0).count();
        for (int b = 0; b < B; ++b) engine.truncate(b, o.positions);
        if (rep == 0) continue;
        Best& k = best[r];
        if (t >= k.step) continue;
        k.step = t;  // the fastest step and its own split (so "other" is what that step did outside the timed ops)
        for (int op = 0; op < static_cast<int>(Op::Count); ++op) {
          k.op[op] = engine.op_times().seconds[op] - before.seconds[op];
        }
      }
    }
  }
  const size_t base = static_cast<size_t>(std::find(rows.begin(), rows.end(), 1) - rows.begin());
  const size_t ref = base < rows.size() ? base : 0;
  const double ref_rate = rows[ref] / best[ref].step;
  const double lmacs = layer_macs_per_row(c), hmacs = static_cast<double>(c.vocab_size) * c.hidden_size;
  std::printf("batched decode step: %lld layers, D %lld, vocab %lld, %s head, %lld positions per slot, KV %s, "
              "%d thread(s), fastest of %d x %d steps\n",
              static_cast<long long>(c.num_hidden_layers), static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.vocab_size), head_format_name(model.weights().head.format),
              static_cast<long long>(o.positions), o.kv.c_str(), ctx->threads, o.rounds, o.reps);
  std::printf("| rows | step ms | ms/row | tok/s x %d row%s | ternary ms | ternary GMAC/s | attention ms | head ms | "
              "head GMAC/s | other ms |\n",
              rows[ref], rows[ref] == 1 ? "" : "s");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t r = 0; r < rows.size(); ++r) {
    const Best& k = best[r];
    const int B = rows[r];
    const double tern = k.op[static_cast<int>(Op::BitFwd)], attn = k.op[static_cast<int>(Op::AttnFwd)];
    const double head = k.op[static_cast<int>(Op::Head)];
    std::printf("| %d | %.1f | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", B, 1e3 * k.step,
                1e3 * k.step / B, (B / k.step) / ref_rate, 1e3 * tern, B * lmacs / tern / 1e9, 1e3 * attn,
                1e3 * head, B * hmacs / head / 1e9, 1e3 * std::max(0.0, k.step - tern - attn - head));
  }
}

}  // namespace

void add_bench_batch_command(CLI::App& bench, GlobalOptions& global) {
  auto o = std::make_shared<BenchBatchOptions>();
  CLI::App* cmd = bench.add_subcommand("batch", "The batched decode step (serve's) at B rows, split per op");
  cmd->add_option("-m,--model", o->model, "Model file (a packed file, GGUF, checkpoint, HF folder)")->required();
  cmd->add_option("--rows", o->rows, "Rows per step (slots decoding at once), comma-separated")->capture_default_str();
  cmd->add_option("--reps", o->reps, "Timed steps per row count and round")->capture_default_str();
  cmd->add_option("--rounds", o->rounds, "Rounds over all row counts (interleaved)")->capture_default_str();
  cmd->add_option("--positions", o->positions, "Tokens in each slot's cache before the step")->capture_default_str();
  add_head_option(cmd, &o->head);
  cmd->add_option("--kv-cache", o->kv, "KV cache dtype: f32, f16, int8 (q8_0), int4 (q4_0)")->capture_default_str();
  cmd->callback([o, &global] { run_bench_batch(*o, global); });
}

}  // namespace tritter::cli
