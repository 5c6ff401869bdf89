// `tritter export`: a training checkpoint (directory or model.safetensors) → the packed inference model (2-bit
// ternary weights + scales, model/packed_model.h) that `tritter generate` runs.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "commands.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "model/model_text.h"
#include "model/packed_model.h"
#include "train/trainer.h"

namespace tritter::cli {

void add_export_command(CLI::App& app, GlobalOptions& global) {
  auto src = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("export", "Pack a training checkpoint into the inference format");
  c->add_option("checkpoint", *src, "Training directory (its latest checkpoint) or a model .safetensors")->required();
  c->add_option("-o,--out", *out, "Packed model .safetensors")->required();
  auto gguf = std::make_shared<std::string>();
  auto hf = std::make_shared<std::string>();
  c->add_option("--gguf", *gguf, "Also write this GGUF file (TQ2_0 matrices, Q8_0 embeddings) for llama.cpp");
  c->add_option("--hf", *hf, "Also write this Hugging Face model folder (packed BitNet layout)");
  c->callback([src, out, gguf, hf, &global] {
    auto ctx = make_context(global);
    std::filesystem::path path = *src;
    if (std::filesystem::is_directory(path)) path = train::latest_checkpoint(path) / "model.safetensors";
    Checkpoint ck = load_checkpoint(path, &ctx->memory);
    // The run's tokenizer (train --tokenizer) goes into every output.
    const PackOptions po = checkpoint_pack_options(SafeTensorsFile(path), HeadFormat::F32);
    pack_checkpoint(*out, ck.config, ck.params.as<float>(), po);
    if (!global.quiet) {
      std::printf("exported %s -> %s (%s)\n", path.string().c_str(), out->c_str(),
                  format_bytes(static_cast<double>(std::filesystem::file_size(*out))).c_str());
    }
    if (gguf->empty() && hf->empty()) return;
    const PackedModel packed = PackedModel::open(*out);
    const std::optional<ModelVocab> vocab = model_file_vocab(ModelFileKind::TritterPacked, *out, {});
    if (!gguf->empty()) {
      GgufWriteOptions g;
      if (vocab) g.vocab = &vocab->gguf;
      write_gguf_model(*gguf, packed.weights(), g);
      if (!global.quiet) std::printf("exported %s -> %s (GGUF)\n", out->c_str(), gguf->c_str());
    }
    if (!hf->empty()) {
      // The folder is assembled beside its final name and swapped in whole: an existing folder stays as it was
      // until the new one is complete (a kill or a full disk leaves HF.tmp-PID, removed by the next export).
      const std::filesystem::path target = std::filesystem::absolute(*hf);
      const std::filesystem::path staged = target.string() + ".tmp-" + std::to_string(::getpid());
      remove_stale_temporaries(target.parent_path(), target.filename().string() + ".tmp-");
      const OutputLock lock(target, "export --hf");
      std::filesystem::remove_all(staged);
      try {
        write_hf_folder(staged, packed.weights(), HfWriteOptions{});
        if (vocab) write_hf_tokenizer_files(staged, *vocab);
        replace_dir_atomic(staged, target);
      } catch (...) {
        std::error_code ec;
        std::filesystem::remove_all(staged, ec);
        throw;
      }
      if (!global.quiet) std::printf("exported %s -> %s (Hugging Face folder)\n", out->c_str(), hf->c_str());
    }
  });
}

}  // namespace tritter::cli
