// The training loop and training checkpoints (see trainer.h).
#include "train/trainer.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/temp_dir.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/packed_model.h"
#include "text/hf_tokenizer.h"

namespace tritter::train {

namespace fs = std::filesystem;
using nlohmann::json;

json train_options_to_json(const TrainOptions& o) {
  json j{{"config", config_to_json(o.config, true)},
              {"data",
               {{"paths", o.data.paths}, {"extensions", o.data.extensions}, {"val_fraction", o.data.val_fraction}}},
              {"batch", o.batch}, {"seq", o.seq}, {"steps", o.steps}, {"accum", o.accum},
              {"schedule", {{"kind", o.schedule.kind}, {"warmup", o.schedule.warmup}, {"peak_lr", o.schedule.peak_lr},
                            {"wd", o.schedule.wd}, {"min_ratio", o.schedule.min_ratio},
                            {"stage1_frac", o.schedule.stage1_frac}, {"stage1_end_ratio", o.schedule.stage1_end_ratio},
                            {"stage2_ratio", o.schedule.stage2_ratio}, {"decay_frac", o.schedule.decay_frac}}},
              {"adam", {{"beta1", o.adam.beta1}, {"beta2", o.adam.beta2}, {"eps", o.adam.eps}}},
              {"clip", o.clip}, {"seed", o.seed}, {"eval_every", o.eval_every}, {"eval_windows", o.eval_windows},
              {"checkpoint_every", o.checkpoint_every}, {"keep", o.keep}, {"log_every", o.log_every},
              {"out_dir", o.out_dir}, {"recompute", o.recompute}, {"log_json", o.log_json},
              {"max_bad_steps", o.max_bad_steps}};
  if (o.attention != "causal") {  // written only when set: a causal run's state.json is what it was
    j["attention"] = o.attention;
    j["prefix_length"] = o.prefix_length;
  }
  return j;
}

namespace {
// state.json fields, each error naming the file, the key, what was found and what was expected.
const json& field(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw_error(where, ": key '", key, "' is missing");
  return j.at(key);
}
int64_t int_field(const json& j, const char* key, const std::string& where) {
  return json_to_int(field(j, key, where), where, key);
}
double num_field(const json& j, const char* key, const std::string& where) {
  return json_to_number(field(j, key, where), where, key);
}
std::string str_field(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_string()) throw_error(where, ": key '", key, "': found ", v.dump(), ", expected a string");
  return v.get<std::string>();
}
bool bool_field(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_boolean()) throw_error(where, ": key '", key, "': found ", v.dump(), ", expected true or false");
  return v.get<bool>();
}
std::vector<std::string> strings_field(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_string()) break;
      out.push_back(e.get<std::string>());
    }
  }
  if (!v.is_array() || out.size() != v.size()) {
    throw_error(where, ": key '", key, "': found ", v.dump(), ", expected a list of strings");
  }
  return out;
}
}  // namespace

TrainOptions train_options_from_json(const json& j) {
  const std::string w = "training checkpoint state.json options";
  TrainOptions o;
  o.config = config_from_json(field(j, "config", w), "state.json config");
  const json& d = field(j, "data", w);
  o.data.paths = strings_field(d, "paths", w + " data");
  o.data.extensions = strings_field(d, "extensions", w + " data");
  o.data.val_fraction = num_field(d, "val_fraction", w + " data");
  o.batch = int_field(j, "batch", w);
  o.seq = int_field(j, "seq", w);
  o.steps = int_field(j, "steps", w);
  o.accum = int_field(j, "accum", w);
  const json& s = field(j, "schedule", w);
  const std::string ws = w + " schedule";
  o.schedule.kind = str_field(s, "kind", ws);
  o.schedule.warmup = int_field(s, "warmup", ws);
  o.schedule.peak_lr = num_field(s, "peak_lr", ws);
  o.schedule.wd = num_field(s, "wd", ws);
  o.schedule.min_ratio = num_field(s, "min_ratio", ws);
  o.schedule.stage1_frac = num_field(s, "stage1_frac", ws);
  o.schedule.stage1_end_ratio = num_field(s, "stage1_end_ratio", ws);
  o.schedule.stage2_ratio = num_field(s, "stage2_ratio", ws);
  o.schedule.decay_frac = num_field(s, "decay_frac", ws);
  const json& ad = field(j, "adam", w);
  o.adam.beta1 = num_field(ad, "beta1", w + " adam");
  o.adam.beta2 = num_field(ad, "beta2", w + " adam");
  o.adam.eps = num_field(ad, "eps", w + " adam");
  o.clip = num_field(j, "clip", w);
  const json& seed = field(j, "seed", w);
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0)) {
    throw_error(w, ": key 'seed': found ", seed.dump(), ", expected a non-negative integer");
  }
  o.seed = seed.get<uint64_t>();
  o.eval_every = int_field(j, "eval_every", w);
  o.eval_windows = int_field(j, "eval_windows", w);
  o.checkpoint_every = int_field(j, "checkpoint_every", w);
  o.keep = int_field(j, "keep", w);
  o.log_every = int_field(j, "log_every", w);
  o.out_dir = str_field(j, "out_dir", w);
  o.recompute = bool_field(j, "recompute", w);
  o.log_json = str_field(j, "log_json", w);
  if (j.contains("attention")) {
    o.attention = str_field(j, "attention", w);
    o.prefix_length = int_field(j, "prefix_length", w);
  }
  o.max_bad_steps = int_field(j, "max_bad_steps", w);
  return o;
}

// ---------------------------------------------------------------- checkpoints
std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

namespace {

void fsync_dir(const fs::path& dir) {
  FILE* f = std::fopen(dir.c_str(), "r");
  if (f) {
    fsync(fileno(f));
    std::fclose(f);
  }
}

std::vector<fs::path> checkpoint_dirs(const fs::path& out_dir) {
  std::vector<fs::path> dirs;
  if (!fs::is_directory(out_dir)) return dirs;
  for (const auto& e : fs::directory_iterator(out_dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0 && name.find(".tmp") == std::string::npos) {
      dirs.push_back(e.path());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace

void save_train_checkpoint(const fs::path& out_dir, const TrainOptions& options, TrainModel& model, const AdamW& adam,
                           const TrainState& state) {
  TRITTER_CHECK(adam.shard_lo() == 0 && adam.shard_hi() == model.num_params(), "save of a sharded AdamW");
  save_train_checkpoint(
      out_dir, options, model,
      [&](int which, const TensorInfo& t, const std::function<void(const void*, size_t)>& sink) {
        sink((which == 0 ? adam.m() : adam.v()).data() + t.offset, static_cast<size_t>(t.numel()) * sizeof(float));
      },
      adam.steps(), state);
}

bool holds_run(const fs::path& out_dir) {
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec)) return false;
  for (const char* f : {"latest", "model.safetensors", "state.json", "adapter_model.safetensors"}) {
    if (fs::exists(out_dir / f, ec)) return true;
  }
  return !checkpoint_dirs(out_dir).empty();
}

OutputLock prepare_output_dir(const fs::path& out_dir, bool resuming, bool overwrite, const char* who) {
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec)) {
    throw_error(who, ": --out '", out_dir.string(), "': found a file, expected a directory for checkpoints");
  }
  fs::create_directories(out_dir, ec);
  if (ec) throw_error(who, ": --out '", out_dir.string(), "': cannot create the directory: ", ec.message());
  OutputLock lock(out_dir, who);
  remove_stale_temporaries(out_dir);  // after the lock: no live run of ours can own them
  if (!resuming && !overwrite && holds_run(out_dir)) {
    const auto dirs = checkpoint_dirs(out_dir);
    throw_error(who, ": --out '", out_dir.string(), "' already holds a run",
                dirs.empty() ? std::string() : " (" + dirs.back().filename().string() + ")",
                "; expected a new or empty directory: pass --resume ", out_dir.string(),
                " to continue it, or --overwrite to replace it");
  }
  return lock;
}

// Renamed to a temporary of ours first, then removed: a kill during remove_all would otherwise leave a half-deleted
// step-* under its final name, which a resume would take for a checkpoint. A killed run's leftover is cleared by
// the next run's stale-temporary sweep (its pid is dead).
namespace {
void remove_checkpoint_dir(const fs::path& dir) {
  const fs::path doomed = dir.string() + ".tmp-" + std::to_string(getpid());  // step names are unique
  std::error_code ec;
  fs::remove_all(doomed, ec);
  fs::rename(dir, doomed, ec);
  fs::remove_all(ec ? dir : doomed);
}
}  // namespace

void remove_other_checkpoints(const fs::path& out_dir, const fs::path& keep) {
  for (const auto& d : checkpoint_dirs(out_dir)) {
    if (d != keep) remove_checkpoint_dir(d);
  }
}

void save_train_checkpoint(const fs::path& out_dir, const TrainOptions& options, TrainModel& model,
                           const MomentSource& source, int64_t adam_t, const TrainState& state) {
  fs::create_directories(out_dir);
  const std::string name = step_name(state.step);
  const fs::path final_dir = out_dir / name;
  const fs::path tmp_dir = out_dir / (name + ".tmp-" + std::to_string(getpid()));
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  // A failed write (disk full) removes the partial directory: its bytes would keep the disk full, and --resume
  // after space is freed needs nothing but the last whole checkpoint.
  TempDirGuard guard{tmp_dir};
  const auto params = std::as_const(model).params();
  std::map<std::string, std::string> meta{{"step", std::to_string(state.step)}};
  if (!options.tokenizer_json.empty()) {
    meta[kTokenizerMetadataKey] = options.tokenizer_json;
    meta["add_bos_token"] = "false";  // documents are read without <bos> (each ends with the tokenizer's eos)
  }
  save_checkpoint(tmp_dir / "model.safetensors", model.config(), params, meta);
  std::vector<SafeTensorOut> moments;
  for (int which = 0; which < 2; ++which) {
    for (const auto& t : model.table()) {
      moments.push_back({std::string(which == 0 ? "m." : "v.") + t.name, DType::F32, t.shape, nullptr,
                         [&source, which, &t](const std::function<void(const void*, size_t)>& sink) {
                           source(which, t, sink);
                         }});
    }
  }
  write_safetensors(tmp_dir / "optimizer.safetensors", moments,
                    {{"format", "tritter-adamw-v1"}, {"t", std::to_string(adam_t)}});
  json st{{"format", "tritter-train-v1"},
          {"step", state.step},
          {"tokens", state.tokens},
          {"skipped", state.skipped},
          {"adam_t", adam_t},
          {"data_rng", {std::to_string(state.data_rng[0]), std::to_string(state.data_rng[1]),
                        std::to_string(state.data_rng[2]), std::to_string(state.data_rng[3])}},
          {"last_loss", std::isfinite(state.last_loss) ? state.last_loss : 0.0},
          {"options", train_options_to_json(options)}};
  write_file_atomic(tmp_dir / "state.json", st.dump(2) + "\n");
  fsync_dir(tmp_dir);
  replace_dir_atomic(tmp_dir, final_dir);  // a re-save of the same step (Ctrl-C right after a periodic checkpoint)
  guard.keep = true;
  write_file_atomic(out_dir / "latest", name + "\n");
  fsync_dir(out_dir);
  auto dirs = checkpoint_dirs(out_dir);
  const int64_t keep = std::max<int64_t>(1, options.keep);
  for (int64_t i = 0; i + keep < static_cast<int64_t>(dirs.size()); ++i) {
    if (dirs[static_cast<size_t>(i)] != final_dir) remove_checkpoint_dir(dirs[static_cast<size_t>(i)]);
  }
}

void read_train_state(const fs::path& ckpt_dir, TrainState& state, AdamW& adam) {
  const fs::path path = ckpt_dir / "state.json";
  const std::string w = "checkpoint file '" + path.string() + "'";
  json st;
  try {
    st = json::parse(read_file_bytes(path));
  } catch (const json::exception& e) {
    throw_error(w, ": not valid JSON: ", json_error_text(e));
  }
  state.step = int_field(st, "step", w);
  state.tokens = int_field(st, "tokens", w);
  state.skipped = int_field(st, "skipped", w);
  state.last_loss = num_field(st, "last_loss", w);
  adam.set_steps(int_field(st, "adam_t", w));
  const json& rng = field(st, "data_rng", w);
  for (int i = 0; i < 4; ++i) {
    const std::string v = rng.is_array() && rng.size() == 4 && rng[i].is_string() ? rng[i].get<std::string>() : "";
    const bool digits = !v.empty() && v.size() <= 20 && v.find_first_not_of("0123456789") == std::string::npos;
    errno = 0;
    const unsigned long long x = digits ? std::strtoull(v.c_str(), nullptr, 10) : 0;
    if (!digits || errno == ERANGE) {
      throw_error(w, ": key 'data_rng': found ", rng.dump(), ", expected 4 decimal strings of 64-bit integers");
    }
    state.data_rng[static_cast<size_t>(i)] = x;
  }
}

fs::path latest_checkpoint(const fs::path& out_dir) {
  if (fs::exists(out_dir / "model.safetensors") && fs::exists(out_dir / "state.json")) return out_dir;
  if (fs::exists(out_dir / "latest")) {
    std::string name = read_file_bytes(out_dir / "latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (fs::is_directory(out_dir / name)) return out_dir / name;
  }
  auto dirs = checkpoint_dirs(out_dir);
  if (dirs.empty()) throw_error("resume: directory '", out_dir.string(), "': found no step-* checkpoint");
  return dirs.back();
}

TrainOptions read_checkpoint_options(const fs::path& ckpt_dir) {
  json st;
  try {
    st = json::parse(read_file_bytes(ckpt_dir / "state.json"));
  } catch (const json::exception& e) {
    throw_error("checkpoint '", ckpt_dir.string(), "': state.json: not valid JSON: ", json_error_text(e));
  }
  TrainOptions o = train_options_from_json(field(st, "options", "checkpoint '" + ckpt_dir.string() + "' state.json"));
  o.tokenizer_json = tritter_file_tokenizer_json(SafeTensorsFile(ckpt_dir / "model.safetensors"));
  return o;
}

void load_train_checkpoint(const fs::path& ckpt_dir, TrainModel& model, AdamW& adam, TrainState& state) {
  const SafeTensorsFile mf(ckpt_dir / "model.safetensors");
  const TritterConfig cfg = config_from_metadata(mf, kCheckpointFormat);
  if (config_to_json(cfg, true) != config_to_json(model.config(), true)) {
    throw_error("checkpoint '", ckpt_dir.string(), "': model config differs from the run's config");
  }
  load_checkpoint_tensors(mf, model.config(), model.params());
  const SafeTensorsFile of(ckpt_dir / "optimizer.safetensors");
  for (const char* which : {"m", "v"}) {
    float* base = (which[0] == 'm' ? adam.m() : adam.v()).data();
    const int64_t lo = adam.shard_lo(), hi = adam.shard_hi();
    for (const auto& t : model.table()) {
      const SafeTensor& st = of.expect(std::string(which) + "." + t.name, DType::F32, t.shape);
      const int64_t a = std::max(lo, t.offset), b = std::min(hi, t.offset + t.numel());
      if (a < b) {
        std::memcpy(base + (a - lo), st.data + static_cast<size_t>(a - t.offset) * sizeof(float),
                    static_cast<size_t>(b - a) * sizeof(float));
      }
    }
  }
  read_train_state(ckpt_dir, state, adam);
}

// ---------------------------------------------------------------- evaluation
namespace {
template <typename Forward>
double evaluate_windows(const Forward& forward, const TokenData& data, int64_t B, int64_t T, int64_t max_windows) {
  const int64_t windows = std::min(data.val_windows(T), max_windows);
  if (windows <= 0) return -1.0;
  std::vector<int32_t> tok(static_cast<size_t>(T + 1)), in(static_cast<size_t>(B * T)), tg(static_cast<size_t>(B * T));
  // Nats over the bytes the targets stand for: one per byte token, the decoded text of each BPE token.
  double nats = 0, bytes = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += B) {
    int64_t valid_rows = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t w = w0 + b;
      data.val_window(w < windows ? w : 0, T, tok.data());
      for (int64_t t = 0; t < T; ++t) {
        in[static_cast<size_t>(b * T + t)] = tok[static_cast<size_t>(t)];
        tg[static_cast<size_t>(b * T + t)] = w < windows ? tok[static_cast<size_t>(t + 1)] : -100;
      }
      if (w < windows) ++valid_rows, bytes += static_cast<double>(data.val_window_bytes(w, T));
    }
    const double loss = forward(in.data(), tg.data());
    nats += loss * static_cast<double>(valid_rows * T);
  }
  return bytes > 0 ? nats / bytes / std::log(2.0) : -1.0;
}
}  // namespace

double evaluate_bits_per_byte(TrainModel& model, const TokenData& data, int64_t B, int64_t T, int64_t max_windows) {
  return evaluate_windows([&](const int32_t* in, const int32_t* tg) { return model.forward(in, tg, B, T, 1.0f); },
                          data, B, T, max_windows);
}

double evaluate_bits_per_byte(ParallelTrainModel& model, const TokenData& data, int64_t B, int64_t T,
                              int64_t max_windows) {
  return evaluate_windows([&](const int32_t* in, const int32_t* tg) { return model.step(in, tg, B, T, 1.0f, false); },
                          data, B, T, max_windows);
}

double evaluate_bits_per_byte(const std::function<double(const int32_t*, const int32_t*)>& window_loss,
                              const TokenData& data, int64_t B, int64_t T, int64_t max_windows) {
  return evaluate_windows(window_loss, data, B, T, max_windows);
}

// ---------------------------------------------------------------- the loop
namespace {

std::string format_duration(double s) {
  char buf[32];
  const long long t = static_cast<long long>(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  return buf;
}

}  // namespace

TrainResult run_train_loop(const TrainOptions& opt, const TokenData& data, TrainState& state, Rng& data_rng,
                           bool resumed, const TrainLoopHooks& hooks, const char* who,
                           const std::atomic<bool>* stop, const std::function<void(const std::string&)>& print) {
  std::FILE* log = nullptr;
  if (!opt.log_json.empty() && hooks.root) {
    log = std::fopen(opt.log_json.c_str(), resumed ? "a" : "w");
    if (!log) throw_error(who, ": --log-json '", opt.log_json, "': cannot open for writing: ", std::strerror(errno));
  }
  struct LogCloser {
    std::FILE* f;
    ~LogCloser() {
      if (f) std::fclose(f);
    }
  } closer{log};

  const int64_t B = opt.batch, T = opt.seq;
  std::vector<int32_t> tok(static_cast<size_t>(B * (T + 1))), in(static_cast<size_t>(B * T)), tg(in.size());
  TrainResult res;
  int64_t consecutive_bad = 0;
  const auto t_start = std::chrono::steady_clock::now();
  const int64_t first_step = state.step;
  double last_val = -1;
  auto save = [&]() {
    state.data_rng = data_rng.state();
    hooks.save();
  };

  while (state.step < opt.steps) {
    const int64_t step = state.step;
    const double lr = opt.schedule.lr(step), wd = opt.schedule.weight_decay(step);
    if (hooks.begin_step) hooks.begin_step(step, opt.steps);
    hooks.zero_grad();
    double loss = 0;
    for (int64_t a = 0; a < opt.accum; ++a) {
      data.sample_batch(data_rng, B, T, tok.data());
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t t = 0; t < T; ++t) {
          in[static_cast<size_t>(b * T + t)] = tok[static_cast<size_t>(b * (T + 1) + t)];
          tg[static_cast<size_t>(b * T + t)] = tok[static_cast<size_t>(b * (T + 1) + t + 1)];
        }
      }
      try {
        loss += hooks.micro_step(in.data(), tg.data(), 1.0f / static_cast<float>(opt.accum)) /
                static_cast<double>(opt.accum);
      } catch (const Error& e) {
        // The quantizers refuse NaN/Inf ("... expected a finite value"): that is a non-finite step, not a crash.
        if (std::string(e.what()).find("expected a finite value") == std::string::npos) throw;
        loss = std::numeric_limits<double>::quiet_NaN();
      }
    }
    if (hooks.reduce) loss = hooks.reduce(loss);  // every rank, skipped steps too (the sums are collective)
    const double gnorm = !std::isfinite(loss) ? std::numeric_limits<double>::quiet_NaN()
                         : hooks.clip_norm    ? hooks.clip_norm(opt.clip)
                                              : clip_grad_norm(hooks.grads, opt.clip);
    state.tokens += B * T * opt.accum;
    if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
      ++state.skipped;
      ++res.skipped;
      ++consecutive_bad;
      res.losses.push_back(std::nan(""));
      if (opt.on_step) {
        StepRecord r;
        r.step = step + 1;
        r.steps = opt.steps;
        r.loss = std::numeric_limits<double>::quiet_NaN();
        r.lr = lr;
        r.wd = wd;
        r.grad_norm = gnorm;
        r.tokens = state.tokens;
        r.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        r.skipped = state.skipped;
        r.skipped_step = true;
        opt.on_step(r);
      }
      print(detail::concat("step ", step + 1, ": non-finite loss ", loss, " or gradient norm ", gnorm,
                           ": update skipped (", state.skipped, " skipped so far)"));
      if (consecutive_bad >= opt.max_bad_steps) {
        throw_error(who, ": ", consecutive_bad, " consecutive steps with non-finite loss or gradients at step ",
                    step + 1, ": stopping; the last good checkpoint in '", opt.out_dir, "' is intact");
      }
      ++state.step;
      continue;
    }
    consecutive_bad = 0;
    hooks.update(lr, wd);
    ++state.step;
    state.last_loss = loss;
    res.losses.push_back(loss);
    res.last_loss = loss;

    const bool last = state.step == opt.steps;
    const bool do_eval = last || (opt.eval_every > 0 && state.step % opt.eval_every == 0);
    if (do_eval) last_val = hooks.eval();
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - t_start).count();
    const double tps =
        elapsed > 0 ? static_cast<double>((state.step - first_step) * B * T * opt.accum) / elapsed : 0.0;
    res.tokens_per_s = tps;
    if (last || do_eval || state.step % std::max<int64_t>(1, opt.log_every) == 0 || state.step == first_step + 1) {
      const double eta = tps > 0 ? static_cast<double>((opt.steps - state.step) * B * T * opt.accum) / tps : 0.0;
      char line[256];
      std::snprintf(line, sizeof line, "step %lld/%lld | loss %.4f | %s | lr %.3g | %.0f tok/s | ETA %s | peak %s",
                    static_cast<long long>(state.step), static_cast<long long>(opt.steps), loss,
                    do_eval && last_val >= 0 ? detail::concat("val bpb ", std::to_string(last_val).substr(0, 6)).c_str()
                                             : "val bpb  -    ",
                    lr, tps, format_duration(eta).c_str(),
                    format_bytes(static_cast<double>(process_memory().peak_rss_bytes)).c_str());
      print(line);
      if (log) {
        json j{{"step", state.step}, {"loss", loss}, {"lr", lr}, {"wd", wd}, {"grad_norm", gnorm},
               {"tokens", state.tokens}, {"tokens_per_s", tps}, {"elapsed_s", elapsed}, {"skipped", state.skipped}};
        if (do_eval && last_val >= 0) j["val_bpb"] = last_val;
        // A log that cannot be written (disk full, /dev/full) is an error: an empty log and exit 0 would hide it.
        if (std::fprintf(log, "%s\n", j.dump().c_str()) < 0 || std::fflush(log) != 0) {
          throw_error(who, ": --log-json '", opt.log_json, "': write failed at step ", state.step, ": ",
                      std::strerror(errno));
        }
      }
    }
    if (opt.on_step) {
      opt.on_step({.step = state.step, .steps = opt.steps, .loss = loss, .lr = lr, .wd = wd, .grad_norm = gnorm,
                   .tokens = state.tokens, .tokens_per_s = tps, .elapsed_s = elapsed,
                   .val_bpb = do_eval ? last_val : -1, .skipped = state.skipped, .skipped_step = false});
    }
    if (last || (opt.checkpoint_every > 0 && state.step % opt.checkpoint_every == 0)) save();
    const bool stop_here = stop && stop->load();
    if (hooks.any_stop ? hooks.any_stop(stop_here) : stop_here) {
      if (!last) save();
      print(detail::concat("interrupted: checkpoint written at step ", state.step, " in '", opt.out_dir, "'"));
      res.interrupted = true;
      break;
    }
  }
  res.steps_done = state.step;
  res.last_val_bpb = last_val;
  return res;
}

void check_batch_shape(const TrainOptions& o, const char* who) {
  if (o.batch < 1 || o.seq < 1 || o.accum < 1) {
    throw_error(who, ": batch/seq/accum: found ", o.batch, "/", o.seq, "/", o.accum, ", expected all >= 1");
  }
  // Stated maxima: the token buffers are B·(T+1) and B·T·accum must count tokens without overflow.
  if (o.batch > kMaxBatch) throw_error(who, ": --batch: found ", o.batch, ", expected at most ", kMaxBatch);
  if (o.seq > kMaxPositions) throw_error(who, ": --seq: found ", o.seq, ", expected at most ", kMaxPositions);
  if (o.accum > kMaxAccum) throw_error(who, ": --accum: found ", o.accum, ", expected at most ", kMaxAccum);
  if (static_cast<double>(o.batch) * static_cast<double>(o.seq) > static_cast<double>(kMaxBatchTokens)) {
    throw_error(who, ": --batch x --seq: found ", static_cast<double>(o.batch) * static_cast<double>(o.seq),
                " tokens per micro-batch, expected at most ", kMaxBatchTokens);
  }
  if (o.steps < 0) throw_error(who, ": --steps: found ", o.steps, ", expected >= 0");
  if (o.attention == "bidirectional") {
    throw_error(who, ": --attention bidirectional: every next-token target would be visible to the position that "
                "predicts it; train causal or prefix_lm (a bidirectional mask is for embedding a trained model)");
  }
  if (o.attention != "causal" && o.attention != "prefix_lm") {
    throw_error(who, ": --attention: found '", o.attention, "', expected causal or prefix_lm");
  }
  if (o.attention == "prefix_lm" && (o.prefix_length < 1 || o.prefix_length >= o.seq)) {
    throw_error(who, ": --prefix-length: found ", o.prefix_length, " with --seq ", o.seq, ", expected 1 .. ",
                o.seq - 1, " for prefix_lm");
  }
}

TrainResult run_training(Context& ctx, const TrainOptions& opt_in, const fs::path& resume_from,
                         const std::atomic<bool>* stop, const std::function<void(const std::string&)>& print) {
  TrainOptions opt = opt_in;
  opt.schedule.total_steps = opt.steps;
  opt.schedule.validate();
  check_batch_shape(opt, "train");
  if (opt.out_dir.empty()) throw_error("train: no output directory (--out)");
  // The output first: a file, a locked directory or an old run fails here, before a step is spent.
  // Rank 0 alone writes checkpoints, so it alone holds the directory (the other ranks of one host would find
  // it locked by rank 0).
  const bool writer = !opt.comm || opt.comm->rank() == 0;
  const OutputLock lock =
      writer ? prepare_output_dir(opt.out_dir, !resume_from.empty(), opt.overwrite, "train") : OutputLock();
  bool replace_old_run = writer && opt.overwrite && resume_from.empty() && holds_run(opt.out_dir);
  // The plan before the allocation: weights, gradients, two moments and the activations of one micro-batch.
  check_allocation(16.0 * static_cast<double>(parameter_count(opt.config)) +
                       static_cast<double>(train_activation_bytes(opt.config, opt.batch, opt.seq, opt.recompute)),
                   detail::concat("train: a model of ", parameter_count(opt.config), " parameters at B=", opt.batch,
                                  " T=", opt.seq));
  ParallelTrainModel pm(opt.config, ctx);  // data parallel over the batch with ctx.threads workers
  TrainModel& model = pm.primary();
  const int64_t P = model.num_params();
  Communicator* comm = opt.comm;
  const int rank = comm ? comm->rank() : 0, ranks = comm ? comm->size() : 1;
  const bool dist = ranks > 1, zero = dist && opt.zero1;
  if (dist && opt.batch < ranks) {
    throw_error("train: --batch: found ", opt.batch, " with ", ranks, " ranks, expected at least one sequence per rank");
  }
  const Range rows = shard_range(opt.batch, rank, ranks);  // this rank's sequences of every global batch
  const Range shard = zero ? shard_range(P, rank, ranks) : Range{0, P};
  AdamWParams hp = opt.adam;
  hp.decay_embedding = !model.config().cosine_head();  // a cosine head normalizes E's rows: no decay on them
  AdamW adam(P, ctx, hp, shard.lo, shard.hi);
  TrainState state;
  Rng data_rng(opt.seed ^ 0x9e3779b97f4a7c15ull);
  if (!resume_from.empty()) {
    load_train_checkpoint(resume_from, model, adam, state);
    data_rng.set_state(state.data_rng);
  } else {
    model.init_weights(opt.seed);
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (!opt.tokenizer_json.empty()) {
    tokenizer = parse_tokenizer_json(opt.tokenizer_json, "train: the run's tokenizer.json");
    if (tokenizer->vocab_size() > opt.config.vocab_size) {
      throw_error("train: the tokenizer has ", tokenizer->vocab_size(), " tokens, expected at most the model's vocab_size ",
                  opt.config.vocab_size);
    }
  }
  const TokenData data = tokenizer ? TokenData(opt.data, *tokenizer, /*add_bos=*/false) : TokenData(opt.data);
  const DataStats& ds = data.stats();
  print(detail::concat("data: ", ds.files, " files, ", ds.documents, " documents (", ds.train_docs, " train / ",
                       ds.val_docs, " val), ", ds.train_tokens, " train tokens, ", ds.val_tokens, " val tokens"));
  print(detail::concat("model: ", model.num_params(), " parameters, quant=", opt.config.quant ? "true" : "false",
                       ", B=", opt.batch, " T=", opt.seq, " accum=", opt.accum, ", activations ",
                       format_bytes(static_cast<double>(train_activation_bytes(opt.config, opt.batch, opt.seq,
                                                                              opt.recompute))),
                       opt.recompute ? " (recompute)" : ""));
  if (dist) {
    print(detail::concat("data parallel: ", ranks, " ranks x ", ctx.threads, " threads, ", rows.size(),
                         " sequences per rank, ", zero ? "ZeRO-1 optimizer state " : "replicated optimizer state ",
                         ctx.memory.in_use(MemCategory::Optimizer), " bytes on rank 0"));
  }
  pm.reserve(rows.size(), opt.seq, opt.recompute);
  const bool prefix_lm = opt.attention == "prefix_lm";
  if (prefix_lm) pm.set_mask(AttnMask::prefix_lm(opt.prefix_length, opt.config.sliding_window));
  // prefix_lm: targets inside each sequence's prefix become −100 (a copy: the loop's batch stays as drawn).
  std::vector<int32_t> masked_targets;
  auto targets_of = [&](const int32_t* tg, int64_t B) {
    if (!prefix_lm) return tg;
    masked_targets.assign(tg, tg + B * opt.seq);
    const std::vector<int64_t> prefix(static_cast<size_t>(B), opt.prefix_length);
    mask_prefix_targets(masked_targets.data(), B, opt.seq, prefix);
    return static_cast<const int32_t*>(masked_targets.data());
  };

  TrainLoopHooks hooks;
  hooks.zero_grad = [&] { model.zero_grad(); };
  hooks.micro_step = [&](const int32_t* in, const int32_t* tg_drawn, float scale) {
    const int32_t* tg = targets_of(tg_drawn, opt.batch);
    if (!dist) return pm.step(in, tg, opt.batch, opt.seq, scale, true);
    // This rank's rows, weighted by their share of the batch's valid targets as ParallelTrainModel weights its
    // workers: N ranks of one thread each compute what one process of N workers does, bit for bit.
    const int64_t T = opt.seq;
    int64_t valid = 0, total = 0;
    for (int64_t n = 0; n < opt.batch * T; ++n) {
      const bool v = tg[n] != -100;
      total += v;
      valid += v && n >= rows.lo * T && n < rows.hi * T;
    }
    const double share = total > 0 ? static_cast<double>(valid) / static_cast<double>(total) : 0.0;
    return share * pm.step(in + rows.lo * T, tg + rows.lo * T, rows.size(), T, scale * static_cast<float>(share), true);
  };
  hooks.grads = model.grads();
  hooks.begin_step = [&](int64_t step, int64_t steps) {
    const double progress = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(steps, 1));
    pm.set_embed_pred_beta(embed_pred_beta(opt.config.embed_pred_weight, progress));
  };
  hooks.update = [&](double lr, double wd) {
    adam.step(model.params(), model.grads(), model.table(), lr, wd);
    if (zero) comm->allgather(model.params().data(), P);  // every rank's updated shard to every rank
  };
  // Evaluation on rank 0 alone (its own share of the batch rows per forward); the others report -1.
  hooks.eval = [&] {
    if (rank != 0) return -1.0;
    if (!prefix_lm) return evaluate_bits_per_byte(pm, data, rows.size(), opt.seq, opt.eval_windows);
    const int64_t B = rows.size();
    return evaluate_bits_per_byte([&](const int32_t* in, const int32_t* tg) {
      return pm.step(in, targets_of(tg, B), B, opt.seq, 1.0f, false);
    }, data, B, opt.seq, opt.eval_windows);
  };
  hooks.save = [&] {
    if (!zero) {
      if (rank == 0) save_train_checkpoint(opt.out_dir, opt, model, adam, state);
    } else {  // written once by rank 0, each tensor's moments gathered from the shards as it is written
      auto gather = [&](int which, const TensorInfo& t, const std::function<void(const void*, size_t)>& sink) {
        comm->gather_range_to_root((which == 0 ? adam.m() : adam.v()).data(), P, {t.offset, t.offset + t.numel()},
                                   [&](const float* p, int64_t k) {
                                     if (sink) sink(p, static_cast<size_t>(k) * sizeof(float));
                                   });
      };
      if (rank == 0) {
        save_train_checkpoint(opt.out_dir, opt, model, gather, adam.steps(), state);
      } else {  // the same gathers in the same order, sending this rank's pieces
        for (int which = 0; which < 2; ++which)
          for (const auto& t : model.table()) gather(which, t, {});
      }
    }
    if (dist) comm->barrier();  // no rank runs ahead of a checkpoint being written
    // --overwrite: the old run's checkpoints go once this run's first one is whole (and `latest` names it).
    if (replace_old_run && rank == 0) remove_other_checkpoints(opt.out_dir, latest_checkpoint(opt.out_dir));
    replace_old_run = false;
  };
  if (dist) {
    hooks.root = rank == 0;
    hooks.reduce = [&](double loss) {
      if (zero) comm->reduce_scatter_sum(model.grads().data(), P);
      else comm->allreduce_sum(model.grads().data(), P);
      comm->allreduce_sum(&loss, 1);
      return loss;
    };
    hooks.clip_norm = [&](double clip) {
      if (!zero) return clip_grad_norm(model.grads(), clip);
      const std::span<float> g = model.grads().subspan(static_cast<size_t>(shard.lo), static_cast<size_t>(shard.size()));
      const double n = std::sqrt(comm->chain([&](double s) { return grad_sum_squares(g, s); }));
      clip_grads_to(g, n, clip);
      return n;
    };
    hooks.any_stop = [&](bool local) {
      double s = local ? 1.0 : 0.0;
      comm->allreduce_sum(&s, 1);
      return s > 0;
    };
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t step0 = state.step;
  TrainResult res = run_train_loop(opt, data, state, data_rng, !resume_from.empty(), hooks, "train", stop, print);
  if (dist && state.step > step0) {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double steps = static_cast<double>(state.step - step0);
    char line[256];
    std::snprintf(line, sizeof line,
                  "communication (rank 0): %.3f s of %.3f s (%.1f %%), %.0f bytes sent per step, %.1f ms per step",
                  comm->comm_seconds(), wall, 100.0 * comm->comm_seconds() / wall,
                  static_cast<double>(comm->bytes_sent()) / steps, 1e3 * comm->comm_seconds() / steps);
    print(line);
  }
  return res;
}

}  // namespace tritter::train
