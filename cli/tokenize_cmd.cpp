// `tritter tokenize TEXT`: the byte tokenizer's ids for a text (or a file), or the text of a list of ids; with
// --tokenizer, a Hugging Face tokenizer.json (or a model folder holding one) instead.
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "inference_commands.h"
#include "io/atomic_file.h"
#include "text/byte_tokenizer.h"
#include "text/hf_tokenizer.h"
#include "text/tokenizer.h"

namespace tritter::cli {

namespace {
struct TokenizeOptions {
  std::string text, file, decode, tokenizer;
  bool no_bos = false, eos = false;
};
std::vector<int32_t> parse_id_list(std::string list) {
  for (char& ch : list) ch = ch == ',' ? ' ' : ch;
  std::istringstream in(list);
  std::vector<int32_t> ids;
  for (std::string item; in >> item;) {
    try {
      size_t used = 0;
      ids.push_back(std::stoi(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw_error("--decode: '", item, "' is not an integer id");
    }
  }
  return ids;
}

// --tokenizer: tokenizer.json's ids (its post-processor's specials unless --no-bos), or the text of --decode ids.
void run_with_tokenizer(const TokenizeOptions& opts) {
  const bool dir = std::filesystem::is_directory(opts.tokenizer);
  const auto tok = dir ? load_hf_tokenizer_dir(opts.tokenizer) : load_tokenizer_json(opts.tokenizer);
  if (!opts.decode.empty()) {
    const std::string text = tok->decode(parse_id_list(opts.decode), false);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::printf("\n");
    return;
  }
  const std::string bytes = opts.file.empty() ? opts.text : read_file_bytes(opts.file);
  auto ids = tok->encode(bytes, !opts.no_bos);
  if (opts.eos && tok->special_ids().eos >= 0) ids.push_back(tok->special_ids().eos);
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
  std::printf("\n%zu tokens\n", ids.size());
}

}  // namespace

void add_tokenize_command(CLI::App& app, GlobalOptions&) {
  auto opts = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Show the byte tokenizer's ids for TEXT (or --file), or --decode ids");
  cmd->add_option("text", opts->text, "Text to encode");
  cmd->add_option("--file", opts->file, "Encode this file's bytes instead");
  cmd->add_option("--decode", opts->decode, "Print the text of these ids (space or comma separated)");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not prepend <bos>");
  cmd->add_flag("--eos", opts->eos, "Append <eos>");
  cmd->add_option("--tokenizer", opts->tokenizer,
                  "Use this Hugging Face tokenizer.json (or a folder with tokenizer.json) instead of the byte tokenizer");
  cmd->callback([opts] {
    if (!opts->tokenizer.empty()) return run_with_tokenizer(*opts);
    if (!opts->decode.empty()) {
      std::string list = opts->decode;
      for (char& ch : list) ch = ch == ',' ? ' ' : ch;
      std::istringstream in(list);
      std::vector<int32_t> ids;
      for (std::string item; in >> item;) {
        try {
          size_t used = 0;
          ids.push_back(std::stoi(item, &used));
          if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::exception&) {
          throw_error("--decode: '", item, "' is not an integer id");
        }
      }
      std::fwrite(detokenize(ids, true).data(), 1, detokenize(ids, true).size(), stdout);
      std::printf("\n");
      return;
    }
    const std::string bytes = opts->file.empty() ? opts->text : read_file_bytes(opts->file);
    const auto ids = tokenize(bytes, {.bos = !opts->no_bos, .modality = -1, .eos = opts->eos});
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
    std::printf("\n%zu tokens\n", ids.size());
  });
}

}  // namespace tritter::cli
