// The LoRA fine-tuning loop (see lora_finetune.h).
#include "train/lora_finetune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/temp_dir.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model_files.h"
#include "model/model_text.h"
#include "model/peft.h"
#include "train/optim.h"

namespace tritter::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json lora_to_json(const LoraConfig& l) {
  return {{"rank", l.rank}, {"alpha", l.alpha}, {"dropout", l.dropout}, {"targets", l.targets}, {"init", l.init}};
}
LoraConfig lora_from_json(const json& j) {
  LoraConfig l;
  const std::string w = "finetune checkpoint state.json options lora";
  if (!j.is_object() || !j.contains("rank") || !j.contains("alpha") || !j.contains("dropout")) {
    throw_error(w, ": found ", j.dump(), ", expected rank, alpha and dropout");
  }
  l.rank = json_to_int(j.at("rank"), w, "rank");  // range-checked before the cast
  l.alpha = json_to_number(j.at("alpha"), w, "alpha");
  l.dropout = json_to_number(j.at("dropout"), w, "dropout");
  const json& targets = j.contains("targets") ? j.at("targets") : json();
  if (!targets.is_array() || std::any_of(targets.begin(), targets.end(), [](const json& t) { return !t.is_string(); })) {
    throw_error(w, ": key 'targets': found ", targets.dump(), ", expected a list of module names");
  }
  l.targets = targets.get<std::vector<std::string>>();
  if (!j.contains("init") || !j.at("init").is_string()) {
    throw_error(w, ": key 'init': found ", j.contains("init") ? j.at("init").dump() : "nothing", ", expected a string");
  }
  l.init = j.at("init").get<std::string>();
  return l;
}

// The newest adapter at the top level too, so `--lora OUT` reads it. Its two files cannot move in one rename, so
// they are written to a staging directory and renamed in an order that never pairs one adapter's weights with
// another's config: the same config (every save of one run) needs only the weights' rename (a kill leaves the
// previous step's whole adapter); a different one (--overwrite of a run of another rank) first removes the old
// weights, so a kill in between leaves no adapter at the top (its step directories still hold it) rather than a
// pair whose shapes disagree.
void save_top_level_adapter(const fs::path& out, const LoraModel& m, const std::string& base) {
  const fs::path staged = out / (".adapter.tmp-" + std::to_string(getpid()));
  std::error_code ec;
  fs::remove_all(staged, ec);
  const TempDirGuard guard{staged};  // emptied by the renames below, removed in any case
  save_lora_adapter(staged, m.config(), m.lora(), m.params(), base);
  const fs::path cfg = out / "adapter_config.json", weights = out / "adapter_model.safetensors";
  const auto move = [](const fs::path& from, const fs::path& to) {
    std::error_code e;
    fs::rename(from, to, e);
    if (e) throw_error("finetune: cannot rename '", from.string(), "' to '", to.string(), "': ", e.message());
  };
  const std::string new_cfg = read_file_bytes(staged / "adapter_config.json");
  const bool same_config = fs::exists(cfg, ec) && read_file_bytes(cfg) == new_cfg;
  if (!same_config) {
    fs::remove(weights, ec);
    move(staged / "adapter_config.json", cfg);
  }
  move(staged / "adapter_model.safetensors", weights);
}

void save_finetune_checkpoint(const FinetuneOptions& o, const LoraModel& m, const AdamW& adam, const TrainState& st) {
  const fs::path out(o.train.out_dir);
  fs::create_directories(out);
  const std::string name = step_name(st.step);
  const fs::path final_dir = out / name, tmp = out / (name + ".tmp-" + std::to_string(getpid()));
  fs::remove_all(tmp);
  // A failed write (disk full) removes the partial directory, so a --resume after space is freed finds room.
  TempDirGuard guard{tmp};
  save_lora_adapter(tmp, m.config(), m.lora(), m.params(), o.base);
  std::vector<SafeTensorOut> moments;
  for (const char* which : {"m", "v"}) {
    const float* base = (which[0] == 'm' ? adam.m() : adam.v()).data();
    for (const auto& t : m.infos()) moments.push_back({std::string(which) + "." + t.name, DType::F32, t.shape, base + t.offset, {}});
  }
  write_safetensors(tmp / "optimizer.safetensors", moments, {{"format", "tritter-adamw-v1"}, {"t", std::to_string(adam.steps())}});
  json opts = train_options_to_json(o.train);
  opts["base"] = o.base;
  opts["lora"] = lora_to_json(o.lora);
  const json j{{"format", "tritter-finetune-v1"}, {"step", st.step}, {"tokens", st.tokens}, {"skipped", st.skipped},
               {"adam_t", adam.steps()},
               {"data_rng", {std::to_string(st.data_rng[0]), std::to_string(st.data_rng[1]),
                             std::to_string(st.data_rng[2]), std::to_string(st.data_rng[3])}},
               {"last_loss", std::isfinite(st.last_loss) ? st.last_loss : 0.0}, {"options", opts}};
  write_file_atomic(tmp / "state.json", j.dump(2) + "\n");
  replace_dir_atomic(tmp, final_dir);
  guard.keep = true;
  write_file_atomic(out / "latest", name + "\n");
  save_top_level_adapter(out, m, o.base);
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step-", 0) == 0 && n.find(".tmp") == std::string::npos) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  const int64_t keep = std::max<int64_t>(1, o.train.keep);
  for (int64_t i = 0; i + keep < static_cast<int64_t>(dirs.size()); ++i) {
    if (dirs[static_cast<size_t>(i)] != final_dir) fs::remove_all(dirs[static_cast<size_t>(i)]);
  }
}

void load_finetune_checkpoint(const fs::path& dir, LoraModel& m, AdamW& adam, TrainState& st) {
  const LoraAdapter a = load_lora_adapter(dir, m.config(), nullptr);
  if (a.params.bytes() != m.params().size_bytes()) throw_error("resume '", dir.string(), "': adapter size differs from the run's");
  std::memcpy(m.params().data(), a.params.data(), a.params.bytes());
  const SafeTensorsFile of(dir / "optimizer.safetensors");
  for (const char* which : {"m", "v"}) {
    float* base = (which[0] == 'm' ? adam.m() : adam.v()).data();
    for (const auto& t : m.infos()) {
      const SafeTensor& s = of.expect(std::string(which) + "." + t.name, DType::F32, t.shape);
      std::memcpy(base + t.offset, s.data, s.bytes());
    }
  }
  read_train_state(dir, st, adam);
}

}  // namespace

TokenData finetune_data(const std::string& base, const DataOptions& data, int64_t vocab_size) {
  const ModelFileKind kind = detect_model_file(base);
  const ModelText text = load_model_text(kind, base, kind == ModelFileKind::HfFolder ? base : "");
  if (text.tokenizer->kind() == "byte") return TokenData(data);  // Tritter's byte vocabulary, whatever the file
  TokenData d(data, *text.tokenizer, text.add_bos);
  for (const auto* ids : {&d.train_ids(), &d.val_ids()}) {
    for (const int32_t id : *ids) {
      if (id < 0 || (vocab_size > 0 && id >= vocab_size)) {
        throw_error("finetune: base '", base, "': its tokenizer (", text.where, ") gave token id ", id,
                    ", expected one below the model's vocab_size ", vocab_size);
      }
    }
  }
  return d;
}

FinetuneOptions read_finetune_options(const fs::path& ckpt_dir) {
  json j;
  try {
    j = json::parse(read_file_bytes(ckpt_dir / "state.json"));
    if (j.at("format") != "tritter-finetune-v1") {
      throw_error("checkpoint '", ckpt_dir.string(), "': state.json format ", j.at("format").dump(),
                  ", expected \"tritter-finetune-v1\"");
    }
    FinetuneOptions o;
    o.train = train_options_from_json(j.at("options"));
    if (!j.at("options").contains("base") || !j.at("options").at("base").is_string()) {
      throw_error("checkpoint '", ckpt_dir.string(), "': state.json: key 'options.base': expected the base model's path");
    }
    o.base = j.at("options").at("base").get<std::string>();
    o.lora = lora_from_json(j.at("options").at("lora"));
    return o;
  } catch (const json::exception& e) {
    throw_error("checkpoint '", ckpt_dir.string(), "': state.json: ", json_error_text(e));
  }
}

FinetuneResult run_finetune(Context& ctx, const FinetuneOptions& opt_in, const fs::path& resume_from,
                            const std::atomic<bool>* stop, const std::function<void(const std::string&)>& print) {
  FinetuneOptions fo = opt_in;
  TrainOptions& opt = fo.train;
  fo.lora.validate();
  opt.schedule.total_steps = opt.steps;
  opt.schedule.validate();
  check_batch_shape(opt, "finetune");
  if (opt.out_dir.empty()) throw_error("finetune: no output directory (--out)");
  // The output first: a file, a locked directory or an old run fails here, before the base is read.
  const OutputLock lock = prepare_output_dir(opt.out_dir, !resume_from.empty(), opt.overwrite, "finetune");
  bool replace_old_run = opt.overwrite && resume_from.empty() && holds_run(opt.out_dir);
  PackedModel base = open_lora_base(fo.base, &ctx.memory);
  base.use_ternary_layout(TernaryLayout::T16, &ctx.memory);  // the backward through the base reads T16
  opt.config = base.config();
  // The adapter's size and rank against the base before it is allocated (an Error naming the matrix), then
  // the plan: adapters, gradients and two moments, plus the activations of one micro-batch.
  const int64_t adapter_params = lora_num_params(lora_table(opt.config, fo.lora), fo.lora.rank);
  check_allocation(16.0 * static_cast<double>(adapter_params) +
                       static_cast<double>(lora_activation_bytes(opt.config, fo.lora, opt.batch, opt.seq, opt.recompute)),
                   detail::concat("finetune: a rank-", fo.lora.rank, " adapter at B=", opt.batch, " T=", opt.seq));
  LoraModel model(base.weights(), fo.lora, ctx);
  AdamW adam(model.num_params(), ctx, opt.adam);
  TrainState state;
  Rng data_rng(opt.seed ^ 0x9e3779b97f4a7c15ull);
  model.set_dropout_seed(opt.seed ^ 0xd50u);
  if (!resume_from.empty()) {
    load_finetune_checkpoint(resume_from, model, adam, state);
    data_rng.set_state(state.data_rng);
  } else {
    model.init_adapters(opt.seed);
  }
  const TokenData data = finetune_data(fo.base, opt.data, opt.config.vocab_size);
  const DataStats& ds = data.stats();
  const int64_t B = opt.batch, T = opt.seq;
  FinetuneResult res;
  res.adapter_params = model.num_params();
  res.activation_bytes = lora_activation_bytes(opt.config, fo.lora, B, T, opt.recompute);
  print(detail::concat("data: ", ds.files, " files, ", ds.documents, " documents (", ds.train_docs, " train / ",
                       ds.val_docs, " val), ", ds.train_tokens, " train tokens, ", ds.val_tokens, " val tokens"));
  print(detail::concat("lora: r=", fo.lora.rank, " alpha=", fo.lora.alpha, " (scale ", fo.lora.scale(), "), ",
                       model.num_params(), " adapter parameters on a frozen packed base of ",
                       parameter_count(opt.config), "; B=", B, " T=", T, " accum=", opt.accum, ", activations ",
                       format_bytes(static_cast<double>(res.activation_bytes)),
                       opt.recompute ? " (recompute)" : ""));
  model.reserve(B, T, opt.recompute);
  auto eval = [&]() {
    const auto loss = [&](const int32_t* in, const int32_t* tg) { return model.forward(in, tg, B, T, 1.0f, false); };
    return evaluate_bits_per_byte(loss, data, B, T, opt.eval_windows);
  };
  if (resume_from.empty() && opt.eval_every >= 0) {
    res.base_val_bpb = eval();
    // evaluate_bits_per_byte answers -1 when the validation split holds no full window.
    print(res.base_val_bpb < 0 ? std::string("val bpb at step 0 (the base): - (no validation window of T+1 tokens)")
                               : detail::concat("val bpb at step 0 (the base): ", res.base_val_bpb));
  }
  TrainLoopHooks hooks;
  hooks.zero_grad = [&] { model.zero_grad(); };
  hooks.micro_step = [&](const int32_t* in, const int32_t* tg, float scale) {
    const double loss = model.forward(in, tg, B, T, scale);
    model.backward();
    return loss;
  };
  hooks.grads = model.grads();
  hooks.update = [&](double lr, double wd) { adam.step(model.params(), model.grads(), model.infos(), lr, wd); };
  hooks.eval = eval;
  hooks.save = [&] {
    save_finetune_checkpoint(fo, model, adam, state);
    // --overwrite: the old run's checkpoints go once this run's first one is whole (and `latest` names it).
    if (replace_old_run) remove_other_checkpoints(opt.out_dir, latest_checkpoint(opt.out_dir));
    replace_old_run = false;
  };
  res.train = run_train_loop(opt, data, state, data_rng, !resume_from.empty(), hooks, "finetune", stop, print);
  return res;
}

}  // namespace tritter::train
