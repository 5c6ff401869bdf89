// `tritter convert IN OUT`: any model file Tritter reads (packed, checkpoint, Hugging Face folder, GGUF) into any
// it writes, chosen by OUT: *.gguf → GGUF (TQ2_0 matrices), *.safetensors → Tritter's packed file, anything else →
// a Hugging Face folder. Ternary codes and scales carry over bit for bit; only --embed q8_0/f16 or --dtype
// bf16/f16 round the embeddings and gains. A file's own BPE vocabulary goes into the GGUF's tokenizer.ggml.*, the
// folder's tokenizer files or the packed file's tokenizer, with its chat template.
#include <cstdio>
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "model/model_files.h"
#include "model/model_text.h"
#include "text/gguf_vocab.h"
#include "text/hf_tokenizer.h"

namespace tritter::cli {

void add_convert_command(CLI::App& app, GlobalOptions& global) {
  struct Opts {
    std::string in, out, embed = "q8_0", dtype = "f32", head = "auto", layout = "t16";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("convert", "Convert a model between Tritter, Hugging Face and GGUF files");
  c->add_option("in", o->in, "Packed model, checkpoint, Hugging Face folder or .gguf")->required();
  c->add_option("out", o->out, "Output: NAME.gguf, NAME.safetensors (Tritter packed) or a folder (Hugging Face)")->required();
  c->add_option("--embed", o->embed, "GGUF embedding type: q8_0, f16 or f32")->check(CLI::IsMember({"q8_0", "f16", "f32"}));
  c->add_option("--dtype", o->dtype, "Hugging Face folder gains/embeddings: f32, bf16 or f16")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  c->add_option("--head", o->head,
                  "LM head of a packed output: auto (as loaded: int8 from a GGUF that stores it in 8 bits or fewer or "
                  "from an int8 packed file, else f32), i8, i4 (4-bit groups of 32) or f32. GGUF and HF outputs write "
                  "the head's values in their own type")
      ->check(CLI::IsMember({"auto", "f32", "i8", "i4"}))
      ->capture_default_str();
  add_stored_layout_option(c, &o->layout);
  c->callback([o, &global] {
    auto ctx = make_context(global);
    const std::filesystem::path out = o->out;
    HeadChoice head = head_choice_from_name(o->head);
    // Into GGUF or HF the head is written in the output's own type: read a GGUF's as f32 so that Q8_0 → f32 → Q8_0
    // stays exact instead of passing through int8 rows.
    if (head == HeadChoice::Auto && out.extension() != ".safetensors" && detect_model_file(o->in) == ModelFileKind::Gguf) {
      head = HeadChoice::F32;
    }
    const LoadedModel m = load_any_model(o->in, &ctx->memory, LoadOptions{head});
    // The file's own vocabulary and chat template travel with the weights (the byte tokenizer is every writer's
    // default).
    const std::optional<ModelVocab> vocab = model_file_vocab(m.kind, o->in, m.folder);
    const char* kind = "hf-folder";
    if (out.extension() == ".gguf") {
      GgufWriteOptions g;
      g.embed = o->embed == "f32" ? GgmlType::F32 : o->embed == "f16" ? GgmlType::F16 : GgmlType::Q8_0;
      g.name = std::filesystem::path(o->in).filename().string();
      if (vocab) g.vocab = &vocab->gguf, g.chat_template = vocab->chat_template;
      write_gguf_model(out, m.model.weights(), g);
      kind = "gguf";
    } else if (out.extension() == ".safetensors") {
      write_packed_weights(out, m.model.weights(), vocab ? vocab->add_bos : m.add_bos, vocab ? vocab->tokenizer_json : "",
                           vocab ? vocab->chat_template : "", stored_layout_from_name(o->layout));
      kind = "tritter-packed";
    } else {
      HfWriteOptions h;
      h.dtype = o->dtype == "bf16" ? DType::BF16 : o->dtype == "f16" ? DType::F16 : DType::F32;
      write_hf_folder(out, m.model.weights(), h);
      if (vocab) write_hf_tokenizer_files(out, *vocab);  // over the byte tokenizer's files
    }
    if (!global.quiet) {
      std::printf("converted %s (%s, loaded in %.2f s) -> %s (%s)\n", o->in.c_str(), model_file_kind_name(m.kind),
                  m.load_seconds, o->out.c_str(), kind);
    }
  });
}

}  // namespace tritter::cli
