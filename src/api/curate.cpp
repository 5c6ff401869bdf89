// The façade's curate() (tritter.h) over data::curate: its own object file, so that a program that never calls
// it links without the curation library (an installed prefix does not ship tritter_data).
#include <nlohmann/json.hpp>

#include "core/context.h"
#include "data/pipeline.h"
#include "tritter.h"

namespace tritter {

std::string curate(const CurateParams& params) {
  if (params.inputs.empty()) throw_error("curate: inputs: none given, expected directories or files");
  if (params.out.empty()) throw_error("curate: out: none given, expected an output directory");
  if (!params.config.empty() && !params.config_json.empty()) {
    throw_error("curate: config: found both a file ('", params.config, "') and JSON text, expected at most one");
  }
  data::CurateConfig config;
  if (!params.config.empty()) config = data::load_curate_config(params.config);
  if (!params.config_json.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(params.config_json);
    } catch (const nlohmann::json::exception& e) {
      throw_error("curate: config: not valid JSON: ", e.what());
    }
    if (!j.is_object()) throw_error("curate: config: found JSON ", j.type_name(), ", expected an object");
    config = data::curate_config_from_json(j);
  }
  if (params.extract_triton) config.extract_triton = true;
  if (!params.text_key.empty()) config.source.text_key = params.text_key;
  if (!params.near_dedup) config.near_dedup = false;
  Context ctx;
  ctx.threads = params.threads > 0 ? params.threads : ctx.cpu.logical_cores;
  return data::curate(params.inputs, params.out, config, ctx).to_json().dump();
}

}  // namespace tritter
