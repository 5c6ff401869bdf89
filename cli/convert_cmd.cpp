// `tritter convert IN OUT`: any model file Tritter reads (packed, checkpoint, Hugging Face folder, GGUF) into any
// it writes, chosen by OUT: *.gguf → GGUF (TQ2_0 matrices), *.safetensors → Tritter's packed file, anything else →
// a Hugging Face folder. Ternary codes and scales carry over bit for bit; only --embed q8_0/f16 or --dtype
// bf16/f16 round the embeddings and gains.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "core/error.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "model/model_files.h"

namespace tritter::cli {

void add_convert_command(CLI::App& app, GlobalOptions& global) {
  struct Opts {
    std::string in, out, embed = "q8_0", dtype = "f32";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("convert", "Convert a model between Tritter, Hugging Face and GGUF files");
  c->add_option("in", o->in, "Packed model, checkpoint, Hugging Face folder or .gguf")->required();
  c->add_option("out", o->out, "Output: NAME.gguf, NAME.safetensors (Tritter packed) or a folder (Hugging Face)")->required();
  c->add_option("--embed", o->embed, "GGUF embedding type: q8_0, f16 or f32")->check(CLI::IsMember({"q8_0", "f16", "f32"}));
  c->add_option("--dtype", o->dtype, "Hugging Face folder gains/embeddings: f32, bf16 or f16")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  c->callback([o, &global] {
    auto ctx = make_context(global);
    const LoadedModel m = load_any_model(o->in, &ctx->memory);
    const std::filesystem::path out = o->out;
    const char* kind = "hf-folder";
    if (out.extension() == ".gguf") {
      GgufWriteOptions g;
      g.embed = o->embed == "f32" ? GgmlType::F32 : o->embed == "f16" ? GgmlType::F16 : GgmlType::Q8_0;
      g.name = std::filesystem::path(o->in).filename().string();
      write_gguf_model(out, m.model.weights(), g);
      kind = "gguf";
    } else if (out.extension() == ".safetensors") {
      write_packed_weights(out, m.model.weights(), m.add_bos);
      kind = "tritter-packed";
    } else {
      HfWriteOptions h;
      h.dtype = o->dtype == "bf16" ? DType::BF16 : o->dtype == "f16" ? DType::F16 : DType::F32;
      write_hf_folder(out, m.model.weights(), h);
    }
    if (!global.quiet) {
      std::printf("converted %s (%s, loaded in %.2f s) -> %s (%s)\n", o->in.c_str(), model_file_kind_name(m.kind),
                  m.load_seconds, o->out.c_str(), kind);
    }
  });
}

}  // namespace tritter::cli
