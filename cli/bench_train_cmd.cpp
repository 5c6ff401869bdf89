// `tritter bench train`: training throughput on the benchmark configuration (D=256, L=4, H=K=4, F=1024,
// T=256, B=8, V=264, sub_norm, qk_norm, post_norm=ffn; fwd + CE + bwd + clip + AdamW), the per-op time split,
// and memory with and without --recompute; quant=false for the FP baseline, measured in the same run. No figure
// from another machine or program is printed: a ratio means both sides ran here, now.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "core/memory.h"
#include "core/rng.h"
#include "model/config.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/parallel.h"

namespace tritter::cli {

namespace {

struct BenchTrainArgs {
  int64_t steps = 6, warmup = 2, batch = 8, seq = 256;
  bool skip_recompute = false, skip_fp = false, dx_kernel = false, per_op = false;
};

TritterConfig spec11_config(bool quant, int64_t seq) {
  TritterConfig c = preset_config("test");
  c.hidden_size = 256;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.head_dim = 64;
  c.intermediate_size = 1024;
  c.vocab_size = 264;
  c.max_position_embeddings = std::max<int64_t>(seq, 256);
  c.sub_norm = true;
  c.qk_norm = true;
  c.post_norm = PostNorm::Ffn;
  c.mlp_act = MlpAct::Relu2;
  c.quant = quant;
  c.model_size = "bench-train";
  c.validate();
  return c;
}

struct BenchResult {
  double tokens_per_s = 0, step_ms = 0, opt_s = 0, total_s = 0, best_s = 1e30;
  OpTimes times;
  int64_t arena = 0, accounted_peak = 0, params = 0;
  int workers = 1;
};

BenchResult bench_once(const GlobalOptions& global, const BenchTrainArgs& a, bool quant, bool recompute) {
  auto ctx = make_context(global);
  const TritterConfig c = spec11_config(quant, a.seq);
  train::ParallelTrainModel pm(c, *ctx, a.per_op ? 1 : 0);
  train::TrainModel& model = pm.primary();
  model.set_dx_kernel(a.dx_kernel);
  model.init_weights(1);
  train::AdamW adam(model.num_params(), *ctx);
  const int64_t B = a.batch, T = a.seq;
  pm.reserve(B, T, recompute);
  Rng rng(5);
  std::vector<int32_t> in(static_cast<size_t>(B * T)), tg(in.size());
  for (auto& v : in) v = static_cast<int32_t>(8 + rng.next_below(256));
  for (size_t i = 0; i < in.size(); ++i) tg[i] = in[(i + 1) % in.size()];
  BenchResult r;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    if (s == a.warmup) model.op_times().clear();
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    pm.step(in.data(), tg.data(), B, T, 1.0f, true);
    const auto t1 = std::chrono::steady_clock::now();
    train::clip_grad_norm(model.grads(), 1.0);
    adam.step(model.params(), model.grads(), model.table(), 1e-3, 0.1);
    const auto t2 = std::chrono::steady_clock::now();
    if (s >= a.warmup) {
      r.total_s += std::chrono::duration<double>(t2 - t0).count();
      r.best_s = std::min(r.best_s, std::chrono::duration<double>(t2 - t0).count());
      r.opt_s += std::chrono::duration<double>(t2 - t1).count();
    }
  }
  r.tokens_per_s = static_cast<double>(a.steps * B * T) / r.total_s;
  r.step_ms = 1e3 * r.total_s / static_cast<double>(a.steps);
  r.times = model.op_times();
  r.arena = model.arena_bytes() * pm.workers();
  r.accounted_peak = pm.accounted_peak() + ctx->memory.total_peak();
  r.workers = pm.workers();
  r.params = model.num_params();
  return r;
}

void run_bench_train(const BenchTrainArgs& a, const GlobalOptions& global) {
  auto probe = make_context(global);
  const int threads = probe->threads;
  const TritterConfig c = spec11_config(true, a.seq);
  const double flops = 6.0 * static_cast<double>(a.batch * a.seq) *
                           (static_cast<double>(c.num_hidden_layers) *
                                (c.hidden_size * (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim +
                                 c.q_dim() * c.hidden_size + 2 * c.hidden_size * c.intermediate_size) +
                            static_cast<double>(c.vocab_size * c.hidden_size)) +
                       3.0 * c.num_hidden_layers * 4.0 * a.batch * c.num_attention_heads *
                           static_cast<double>(a.seq) * a.seq * c.head_dim / 2.0;  // masked blocks skipped
  std::printf("bench train: benchmark config D=256 L=4 H=K=4 d=64 F=1024 V=264, B=%lld T=%lld, threads %d, "
              "kernels %s, dx %s\nBLAS: %s\n",
              static_cast<long long>(a.batch), static_cast<long long>(a.seq), threads, global.kernels.c_str(),
              a.dx_kernel ? "ternary_matmul_t" : "sgemm with W~", openblas_get_config());
  const BenchResult q = bench_once(global, a, true, false);
  const double best_tps = static_cast<double>(a.batch * a.seq) / q.best_s;
  std::printf("QAT (quant=true): %.0f tokens/s (mean of %lld steps; best step %.0f), %.1f ms/step, %.1f GFLOP/s "
              "(%.1f GFLOP/step, attention halved)\n",
              q.tokens_per_s, static_cast<long long>(a.steps), best_tps, q.step_ms, flops / (q.step_ms * 1e6),
              flops / 1e9);
  std::printf("per-op time per step (ms, worker 0 of %d%s):\n", q.workers,
              q.workers > 1 ? ", data parallel over the batch" : "");
  double sum = 0;
  for (int i = 0; i < static_cast<int>(Op::Count); ++i) {
    const double ms = 1e3 * q.times.seconds[i] / static_cast<double>(a.steps);
    sum += ms;
    std::printf("  %-32s %8.2f  %5.1f %%\n", op_name(static_cast<Op>(i)), ms, 100.0 * ms / q.step_ms);
  }
  const double opt_ms = 1e3 * q.opt_s / static_cast<double>(a.steps);
  std::printf("  %-32s %8.2f  %5.1f %%\n", "clip + AdamW", opt_ms, 100.0 * opt_ms / q.step_ms);
  std::printf("  %-32s %8.2f  %5.1f %%\n", "other (untimed)", q.step_ms - sum - opt_ms,
              100.0 * (q.step_ms - sum - opt_ms) / q.step_ms);
  std::printf("memory: %lld params; activation arena %s; accounted peak (weights+grads+AdamW+arena+scratch) %s\n",
              static_cast<long long>(q.params), format_bytes(static_cast<double>(q.arena)).c_str(),
              format_bytes(static_cast<double>(q.accounted_peak)).c_str());
  if (!a.skip_recompute) {
    const BenchResult r = bench_once(global, a, true, true);
    std::printf("--recompute: %.0f tokens/s (%.0f %% of the time cost %+.0f %%); activation arena %s (saves %s); "
                "accounted peak %s\n",
                r.tokens_per_s, 100.0 * r.tokens_per_s / q.tokens_per_s, 100.0 * (r.step_ms / q.step_ms - 1.0),
                format_bytes(static_cast<double>(r.arena)).c_str(),
                format_bytes(static_cast<double>(q.arena - r.arena)).c_str(),
                format_bytes(static_cast<double>(r.accounted_peak)).c_str());
  }
  if (!a.skip_fp) {
    const BenchResult f = bench_once(global, a, false, false);
    std::printf("FP baseline (quant=false): %.0f tokens/s, %.1f ms/step; QAT runs at %.2fx of it (same run)\n",
                f.tokens_per_s, f.step_ms, q.tokens_per_s / f.tokens_per_s);
  }
  std::printf("process peak RSS %s\n", format_bytes(static_cast<double>(process_memory().peak_rss_bytes)).c_str());
}

}  // namespace

void add_bench_train_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<BenchTrainArgs>();
  CLI::App* c = bench_command(app).add_subcommand("train", "Training step throughput on the benchmark "
                                                           "config, per-op split, memory with/without recompute");
  c->add_option("--steps", a->steps, "Timed steps")->capture_default_str();
  c->add_option("--warmup", a->warmup, "Untimed steps first")->capture_default_str();
  c->add_option("--batch", a->batch, "B")->capture_default_str();
  c->add_option("--seq", a->seq, "T")->capture_default_str();
  c->add_flag("--no-recompute", a->skip_recompute, "Skip the --recompute run");
  c->add_flag("--no-fp", a->skip_fp, "Skip the quant=false run");
  c->add_flag("--per-op-threads", a->per_op, "One model, threads inside each op (default: data parallel over B)");
  c->add_flag("--dx-kernel", a->dx_kernel, "BitLinear dx through kernels' ternary_matmul_t instead of sgemm with W̃");
  c->callback([a, &global] { run_bench_train(*a, global); });
}

}  // namespace tritter::cli
