// `tritter expand IN OUT --layers N [--method interleave|duplicate|solar] [--optimizer reset|expand]`: depth
// up-scaling of a trained checkpoint (model/expand.h, docs/training.md "Growing a model").
//   IN: a training run directory (its latest checkpoint), a checkpoint directory, or a model .safetensors;
//   OUT: a training run directory that `tritter train --resume OUT --steps S` continues (IN must be a training
//        checkpoint: its options, data position and AdamW moments), or OUT.safetensors (the grown model alone).
// The optimizer state: reset (default) = zero moments, AdamW t = 0 and step 0, so the resumed run starts its
// schedule (warmup included) afresh; expand = the moments follow their weights (a zeroed projection's are 0), t and
// the step continue. OUT is written under a temporary name and renamed into place: it exists whole or not at all.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/expand.h"
#include "model/tensor_table.h"
#include "train/trainer.h"

namespace tritter::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct ExpandArgs {
  std::string in, out, method = "interleave", optimizer = "reset";
  int64_t layers = 0;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

// The moments of `ckpt` (m then v, tensor-table order) into two flat buffers.
void load_moments(const fs::path& ckpt, const TritterConfig& c, std::vector<float>& m, std::vector<float>& v) {
  const SafeTensorsFile of(ckpt / "optimizer.safetensors");
  const auto table = tensor_table(c);
  m.assign(static_cast<size_t>(parameter_count(c)), 0.0f);
  v.assign(m.size(), 0.0f);
  for (const auto& t : table) {
    for (int which = 0; which < 2; ++which) {
      const SafeTensor& st = of.expect(std::string(which == 0 ? "m." : "v.") + t.name, DType::F32, t.shape);
      std::memcpy((which == 0 ? m : v).data() + t.offset, st.data, static_cast<size_t>(t.numel()) * sizeof(float));
    }
  }
}

void run_expand(const ExpandArgs& a, const GlobalOptions& global) {
  auto ctx = make_context(global);
  const ExpandMethod method = expand_method_from_name(a.method);
  if (a.optimizer != "reset" && a.optimizer != "expand") {
    throw_error("expand: --optimizer '", a.optimizer, "': expected reset or expand");
  }
  if (fs::exists(a.out)) throw_error("expand: OUT '", a.out, "' exists; expected a new path (nothing was written)");
  fs::path ckpt, model_path = a.in;
  if (fs::is_directory(a.in)) {
    ckpt = train::latest_checkpoint(a.in);
    model_path = ckpt / "model.safetensors";
    if (!fs::exists(ckpt / "state.json")) ckpt.clear();  // a folder holding just a model file
  } else if (!fs::exists(a.in)) {
    throw_error("expand: IN '", a.in, "': no such file or directory; expected a training run, checkpoint directory "
                "or model .safetensors");
  }
  const bool to_file = ends_with(a.out, ".safetensors");
  if (!to_file && ckpt.empty()) {
    throw_error("expand: OUT '", a.out, "' is a training run directory, which needs IN's training state (options, "
                "data position, AdamW moments), but IN '", a.in, "' is a model file; give OUT as a .safetensors file");
  }
  Checkpoint ck = load_checkpoint(model_path, &ctx->memory);
  const TritterConfig& c = ck.config;
  if (a.layers < 1) throw_error("expand: --layers ", a.layers, ": expected the grown model's layer count");
  const std::vector<ExpandedLayer> plan = expand_plan(c.num_hidden_layers, a.layers, method);
  const TritterConfig g = expanded_config(c, a.layers);
  std::vector<float> params(static_cast<size_t>(parameter_count(g)));
  expand_params(c, ck.params.as<float>(), plan, params);
  std::string layout;
  for (const auto& e : plan) layout += (layout.empty() ? "" : " ") + std::to_string(e.source) + (e.zeroed ? "z" : "");
  const std::map<std::string, std::string> meta = {{"expanded_from", model_path.string()},
                                                   {"expand_method", expand_method_name(method)},
                                                   {"expand_layers", layout}};
  const auto report = [&] {
    if (global.quiet) return;
    std::printf("expanded %s (%lld layers, %lld parameters) -> %s (%lld layers, %lld parameters), method %s; layers "
                "from: %s (z = output projections zeroed)\n",
                model_path.string().c_str(), static_cast<long long>(c.num_hidden_layers),
                static_cast<long long>(parameter_count(c)), a.out.c_str(), static_cast<long long>(a.layers),
                static_cast<long long>(parameter_count(g)), expand_method_name(method), layout.c_str());
  };
  if (to_file) {
    save_checkpoint(a.out, g, params, meta);
    report();
    return;
  }
  // A training run directory: OUT/step-S/{model, optimizer, state.json} and OUT/latest, built under a temporary
  // name next to OUT and renamed into place.
  json st = json::parse(read_file_bytes(ckpt / "state.json"));
  train::TrainOptions o = train::read_checkpoint_options(ckpt);
  o.config = g;
  o.out_dir = a.out;
  const bool keep = a.optimizer == "expand";
  std::vector<float> m, v, gm(params.size(), 0.0f), gv(params.size(), 0.0f);
  if (keep) {
    load_moments(ckpt, c, m, v);
    expand_params(c, m, plan, gm);
    expand_params(c, v, plan, gv);
  }
  const int64_t step = keep ? st.at("step").get<int64_t>() : 0;
  st["step"] = step;
  st["adam_t"] = keep ? st.at("adam_t").get<int64_t>() : 0;
  st["options"] = train::train_options_to_json(o);
  const fs::path out = fs::path(a.out);
  const fs::path tmp = out.parent_path() / (out.filename().string() + ".tmp-" + std::to_string(getpid()));
  fs::remove_all(tmp);
  try {
    const fs::path dir = tmp / step_dir_name(step);
    fs::create_directories(dir);
    auto model_meta = meta;
    model_meta["step"] = std::to_string(step);
    save_checkpoint(dir / "model.safetensors", g, params, model_meta);
    std::vector<SafeTensorOut> moments;
    for (int which = 0; which < 2; ++which) {
      for (const auto& t : tensor_table(g)) {
        moments.push_back({std::string(which == 0 ? "m." : "v.") + t.name, DType::F32, t.shape,
                           (which == 0 ? gm : gv).data() + t.offset, {}});
      }
    }
    write_safetensors(dir / "optimizer.safetensors", moments,
                      {{"format", "tritter-adamw-v1"}, {"t", std::to_string(st["adam_t"].get<int64_t>())}});
    write_file_atomic(dir / "state.json", st.dump(2) + "\n");
    write_file_atomic(tmp / "latest", step_dir_name(step) + "\n");
    fs::rename(tmp, out);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  report();
  if (!global.quiet) {
    std::printf("optimizer %s (step %lld); continue with: tritter train --resume %s --steps N\n",
                keep ? "moments expanded" : "reset", static_cast<long long>(step), a.out.c_str());
  }
}

}  // namespace

void add_expand_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<ExpandArgs>();
  CLI::App* c = app.add_subcommand("expand", "Grow a trained checkpoint's depth (depth up-scaling)");
  c->add_option("in", a->in, "Training run directory, checkpoint directory or model .safetensors")->required();
  c->add_option("out", a->out, "New training run directory (resumable), or a .safetensors file")->required();
  c->add_option("--layers", a->layers, "Layers of the grown model")->required();
  c->add_option("--method", a->method,
                "interleave (each layer followed by a zeroed copy), duplicate (the stack repeated, copies zeroed): "
                "same function; solar (SOLAR depthwise up-scaling)")
      ->capture_default_str();
  c->add_option("--optimizer", a->optimizer,
                "reset (zero moments, step 0: the schedule restarts) or expand (moments follow their weights)")
      ->capture_default_str();
  c->callback([a, &global] { run_expand(*a, global); });
}

}  // namespace tritter::cli
