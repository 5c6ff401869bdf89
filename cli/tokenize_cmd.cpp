// `tritter tokenize TEXT`: the byte tokenizer's ids for a text (or a file) and each id's piece (`id -> piece`),
// or the text of a list of ids. With -m, <bos> follows the model's add_bos_token, as `generate` does.
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "inference_commands.h"
#include "io/atomic_file.h"
#include "text/byte_tokenizer.h"
#include "api/model_source.h"

namespace tritter::cli {

namespace {
struct TokenizeOptions {
  std::string text, file, decode, model;
  bool bos = false, no_bos = false, eos = false, ids_only = false;
};

// A piece as the user can read it: printable ASCII in quotes, escapes for whitespace and other bytes.
std::string show_piece(int32_t id) {
  const std::string bytes = token_bytes(id);
  if (bytes.empty()) return token_name(id);
  std::string out = "'";
  for (const unsigned char c : bytes) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\'' || c == '\\') out += std::string("\\") + static_cast<char>(c);
    else if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
    else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out + "'";
}
}  // namespace

void add_tokenize_command(CLI::App& app, GlobalOptions&) {
  auto opts = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Show the byte tokenizer's ids for TEXT (or --file), or --decode ids");
  cmd->add_option("text", opts->text, "Text to encode");
  cmd->add_option("--file", opts->file, "Encode this file's bytes instead");
  cmd->add_option("--decode", opts->decode, "Print the text of these ids (space or comma separated)");
  cmd->add_option("-m,--model", opts->model, "Follow this model's add_bos_token (as generate does)");
  cmd->add_flag("--bos", opts->bos, "Prepend <bos> (the default without -m)");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not prepend <bos>")->excludes("--bos");
  cmd->add_flag("--eos", opts->eos, "Append <eos>");
  cmd->add_flag("--ids", opts->ids_only, "Print only the ids");
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
    bool bos = !opts->no_bos;
    if (!opts->model.empty() && !opts->bos && !opts->no_bos) bos = resolve_model_source(opts->model).add_bos;
    const auto ids = tokenize(bytes, {.bos = bos, .modality = -1, .eos = opts->eos});
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
    std::printf("\n");
    if (opts->ids_only) return;
    for (const int32_t id : ids) std::printf("%6d -> %s\n", id, show_piece(id).c_str());
    std::printf("%zu tokens%s\n", ids.size(), bos ? " (with <bos>)" : " (no <bos>)");
  });
}

}  // namespace tritter::cli
