// `tritter pack IN OUT [--head f32|i8|i4] [--ternary-layout t16|t20]`: a full-precision checkpoint → the packed inference file. The input is
// mapped and checked against its config's tensor table first; tensors are then packed one at a time.
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"
#include "inference_commands.h"
#include "model/checkpoint.h"
#include "model/packed_model.h"

namespace tritter::cli {

namespace {
struct PackCmdOptions {
  std::string in, out, head = "f32", layout = "t16";
};
}  // namespace

void add_pack_command(CLI::App& app, GlobalOptions& global) {
  auto opts = std::make_shared<PackCmdOptions>();
  auto* cmd = app.add_subcommand("pack", "Pack a full-precision checkpoint into the ternary inference file");
  cmd->add_option("input", opts->in, "Checkpoint (tritter-v1 safetensors)")->required();
  cmd->add_option("output", opts->out, "Packed file to write")->required();
  cmd->add_option("--head", opts->head, "LM head: f32, i8 (per-row absmax) or i4 (4-bit groups of 32 with a byte multiplier of a per-row "
                  "step: about half of i8's bytes)")->capture_default_str();
  add_stored_layout_option(cmd, &opts->layout);
  cmd->callback([opts, &global] {
    namespace fs = std::filesystem;
    if (fs::exists(opts->out) && fs::equivalent(opts->in, opts->out)) {
      throw_error("pack: output '", opts->out, "' is the input");
    }
    if (fs::is_directory(opts->out)) throw_error("pack: output '", opts->out, "': found a directory, expected a file");
    SafeTensorsFile in(opts->in);
    // The checkpoint's own tokenizer (train --tokenizer) goes into the packed file with its add_bos_token.
    PackOptions po = checkpoint_pack_options(in, head_format_from_name(opts->head));
    po.layout = stored_layout_from_name(opts->layout);
    const TritterConfig c = config_from_metadata(in, kCheckpointFormat);
    check_checkpoint_tensors(in, c);
    // One writer per output at a time; what a killed pack left beside it (OUT.tmp-PID-N) is removed.
    const OutputLock lock(opts->out, "pack");
    const fs::path parent = fs::absolute(opts->out).parent_path();
    remove_stale_temporaries(parent, fs::path(opts->out).filename().string() + ".tmp-");
    write_packed_model(opts->out, c, [&](float* out, const TensorInfo& info, size_t) {
      checkpoint_tensor_values(in, info, out);  // F32, BF16 or F16, as check_checkpoint_tensors accepted
    }, po);
    const PackedModel m = PackedModel::open(opts->out);  // read back: the file we wrote validates
    if (!global.quiet) {
      std::printf("packed %s -> %s (%.1f MB, %.1f MB read per token)\n", opts->in.c_str(), opts->out.c_str(),
                  m.file()->file_bytes() / 1e6, m.weights().bytes_per_token / 1e6);
    }
  });
}

}  // namespace tritter::cli
