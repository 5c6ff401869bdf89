// The LoRA fine-tuning loop (see lora_finetune.h).
#include "train/lora_finetune.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
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
  l.rank = j.at("rank");
  l.alpha = j.at("alpha");
  l.dropout = j.at("dropout");
  l.targets = j.at("targets").get<std::vector<std::string>>();
  l.init = j.at("init");
  return l;
}

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

void save_finetune_checkpoint(const FinetuneOptions& o, const LoraModel& m, const AdamW& adam, const TrainState& st) {
  const fs::path out(o.train.out_dir);
  fs::create_directories(out);
  const std::string name = step_name(st.step);
  const fs::path final_dir = out / name, tmp = out / (name + ".tmp-" + std::to_string(getpid()));
  fs::remove_all(tmp);
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
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  write_file_atomic(out / "latest", name + "\n");
  // The final adapter at the top level, so `--lora OUT` reads the newest one.
  save_lora_adapter(out, m.config(), m.lora(), m.params(), o.base);
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
  const json j = json::parse(read_file_bytes(dir / "state.json"));
  st.step = j.at("step");
  st.tokens = j.at("tokens");
  st.skipped = j.at("skipped");
  st.last_loss = j.at("last_loss");
  adam.set_steps(j.at("adam_t").get<int64_t>());
  for (int i = 0; i < 4; ++i) st.data_rng[i] = std::stoull(j.at("data_rng").at(i).get<std::string>());
}

}  // namespace

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
    o.base = j.at("options").at("base");
    o.lora = lora_from_json(j.at("options").at("lora"));
    return o;
  } catch (const json::exception& e) {
    throw_error("checkpoint '", ckpt_dir.string(), "': state.json: ", e.what());
  }
}

FinetuneResult run_finetune(Context& ctx, const FinetuneOptions& opt_in, const fs::path& resume_from,
                            const std::atomic<bool>* stop, const std::function<void(const std::string&)>& print) {
  FinetuneOptions fo = opt_in;
  TrainOptions& opt = fo.train;
  fo.lora.validate();
  opt.schedule.total_steps = opt.steps;
  opt.schedule.validate();
  if (opt.batch < 1 || opt.seq < 1 || opt.accum < 1) {
    throw_error("finetune: batch/seq/accum: found ", opt.batch, "/", opt.seq, "/", opt.accum, ", expected all >= 1");
  }
  if (opt.out_dir.empty()) throw_error("finetune: no output directory (--out)");
  const PackedModel base = open_lora_base(fo.base, &ctx.memory);
  opt.config = base.config();
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
  const TokenData data(opt.data);
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
    return evaluate_bits_per_byte([&](const int32_t* in, const int32_t* tg) { return model.forward(in, tg, B, T, 1.0f, false); },
                                  data, B, T, opt.eval_windows);
  };
  if (resume_from.empty() && opt.eval_every >= 0) {
    res.base_val_bpb = eval();
    print(detail::concat("val bpb at step 0 (the base): ", res.base_val_bpb));
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
  hooks.save = [&] { save_finetune_checkpoint(fo, model, adam, state); };
  res.train = run_train_loop(opt, data, state, data_rng, !resume_from.empty(), hooks, "finetune", stop, print);
  return res;
}

}  // namespace tritter::train
