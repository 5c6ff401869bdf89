// `tritter convert IN OUT`: any model file Tritter reads (packed, checkpoint, Hugging Face folder, GGUF) into any
// it writes, chosen by OUT: *.gguf → GGUF (TQ2_0 matrices), *.safetensors → Tritter's packed file, anything else →
// a Hugging Face folder. Ternary codes and scales carry over bit for bit; only --embed q8_0/f16 or --dtype
// bf16/f16 round the embeddings and gains. A HF folder's or GGUF file's BPE vocabulary and chat template go into the
// GGUF's tokenizer.ggml.* / the folder's tokenizer files.
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
    std::string in, out, embed = "q8_0", dtype = "f32", head = "auto";
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
                  "from an int8 packed file, else f32), i8 or f32. GGUF and HF outputs write the head's values in "
                  "their own type")
      ->check(CLI::IsMember({"auto", "f32", "i8"}))
      ->capture_default_str();
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
    // A foreign file's own BPE vocabulary and chat template travel with the weights.
    std::optional<GgufVocab> vocab;
    std::string chat_template;
    if (m.kind == ModelFileKind::HfFolder && std::filesystem::exists(m.folder / "tokenizer.json")) {
      const ModelText text = load_model_text(m.kind, o->in, m.folder);
      if (text.tokenizer->kind() != "byte") {
        const std::string tc = (m.folder / "tokenizer_config.json").string();
        const std::optional<TokenizerConfig> config =
            std::filesystem::exists(tc) ? std::optional<TokenizerConfig>(load_tokenizer_config(tc)) : std::nullopt;
        vocab = gguf_vocab_from_tokenizer_json(read_file_bytes((m.folder / "tokenizer.json").string()),
                                               (m.folder / "tokenizer.json").string(), config ? &*config : nullptr);
        chat_template = text.chat_template;
      }
    } else if (m.kind == ModelFileKind::Gguf) {
      const GgufFile f(o->in);
      GgufVocab v = gguf_vocab(f);
      if (!gguf_vocab_is_byte_tokenizer(v)) {
        vocab = std::move(v);
        if (f.find_value("tokenizer.chat_template")) chat_template = f.get_string("tokenizer.chat_template");
      }
    }
    const char* kind = "hf-folder";
    if (out.extension() == ".gguf") {
      GgufWriteOptions g;
      g.embed = o->embed == "f32" ? GgmlType::F32 : o->embed == "f16" ? GgmlType::F16 : GgmlType::Q8_0;
      g.name = std::filesystem::path(o->in).filename().string();
      if (vocab) g.vocab = &*vocab;
      g.chat_template = chat_template;
      write_gguf_model(out, m.model.weights(), g);
      kind = "gguf";
    } else if (out.extension() == ".safetensors") {
      write_packed_weights(out, m.model.weights(), m.add_bos);
      kind = "tritter-packed";
      if (vocab) {
        std::fprintf(stderr, "warning: %s carries a %s BPE vocabulary; a Tritter packed file holds no tokenizer and is "
                     "read with the byte tokenizer (convert to .gguf or a folder to keep it)\n", o->in.c_str(), vocab->model.c_str());
      }
    } else {
      HfWriteOptions h;
      h.dtype = o->dtype == "bf16" ? DType::BF16 : o->dtype == "f16" ? DType::F16 : DType::F32;
      write_hf_folder(out, m.model.weights(), h);
      if (vocab) {  // the source's tokenizer files instead of the byte tokenizer's
        if (m.kind == ModelFileKind::HfFolder) {
          for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
            if (std::filesystem::exists(m.folder / name)) {
              write_file_atomic(out / name, read_file_bytes((m.folder / name).string()));
            }
          }
        } else {
          write_file_atomic(out / "tokenizer.json", gguf_vocab_tokenizer_json(*vocab));
          nlohmann::json tc{{"add_bos_token", vocab->has_add_bos ? vocab->add_bos : true}};
          if (vocab->bos >= 0) tc["bos_token"] = vocab->tokens[static_cast<size_t>(vocab->bos)];
          if (vocab->eos >= 0) tc["eos_token"] = vocab->tokens[static_cast<size_t>(vocab->eos)];
          if (!chat_template.empty()) tc["chat_template"] = chat_template;
          write_file_atomic(out / "tokenizer_config.json", tc.dump(2) + "\n");
        }
      }
    }
    if (!global.quiet) {
      std::printf("converted %s (%s, loaded in %.2f s) -> %s (%s)\n", o->in.c_str(), model_file_kind_name(m.kind),
                  m.load_seconds, o->out.c_str(), kind);
    }
  });
}

}  // namespace tritter::cli
