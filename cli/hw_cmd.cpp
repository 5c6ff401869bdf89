// `tritter hw`: detect the hardware, check whether a model fits in a mode (with the breakdown, the headroom and
// what to change), list the profiles, and print the whole feasibility grid. The planning is plan/specs and
// plan/hardware; this file reads the desktop from the environment (cli/ only), parses and prints.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "core/memory.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/packed_model.h"
#include "train/trainer.h"
#include "infer/kv_cache.h"
#include "infer/streaming_engine.h"
#include "model/tensor_table.h"
#include "plan/hardware.h"
#include "plan/specs.h"

namespace tritter::cli {

namespace {

using json = nlohmann::json;

std::string in_gib(double g) { return fmt("%.2f GiB", g); }
// A plan figure given in GiB: MiB below 1 GiB so that small models do not read as 0.00.
std::string mem(double g) { return std::fabs(g) < 1.0 ? fmt("%.2f MiB", g * 1024) : in_gib(g); }

// The desktop the original would detect on this machine: Wayland, X11 or headless (Linux).
std::string local_desktop() {
  if (const char* w = std::getenv("WAYLAND_DISPLAY"); w && *w) return "wayland";
  if (const char* d = std::getenv("DISPLAY"); d && *d) return "x11";
  return "headless";
}

HardwareProfile local_cpu_profile(const Context& ctx, bool measure) {
  const SystemMemory mem = system_memory();
  const double bw = measure ? measure_memory_bandwidth_gbs(ctx.threads) : 0.0;
  return cpu_profile(ctx.cpu, mem.total_bytes, mem.available_bytes, bw);
}

// --profile NAME, or the detected GPU, or this machine's CPU.
HardwareProfile resolve_profile(const std::string& name, const Context& ctx, std::string* how) {
  if (name == "cpu") {
    *how = "this machine's CPU and RAM";
    return local_cpu_profile(ctx, true);
  }
  if (!name.empty()) {
    *how = "--profile " + name;
    return find_gpu_profile(name);
  }
  const Detection d = detect_gpus();
  if (!d.gpus.empty()) {
    *how = "detected by nvidia-smi";
    return profile_for_gpu(d.gpus[0]);
  }
  *how = d.note + "; planning for this machine's CPU and RAM";
  return local_cpu_profile(ctx, true);
}

struct CheckOpts {
  std::string size, profile, mode, kv = "f16", desktop, head = "f32";
  int64_t context = 0, rank = 16, batch = 1, stream_group = 0;
  double budget = -1;
  bool no_recompute = false, json = false, head_i8 = false;
  int ranks = 1, zero = 1;  // train: data-parallel ranks (per-rank plan) and ZeRO-1
};

// --head, or --head-i8 (its older spelling); both at once only when they agree.
HeadFormat head_format_of(const CheckOpts& o) {
  const HeadFormat h = head_format_from_name(o.head);
  if (o.head_i8 && h != HeadFormat::F32 && h != HeadFormat::I8) {
    throw_error("hw check: --head-i8 and --head ", o.head, " ask for two heads; give one");
  }
  return o.head_i8 ? HeadFormat::I8 : h;
}

json check_json(const FitCheck& r) {
  json items = json::array();
  for (const auto& i : r.items) items.push_back({{"name", i.name}, {"bytes", i.bytes}, {"formula", i.note}});
  json sugg = json::array();
  for (const auto& s : r.suggestions) sugg.push_back({{"change", s.change}, {"total_gib", s.total_gib}, {"fits", s.fits}});
  return {{"mode", plan_mode_name(r.mode)},  {"context", r.options.context}, {"items", items},
          {"total_gib", r.total_gib},        {"budget_gib", r.budget_gib},   {"headroom_gib", r.headroom_gib},
          {"fits", r.fits},                  {"suggestions", sugg}};
}

// Decoding reads every resident weight and the whole KV cache once per token: bandwidth / those bytes bounds
// tokens/s (the embedding is one row per token and is left out).
double decode_ceiling_tokens_per_s(const FitCheck& r, const TritterConfig& c, double bandwidth_gbs) {
  int64_t bytes = -4 * c.vocab_size * c.hidden_size;  // the embedding: one row per token
  for (const auto& i : r.items) {
    if (i.name.rfind("engine", 0) != 0) bytes += i.bytes;
  }
  return bandwidth_gbs * 1e9 / static_cast<double>(std::max<int64_t>(bytes, 1));
}

void print_check(const FitCheck& r, const TritterConfig& c, double bandwidth_gbs) {
  const char* what = r.mode == PlanMode::Infer ? "inference" : (r.mode == PlanMode::Qlora ? "QLoRA fine-tuning" : "full QAT training");
  std::printf("\n%s, %s %lld: %s — needs %s of %s, headroom %s\n", what,
              r.mode == PlanMode::Infer ? "context" : "sequence", (long long)r.options.context,
              r.fits ? "FITS" : "DOES NOT FIT", mem(r.total_gib).c_str(), in_gib(r.budget_gib).c_str(),
              mem(r.headroom_gib).c_str());
  for (const auto& i : r.items) std::printf("  %-62s %12s\n", i.name.c_str(), mem((double)i.bytes / kGiB).c_str());
  if (r.mode == PlanMode::Infer && r.fits && r.options.stream_group == 0 && bandwidth_gbs > 0) {
    std::printf("  decoding at a full context reads the layers, the head and the cache once per token: at most "
                "%.1f tokens/s\n  at %.0f GB/s (a memory-bound ceiling)\n",
                decode_ceiling_tokens_per_s(r, c, bandwidth_gbs), bandwidth_gbs);
  }
  if (r.fits) return;
  if (r.suggestions.empty()) {
    std::printf("  nothing tried fits: it needs more memory (another device or several)\n");
    return;
  }
  std::printf("  to make it fit:\n");
  for (const auto& s : r.suggestions) {
    std::printf("    %s %s → %s\n", s.fits ? "-" : "x", s.change.c_str(),
                (mem(s.total_gib) + (s.fits ? "" : ", still too large")).c_str());
  }
}

// The plan `tritter generate --memory-budget` follows (infer/streaming_engine.h): layers and the head stream through
// the buffers, the embedding is read a row per token; only the cache, activations and the buffers are resident.
void print_streaming_plan(const TritterConfig& c, const PlanOptions& o, double budget_gib, int64_t group) {
  EngineOptions e;
  e.context = o.context;
  e.max_batch = o.prefill_chunk;
  e.kv_dtype = o.kv;
  e = resolve_engine_options(c, e);
  const StreamingPlan p = plan_streaming(c, o.head, e,
                                         static_cast<int64_t>(budget_gib * kGiB), static_cast<int>(group), true);
  std::printf("\nlayer streaming (generate --memory-budget %s): ", in_gib(budget_gib).c_str());
  if (!p.fits) {
    std::printf("does not fit: %s\n", p.problem.c_str());
    return;
  }
  std::printf("groups of %d layers (%d groups), head in %lld chunks, 2 buffers of %s;\n  KV cache %s + engine %s + "
              "resident %s + buffers %s = %s of %s\n", p.layer_group_size, p.groups, (long long)p.head_chunks,
              mem((double)p.slot_bytes / kGiB).c_str(), mem((double)p.kv_cache / kGiB).c_str(),
              mem((double)p.engine_buffers / kGiB).c_str(), mem((double)p.resident / kGiB).c_str(),
              mem(2.0 * p.slot_bytes / kGiB).c_str(), mem((double)p.total() / kGiB).c_str(), in_gib(budget_gib).c_str());
}

void run_check(const CheckOpts& o, const Context& ctx) {
  const TritterConfig config = preset_config(o.size);
  std::vector<PlanMode> modes;
  if (o.mode.empty()) modes = {PlanMode::Infer, PlanMode::Qlora, PlanMode::Train};
  else modes = {plan_mode_from_name(o.mode)};
  if (o.rank <= 0) throw_error("hw check: --rank ", o.rank, " must be positive");
  if (o.batch <= 0) throw_error("hw check: --batch ", o.batch, " must be positive");
  // The stated maxima the commands themselves enforce: beyond them the plan's byte counts overflow (printed
  // negative) and describe nothing a run could do.
  if (o.rank > kMaxLoraRank) throw_error("hw check: --rank: found ", o.rank, ", expected 1 .. ", kMaxLoraRank);
  if (o.batch > train::kMaxBatch) throw_error("hw check: --batch: found ", o.batch, ", expected 1 .. ", train::kMaxBatch);
  if (o.context > kMaxPositions) throw_error("hw check: --context: found ", o.context, ", expected 1 .. ", kMaxPositions);
  if (!(o.budget < 1e9)) throw_error("hw check: --budget: found ", o.budget, " GiB, expected less than 1e9");
  if (o.stream_group < 0) throw_error("hw check: --stream-group ", o.stream_group, " must be >= 0");
  const KvDtype kv = kv_dtype_from_name(kv_cache_name(o.kv));
  std::string how;
  const HardwareProfile profile = resolve_profile(o.profile, ctx, &how);
  // Tritter's kernels run on the CPU today: a GPU profile sizes a plan for hardware the engine does not use yet.
  const char* gpu_plan = "a plan: Tritter runs on the CPU today; a GPU profile sizes what a GPU backend would need";
  const OsReservation os = os_reservation(o.desktop.empty() ? local_desktop() : o.desktop);
  const double budget = o.budget >= 0 ? o.budget : safe_budget_gib(profile, os);
  std::vector<FitCheck> results;
  for (PlanMode m : modes) {
    PlanOptions p;
    p.mode = m;
    const int64_t fallback = m == PlanMode::Infer ? 32768 : 2048;  // capped by the model's context
    p.context = o.context > 0 ? o.context : std::min(fallback, config.max_position_embeddings);
    p.batch = o.batch;
    p.kv = kv;
    p.lora_rank = o.rank;
    p.recompute = !o.no_recompute;
    p.stream_group = o.stream_group;
    p.head = head_format_of(o);
    p.threads = profile.is_cpu ? ctx.threads : 1;  // attention scratch: one slice per CPU worker
    if (m == PlanMode::Train) {
      p.ranks = o.ranks;
      p.zero1 = o.zero == 1;
    }
    results.push_back(check_fit(config, p, budget, profile.layer_group_size));
  }
  if (o.json) {
    json j = {{"model", o.size}, {"profile", profile.key}, {"profile_name", profile.name}, {"profile_source", how},
              {"memory_gib", profile.memory_gib}, {"desktop", os.desktop}, {"os_reserved_gib", os.gib},
              {"budget_gib", budget}, {"budget_rule", o.budget >= 0 ? "--budget" : "safe budget"},
              {"runs_here", profile.is_cpu}};
    if (!profile.is_cpu) j["note"] = gpu_plan;
    for (const auto& r : results) j["checks"].push_back(check_json(r));
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("Checking %s (%s params) on %s\nprofile: %s (%s)\n", o.size.c_str(),
              (parameter_count(config) >= 1'000'000'000 ? fmt("%.2f B", (double)parameter_count(config) / 1e9)
                                                          : fmt("%.2f M", (double)parameter_count(config) / 1e6)).c_str(), profile.name.c_str(), profile.key.c_str(),
              how.c_str());
  if (!profile.is_cpu) std::printf("note: %s\n", gpu_plan);
  if (o.budget >= 0) {
    std::printf("budget %s (--budget)\n", in_gib(budget).c_str());
  } else {
    std::printf("budget %s: (%s memory − %s %s desktop%s) × 0.9 − 1.0, at most the profile's %s\n", in_gib(budget).c_str(),
                in_gib(profile.memory_gib).c_str(), in_gib(os.gib).c_str(), os.desktop.c_str(),
                profile.is_cpu ? "" : " − 0.30 GiB CUDA runtime", in_gib(profile.default_budget_gib).c_str());
  }
  for (const auto& r : results) print_check(r, config, profile.bandwidth_gbs);
  for (const auto& r : results) {
    if (r.mode == PlanMode::Infer && (!r.fits || o.stream_group > 0)) {
      print_streaming_plan(config, r.options, budget, o.stream_group);
    }
  }
}

void run_detect(bool as_json, const Context& ctx) {
  const Detection d = detect_gpus();
  const SystemMemory mem = system_memory();
  const double bw = measure_memory_bandwidth_gbs(ctx.threads);
  const HardwareProfile cpu = cpu_profile(ctx.cpu, mem.total_bytes, mem.available_bytes, bw);
  const OsReservation os = os_reservation(local_desktop());
  if (as_json) {
    json gpus = json::array();
    for (const auto& g : d.gpus) {
      const HardwareProfile p = profile_for_gpu(g);
      gpus.push_back({{"name", g.name}, {"memory_total_mib", g.memory_total_mib}, {"memory_used_mib", g.memory_used_mib},
                      {"driver", g.driver}, {"profile", p.key}, {"safe_budget_gib", safe_budget_gib(p, os)}});
    }
    json j = {{"gpu_note", d.note}, {"gpus", gpus}, {"desktop", os.desktop},
              {"cpu", {{"model", ctx.cpu.model_name}, {"logical_cores", ctx.cpu.logical_cores},
                       {"simd", best_simd_level(ctx.cpu)}, {"ram_total_bytes", mem.total_bytes},
                       {"ram_available_bytes", mem.available_bytes}, {"triad_bandwidth_gbs", bw},
                       {"safe_budget_gib", safe_budget_gib(cpu, os)}}}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("GPU: %s\n", d.note.c_str());
  for (const auto& g : d.gpus) {
    const HardwareProfile p = profile_for_gpu(g);
    std::printf("  %s, %s total, %s used, driver %s → profile %s, safe budget %s (%s)\n", g.name.c_str(),
                in_gib((double)g.memory_total_mib / 1024).c_str(), in_gib((double)g.memory_used_mib / 1024).c_str(),
                g.driver.c_str(), p.key.c_str(), in_gib(safe_budget_gib(p, os)).c_str(), os.desktop.c_str());
  }
  std::printf("CPU: %s\n", ctx.cpu.model_name.empty() ? "unknown model" : ctx.cpu.model_name.c_str());
  std::printf("  %d logical cores, SIMD path %s, %d threads\n", ctx.cpu.logical_cores, best_simd_level(ctx.cpu).c_str(),
              ctx.threads);
  std::printf("  RAM %s total, %s available; triad bandwidth %.1f GB/s (3 × 64 MiB, best of 3)\n",
              in_gib((double)mem.total_bytes / kGiB).c_str(), in_gib((double)mem.available_bytes / kGiB).c_str(), bw);
  std::printf("  safe budget for `hw check --profile cpu`: %s (%s desktop)\n", in_gib(safe_budget_gib(cpu, os)).c_str(),
              os.desktop.c_str());
}

void run_profiles(bool as_json, const std::string& desktop, const Context& ctx) {
  const OsReservation os = os_reservation(desktop.empty() ? local_desktop() : desktop);
  json j = json::array();
  if (!as_json) {
    std::printf("%-10s %-20s %8s %10s %9s %9s %5s %8s  %s\n", "profile", "name", "memory", "bandwidth", "default",
                "safe", "group", "prefetch", "stated largest: infer / QLoRA / train");
    std::printf("%-10s %-20s %8s %10s %9s %9s %5s %8s\n", "", "", "GiB", "GB/s", "GiB", "GiB", "", "MiB");
  }
  for (const auto& p : gpu_profiles()) {
    const double safe = safe_budget_gib(p, os);
    if (as_json) {
      j.push_back({{"key", p.key}, {"name", p.name}, {"memory_gib", p.memory_gib}, {"bandwidth_gbs", p.bandwidth_gbs},
                   {"default_budget_gib", p.default_budget_gib}, {"safe_budget_gib", safe},
                   {"layer_group_size", p.layer_group_size}, {"prefetch_mb", p.prefetch_mb}, {"verified", p.verified},
                   {"claimed_infer", p.claimed_infer}, {"claimed_qlora", p.claimed_qlora}, {"claimed_train", p.claimed_train}});
      continue;
    }
    const std::string claims = p.claimed_infer.empty() ? "-" : p.claimed_infer + " / " + p.claimed_qlora + " / " + p.claimed_train;
    std::printf("%-10s %-20s %8.1f %10.0f %9.1f %9.2f %5lld %8lld  %s%s\n", p.key.c_str(), p.name.c_str(), p.memory_gib,
                p.bandwidth_gbs, p.default_budget_gib, safe, (long long)p.layer_group_size, (long long)p.prefetch_mb,
                claims.c_str(), p.verified ? " (verified)" : "");
  }
  const HardwareProfile cpu = local_cpu_profile(ctx, true);
  const double cpu_safe = safe_budget_gib(cpu, os);
  if (as_json) {
    j.push_back({{"key", cpu.key}, {"name", cpu.name}, {"memory_gib", cpu.memory_gib},
                 {"bandwidth_gbs", cpu.bandwidth_gbs}, {"default_budget_gib", cpu.default_budget_gib},
                 {"safe_budget_gib", cpu_safe}, {"layer_group_size", cpu.layer_group_size}});
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%-10s %-20s %8.1f %10.1f %9.1f %9.2f %5lld %8s  %s\n", cpu.key.c_str(), "this machine", cpu.memory_gib,
              cpu.bandwidth_gbs, cpu.default_budget_gib, cpu_safe, (long long)cpu.layer_group_size, "-",
              "RAM; measured triad; budget = available RAM");
  std::printf("safe = min(default, (memory − %.1f GiB %s − 0.3 GiB CUDA) × 0.9 − 1.0); `--profile cpu` plans for this "
              "machine's RAM\n(no CUDA runtime term for the CPU).\n", os.gib, os.desktop.c_str());
}

// One cell per (size, profile): three marks for infer / QLoRA / train. ✓ fits, ~ fits with layer streaming, ✗ not.
void run_feasibility(const CheckOpts& o, const Context& ctx) {
  std::vector<HardwareProfile> profiles;
  if (o.profile.empty()) profiles = gpu_profiles();
  else if (o.profile == "cpu") profiles = {local_cpu_profile(ctx, false)};
  else profiles = {find_gpu_profile(o.profile)};
  const OsReservation os = os_reservation(o.desktop.empty() ? local_desktop() : o.desktop);
  const KvDtype kv = kv_dtype_from_name(kv_cache_name(o.kv));
  const int64_t infer_ctx = o.context > 0 ? o.context : 32768;
  const int64_t train_seq = 2048;
  json j;
  if (!o.json) {
    std::printf("Feasibility: each cell is inference / QLoRA r=%lld / full training — ✓ fits, ~ fits only with layer "
                "streaming, ✗ does not fit\n(inference: %lld-token context, %s KV cache; training: T=%lld, B=1, "
                "recompute; safe budgets, %s desktop)\n\n",
                (long long)o.rank, (long long)infer_ctx, kv_dtype_name(kv), (long long)train_seq, os.desktop.c_str());
    std::printf("%-5s %9s %9s %9s ", "size", "infer", "qlora", "train");
    for (const auto& p : profiles) std::printf(" %-9s", p.key.substr(0, 9).c_str());
    std::printf("\n%-5s %9s %9s %9s ", "", "GiB", "GiB", "GiB");
    for (const auto& p : profiles) std::printf(" %-9s", fmt("%.1f", safe_budget_gib(p, os)).c_str());
    std::printf("\n");
  }
  for (const auto& size : spec_size_names()) {
    const TritterConfig c = preset_config(size);
    PlanOptions inf, q, t;
    inf.context = infer_ctx;
    inf.kv = kv;
    q.mode = PlanMode::Qlora;
    q.context = train_seq;
    q.lora_rank = o.rank;
    t.mode = PlanMode::Train;
    t.context = train_seq;
    PlanOptions streamed = inf;
    streamed.stream_group = 1;
    const double need[] = {total_bytes(plan_memory(c, inf)) / kGiB, total_bytes(plan_memory(c, q)) / kGiB,
                           total_bytes(plan_memory(c, t)) / kGiB};
    const double need_streamed = total_bytes(plan_memory(c, streamed)) / kGiB;
    json row = {{"size", size}, {"infer_gib", need[0]}, {"infer_streamed_g1_gib", need_streamed},
                {"qlora_gib", need[1]}, {"train_gib", need[2]}};
    if (!o.json) std::printf("%-5s %9.2f %9.2f %9.2f ", size.c_str(), need[0], need[1], need[2]);
    for (const auto& p : profiles) {
      const double b = safe_budget_gib(p, os);
      const char* infer = need[0] <= b ? "✓" : (need_streamed <= b ? "~" : "✗");
      const std::string cell = std::string(infer) + (need[1] <= b ? "✓" : "✗") + (need[2] <= b ? "✓" : "✗");
      row["profiles"][p.key] = {{"infer", need[0] <= b ? "fits" : (need_streamed <= b ? "streaming" : "no")},
                                {"qlora", need[1] <= b}, {"train", need[2] <= b}};
      if (!o.json) std::printf(" %s      ", cell.c_str());
    }
    if (!o.json) std::printf("\n");
    j["grid"].push_back(row);
  }
  // The original's rtx5080_feasibility arithmetic, reproduced, beside the corrected LoRA counts.
  if (!o.json) {
    std::printf("\nQuick estimate for an RTX 5080 (15.5 GiB usable; docs/specs.md) — and where it is off:\n");
    std::printf("%-5s %14s %8s %8s %8s %8s  %-5s %15s %15s\n", "size", "full GiB (T)", "r=8", "r=16", "r=32", "r=64",
                "fits", "LoRA r=16", "LoRA r=16");
    std::printf("%-5s %14s %8s %8s %8s %8s  %-5s %15s %15s\n", "", "", "GiB", "GiB", "GiB", "GiB", "r=16",
                "(quick)", "(GQA-correct)");
  }
  for (const auto& size : spec_size_names()) {
    const TritterConfig c = preset_config(size);
    const OriginalFeasibility full = original_full_training(c);
    json orow = {{"size", size}, {"full_gib", full.gib}, {"full_context", full.context}};
    std::string ranks;
    for (int64_t r : {8, 16, 32, 64}) {
      const OriginalFeasibility ql = original_qlora(c, r);
      orow["qlora"].push_back({{"rank", r}, {"gib", ql.gib}, {"context", ql.context}, {"fits", ql.fits}});
      ranks += fmt(" %8.2f", ql.gib);
    }
    orow["lora_params_r16_quick"] = original_lora_params(c, 16);
    orow["lora_params_r16_tritter"] = lora_param_count(c, 16, default_lora_targets());
    j["quick_rtx5080"].push_back(orow);
    if (!o.json) {
      std::printf("%-5s %14s%s  %-5s %15s %15s\n", size.c_str(),
                  (fmt("%.2f", full.gib) + " (" + std::to_string(full.context) + ")").c_str(), ranks.c_str(),
                  original_qlora(c, 16).fits ? "yes" : "no", grouped(original_lora_params(c, 16)).c_str(),
                  grouped(lora_param_count(c, 16, default_lora_targets())).c_str());
    }
  }
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("The estimate counts K/V adapters as D wide, puts a KV cache into training, fixes activations at 1–4 "
              "GiB and\nits training at 12·P (bf16 + fp32 Adam); Tritter trains in fp32 (16·P) with activations from "
              "docs/memory.md.\n30B is Tritter's valid shape (4 kv heads, FFN 18176); 52 heads over 8 kv heads would "
              "not be a whole GQA group.\n");
}

}  // namespace

void add_hw_command(CLI::App& app, GlobalOptions& global) {
  auto* hw = app.add_subcommand("hw", "Hardware: detect, check whether a model fits, profiles, feasibility grid");
  hw->require_subcommand(1);
  auto opts = std::make_shared<CheckOpts>();

  auto* detect = hw->add_subcommand("detect", "Find the GPU (nvidia-smi) or describe the CPU: cores, SIMD, RAM, bandwidth");
  detect->add_flag("--json", opts->json, "Machine-readable output");
  detect->callback([opts, &global] { run_detect(opts->json, *make_context(global)); });

  auto* check = hw->add_subcommand("check", "Does a model fit? Breakdown, headroom and what to change");
  check->add_option("size,--size", opts->size, "Model size: 1B ... 70B (or test, tiny, small, ...)")->required();
  check->add_option("-p,--profile", opts->profile, "A profile (rtx5080, ..., h100, h200, cpu); default: detected");
  check->add_option("--mode", opts->mode, "infer, qlora or train (default: all three)");
  auto* check_ctx = check->add_option("-c,--context", opts->context,
                    "Inference: cached positions (default 32768); training: sequence length (default 2048)");
  check->add_option("--kv-cache,--kv", opts->kv, "KV-cache dtype: f32, f16, int8, int4 (or q8_0, q4_0)")
      ->capture_default_str();
  check->add_option("--rank", opts->rank, "LoRA rank for qlora")->capture_default_str();
  check->add_option("--batch", opts->batch, "Sequences per step / batch")->capture_default_str();
  check->add_option("--stream-group", opts->stream_group, "Layer streaming with groups of N layers (0 = off)");
  check->add_flag("--no-recompute", opts->no_recompute, "Training without activation recomputation");
  check->add_option("--ranks", opts->ranks, "train: data-parallel ranks (mpirun -np N); plans one rank, --batch global")
      ->capture_default_str();
  check->add_option("--zero", opts->zero, "train with --ranks > 1: 1 = ZeRO-1 sharded AdamW state, 0 = replicated")
      ->capture_default_str();
  check->add_option("--head", opts->head, "Inference with this LM head: f32, i8 (V·D bytes + V fp32 row scales) or "
                    "i4 (4-bit groups of 32: about half of i8)")
      ->check(CLI::IsMember({"f32", "i8", "i4"}))
      ->capture_default_str();
  check->add_flag("--head-i8", opts->head_i8, "The same as --head i8");
  check->add_option("--desktop", opts->desktop, "headless, x11, wayland, macos, windows[:monitors]; default: this one");
  check->add_option("--budget", opts->budget, "Use this budget in GiB instead of the profile's safe budget");
  check->add_flag("--json", opts->json, "Machine-readable output");
  check->callback([opts, &global, check_ctx] {
    if (check_ctx->count() > 0 && opts->context <= 0) throw_error("hw check: --context ", opts->context, " must be positive");
    run_check(*opts, *make_context(global));
  });

  auto* profiles = hw->add_subcommand("profiles", "The built-in hardware profiles and their safe budgets (GPU ones are "
                                      "plans: the engine runs on the CPU today)");
  profiles->add_option("--desktop", opts->desktop, "headless, x11, wayland, macos, windows[:monitors]");
  profiles->add_flag("--json", opts->json, "Machine-readable output");
  profiles->callback([opts, &global] { run_profiles(opts->json, opts->desktop, *make_context(global)); });

  auto* feas = hw->add_subcommand("feasibility", "The grid sizes × profiles × modes, and the RTX 5080 estimate");
  feas->add_option("-p,--profile", opts->profile, "Only this profile (or cpu)");
  auto* feas_ctx = feas->add_option("-c,--context", opts->context, "Inference context (default 32768)");
  feas->add_option("--kv-cache,--kv", opts->kv, "KV-cache dtype for inference (f32, f16, int8, int4, q8_0, q4_0)")
      ->capture_default_str();
  feas->add_option("--rank", opts->rank, "LoRA rank for qlora")->capture_default_str();
  feas->add_option("--desktop", opts->desktop, "headless, x11, wayland, macos, windows[:monitors]");
  feas->add_flag("--json", opts->json, "Machine-readable output");
  feas->callback([opts, &global, feas_ctx] {
    if (feas_ctx->count() > 0 && opts->context <= 0) throw_error("hw feasibility: --context ", opts->context, " must be positive");
    if (opts->rank <= 0) throw_error("hw feasibility: --rank ", opts->rank, " must be positive");
    if (opts->rank > kMaxLoraRank) throw_error("hw feasibility: --rank: found ", opts->rank, ", expected 1 .. ", kMaxLoraRank);
    if (opts->context > kMaxPositions) {
      throw_error("hw feasibility: --context: found ", opts->context, ", expected 1 .. ", kMaxPositions);
    }
    run_feasibility(*opts, *make_context(global));
  });
}

}  // namespace tritter::cli
