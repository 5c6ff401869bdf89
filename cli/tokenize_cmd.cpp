// `tritter tokenize TEXT`: the byte tokenizer's ids for a text (or a file), or the text of a list of ids.
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "inference_commands.h"
#include "io/atomic_file.h"
#include "text/byte_tokenizer.h"

namespace tritter::cli {

namespace {
struct TokenizeOptions {
  std::string text, file, decode;
  bool no_bos = false, eos = false;
};
}  // namespace

void add_tokenize_command(CLI::App& app, GlobalOptions&) {
  auto opts = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Show the byte tokenizer's ids for TEXT (or --file), or --decode ids");
  cmd->add_option("text", opts->text, "Text to encode");
  cmd->add_option("--file", opts->file, "Encode this file's bytes instead");
  cmd->add_option("--decode", opts->decode, "Print the text of these ids (space or comma separated)");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not prepend <bos>");
  cmd->add_flag("--eos", opts->eos, "Append <eos>");
  cmd->callback([opts] {
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
