// `tritter init --size S --seed N [--vocab V] [--packed] -o FILE`: a random model as a
// full-precision checkpoint, or packed for inference, written one tensor at a time.
#include <cstdio>

#include "core/error.h"
#include "inference_commands.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {
struct InitOptions {
  std::string size = "test", out, head = "f32", layout = "t16";
  uint64_t seed = 0;
  int64_t vocab = 0;
  bool packed = false;
};
}  // namespace

void add_init_command(CLI::App& app, GlobalOptions& global) {
  auto opts = std::make_shared<InitOptions>();
  auto* cmd = app.add_subcommand("init", "Write a randomly initialized model (checkpoint, or --packed for inference)");
  cmd->add_option("--size", opts->size, "Preset: test, tiny, small, 700M-shape, 2B-shape, 7B, ...")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  cmd->add_option("--vocab", opts->vocab, "Override vocab_size (e.g. 128256)");
  cmd->add_flag("--packed", opts->packed, "Write the packed inference file instead of an F32 checkpoint");
  cmd->add_option("--head", opts->head, "Packed LM head: f32, i8 or i4")->capture_default_str();
  add_stored_layout_option(cmd, &opts->layout);
  cmd->add_option("-o,--output", opts->out, "Output file")->required();
  cmd->callback([opts, &global] {
    auto ctx = make_context(global);
    ConfigOverrides o;
    o.model_size = opts->size;
    if (opts->vocab) o.vocab_size = opts->vocab;
    const TritterConfig c = resolve_config(o);
    auto produce = [&](float* out, const TensorInfo& info, size_t i) { init_tensor(out, c, info, i, opts->seed); };
    if (opts->packed) {
      PackOptions po{head_format_from_name(opts->head)};
      po.layout = stored_layout_from_name(opts->layout);
      write_packed_model(opts->out, c, produce, po);
    } else {
      save_checkpoint_streaming(opts->out, c, produce);
    }
    if (!global.quiet) {
      std::printf("wrote %s: %s model (%lld parameters)%s\n", opts->out.c_str(), opts->size.c_str(),
                  static_cast<long long>(parameter_count(c)), opts->packed ? ", packed" : "");
    }
  });
}

}  // namespace tritter::cli
