// `tritter embed -m MODEL FILES|-`: one L2-normalized vector per input text (a file, stdin as `-`, or with --lines
// every non-empty line), mean-pooled from the final norm's states (docs/embedding-prediction.md), as JSON lines
// ({"input", "index", "embedding"}) or a float32 .npy array (N, D) written atomically.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "tritter.h"

namespace tritter::cli {

namespace {

struct EmbedArgs {
  std::string model, out, format, pooling = "mean", attention = "causal";
  std::vector<std::string> inputs;
  bool lines = false;
  int64_t ctx = 0;
};

// A .npy v1.0 file: the magic, a header dict padded so the data starts at a multiple of 64, then the rows.
std::string npy_bytes(const std::vector<std::vector<float>>& rows, int64_t D) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows.size()) + ", " +
                       std::to_string(D) + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>(len >> 8);
  out += header;
  for (const auto& r : rows) out.append(reinterpret_cast<const char*>(r.data()), r.size() * sizeof(float));
  return out;
}

void run_embed(const EmbedArgs& a, const GlobalOptions& global) {
  const auto ctx = make_context(global);
  std::string format = a.format;
  if (format.empty()) format = a.out.size() > 4 && a.out.ends_with(".npy") ? "npy" : "jsonl";
  if (format != "jsonl" && format != "npy") throw_error("embed: --format '", format, "', expected jsonl or npy");
  if (format == "npy" && a.out.empty()) throw_error("embed: --format npy needs -o FILE.npy");
  std::vector<std::pair<std::string, std::string>> texts;  // (input name, text)
  for (const std::string& in : a.inputs) {
    std::string body;
    if (in == "-") {
      body.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      body = read_file_bytes(in);
    }
    if (!a.lines) {
      if (body.empty()) throw_error("embed: input '", in, "' is empty");
      texts.emplace_back(in, std::move(body));
      continue;
    }
    std::istringstream s(body);
    int64_t n = 0;
    for (std::string line; std::getline(s, line); ++n) {
      if (!line.empty()) texts.emplace_back(in + ":" + std::to_string(n + 1), line);
    }
  }
  if (texts.empty()) throw_error("embed: no input text");
  const Model model = Model::open(a.model);
  Session session(model, {.context = a.ctx, .threads = ctx->threads, .kernels = global.kernels});
  const EmbedOptions eo{.pooling = a.pooling, .attention = a.attention};
  std::vector<std::vector<float>> rows;
  rows.reserve(texts.size());
  for (const auto& [name, text] : texts) rows.push_back(session.embed(text, eo));
  const int64_t D = model.info().hidden_size;
  if (format == "npy") {
    write_file_atomic(a.out, npy_bytes(rows, D));
  } else {
    std::string out;
    for (size_t i = 0; i < rows.size(); ++i) {
      nlohmann::ordered_json j;
      j["input"] = texts[i].first;
      j["index"] = i;
      j["embedding"] = rows[i];
      out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    if (a.out.empty()) {
      std::fwrite(out.data(), 1, out.size(), stdout);
    } else {
      write_file_atomic(a.out, out);
    }
  }
  if (!global.quiet && !a.out.empty()) {
    std::fprintf(stderr, "embed: %zu vectors of %lld floats (%s pooling, %s attention) -> %s\n", rows.size(),
                 static_cast<long long>(D), a.pooling.c_str(), a.attention.c_str(), a.out.c_str());
  }
}

}  // namespace

void add_embed_command(CLI::App& app, GlobalOptions& global) {
  auto a = std::make_shared<EmbedArgs>();
  CLI::App* cmd = app.add_subcommand("embed", "L2-normalized text embeddings (mean-pooled final states)");
  cmd->add_option("-m,--model", a->model, "Model: packed file, checkpoint or run directory")->required();
  cmd->add_option("inputs", a->inputs, "Text files, or - for stdin (one text each)")->required();
  cmd->add_option("--pooling", a->pooling, "mean (every position) or last")->capture_default_str();
  cmd->add_option("--attention", a->attention, "causal or bidirectional (the text as one chunk)")
      ->capture_default_str();
  cmd->add_flag("--lines", a->lines, "Every non-empty line of an input is a text");
  cmd->add_option("-o,--output", a->out, "Write here (atomically) instead of stdout; .npy selects the npy format");
  cmd->add_option("--format", a->format, "jsonl or npy (default: from -o, else jsonl)");
  cmd->add_option("-c,--ctx", a->ctx, "Context positions (0 = the model's, at most 4096)");
  cmd->callback([a, &global] { run_embed(*a, global); });
}

}  // namespace tritter::cli
