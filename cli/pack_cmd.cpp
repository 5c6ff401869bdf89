// `tritter pack IN OUT [--head f32|i8]`: a full-precision checkpoint → the packed inference file. The input is
// mapped and checked against its config's tensor table first; tensors are then packed one at a time.
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "inference_commands.h"
#include "model/checkpoint.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {
struct PackCmdOptions {
  std::string in, out, head = "f32";
};
}  // namespace

void add_pack_command(CLI::App& app, GlobalOptions& global) {
  auto opts = std::make_shared<PackCmdOptions>();
  auto* cmd = app.add_subcommand("pack", "Pack a full-precision checkpoint into the ternary inference file");
  cmd->add_option("input", opts->in, "Checkpoint (tritter-v1 safetensors)")->required();
  cmd->add_option("output", opts->out, "Packed file to write")->required();
  cmd->add_option("--head", opts->head, "LM head: f32 or i8 (per-row absmax)")->capture_default_str();
  cmd->callback([opts, &global] {
    if (std::filesystem::exists(opts->out) && std::filesystem::equivalent(opts->in, opts->out)) {
      throw_error("pack: output '", opts->out, "' is the input");
    }
    const PackOptions po{head_format_from_name(opts->head)};
    SafeTensorsFile in(opts->in);
    const TritterConfig c = config_from_metadata(in, kCheckpointFormat);
    check_checkpoint_tensors(in, c);
    write_packed_model(opts->out, c, [&](float* out, const TensorInfo& info, size_t) {
      std::memcpy(out, in.get(info.name).data, info.numel() * sizeof(float));
    }, po);
    const PackedModel m = PackedModel::open(opts->out);  // read back: the file we wrote validates
    if (!global.quiet) {
      std::printf("packed %s -> %s (%.1f MB, %.1f MB read per token)\n", opts->in.c_str(), opts->out.c_str(),
                  m.file()->file_bytes() / 1e6, m.weights().bytes_per_token / 1e6);
    }
  });
}

}  // namespace tritter::cli
