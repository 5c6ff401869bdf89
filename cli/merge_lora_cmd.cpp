// `tritter merge-lora --base MODEL --lora DIR[:weight]... --out CKPT`: writes a full-precision checkpoint
// (tritter-v1) whose BitLinear weights are W̃ + Σ weight·(α/r)·B A and reports the error that re-packing it to
// ternary would add. Parses the flags, calls merge_lora (model/lora_merge.h) and prints its report.
#include <cstdio>
#include <vector>

#include "api/model_source.h"
#include "commands.h"
#include "model/checkpoint.h"
#include "model/lora_merge.h"
#include "model/peft.h"

namespace tritter::cli {

namespace {

struct MergeArgs {
  std::string base, out;
  std::vector<std::string> lora;
};

void run_merge(const MergeArgs& a, const GlobalOptions& global) {
  auto ctx = make_context(global);
  std::vector<std::pair<std::filesystem::path, float>> adapters;
  for (const auto& spec : a.lora) adapters.push_back(parse_lora_spec(spec));  // as `generate --lora` parses it
  const ModelSource src = resolve_model_source(a.base);
  require_tritter_file(src, "merge-lora", "the merge writes a Tritter checkpoint from Tritter's base tensors");
  const LoraMergeReport r = merge_lora(src.file.string(), adapters, a.out, &ctx->memory);
  std::printf("merged %lld adapter(s) into %lld BitLinear matrices: %s (full precision, %s)\n",
              static_cast<long long>(r.adapters), static_cast<long long>(r.merged), a.out.c_str(), kCheckpointFormat);
  if (r.merged > 0) {
    std::printf("re-packing to ternary would add rel-L2 error %.4f to the merged weights (mean over matrices; worst "
                "%.4f in %s) and lose rel-L2 %.3f of the LoRA update itself: merging into a ternary base is lossy; "
                "keep adapters separate unless the merged model is trained further\n",
                r.requant_rel_mean, r.requant_rel_worst, r.worst_name.c_str(), r.update_lost_mean);
  }
}

}  // namespace

void add_merge_lora_command(CLI::App& app, GlobalOptions& global) {
  auto m = std::make_shared<MergeArgs>();
  CLI::App* mc = app.add_subcommand("merge-lora", "Merge LoRA adapters into a full-precision checkpoint (lossy if re-packed)");
  mc->add_option("--base", m->base, "Base model: packed file, checkpoint or training run directory")->required();
  mc->add_option("--lora", m->lora, "Adapter directory, optionally DIR:weight (repeatable)")->required();
  mc->add_option("--out", m->out, "Merged checkpoint (.safetensors, tritter-v1)")->required();
  mc->callback([m, &global] { run_merge(*m, global); });
}

}  // namespace tritter::cli
