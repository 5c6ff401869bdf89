// `tritter tokenize TEXT`: the byte tokenizer's ids for a text (or a file) and each id's piece (`id -> piece`),
// or the text of a list of ids. With -m, <bos> follows the model's add_bos_token, as `generate` does; with
// --tokenizer, a Hugging Face tokenizer.json (or a model folder holding one) instead of the byte tokenizer.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "inference_commands.h"
#include "io/atomic_file.h"
#include "api/model_source.h"
#include "model/model_text.h"
#include "text/byte_tokenizer.h"
#include "text/hf_tokenizer.h"
#include "text/tokenizer.h"

namespace tritter::cli {

namespace {
struct TokenizeOptions {
  std::string text, file, decode, model, tokenizer;
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

// A piece of a BPE vocabulary as the user can read it: the piece in quotes, its bytes escaped.
std::string show_bpe_piece(const Tokenizer& tok, int32_t id) {
  if (id < 0 || id >= tok.vocab_size()) return "<id " + std::to_string(id) + ">";
  std::string out = "'";
  for (const unsigned char c : tok.token_piece(id)) {
    if (c == '\n') out += "\\n";
    else if (c == '\'' || c == '\\') out += std::string("\\") + static_cast<char>(c);
    else if (c < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else out += static_cast<char>(c);
  }
  return out + "'";
}

// -m with a HF folder or GGUF file: the model's own tokenizer, <bos> as its files say.
void run_with_model_text(const TokenizeOptions& opts, const ModelSource& src) {
  const ModelText text = load_model_text(src.kind, src.file, src.kind == ModelFileKind::HfFolder ? src.file : "");
  const Tokenizer& tok = *text.tokenizer;
  if (!opts.decode.empty()) {
    const std::string s = tok.decode(parse_id_list(opts.decode), false);
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::printf("\n");
    return;
  }
  const std::string bytes = opts.file.empty() ? opts.text : read_file_bytes(opts.file);
  const bool bos = opts.bos || (!opts.no_bos && text.add_bos);
  std::vector<int32_t> ids;
  if (bos && tok.special_ids().bos >= 0) ids.push_back(tok.special_ids().bos);
  for (const int32_t id : tok.encode(bytes, false)) ids.push_back(id);
  if (opts.eos && tok.special_ids().eos >= 0) ids.push_back(tok.special_ids().eos);
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
  std::printf("\n");
  if (opts.ids_only) return;
  for (const int32_t id : ids) std::printf("%6d -> %s\n", id, show_bpe_piece(tok, id).c_str());
  std::printf("%zu tokens (%s, from %s)\n", ids.size(), tok.kind().c_str(), text.where.c_str());
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
  cmd->add_option("-m,--model", opts->model,
                  "Follow this model's add_bos_token (as generate does); a HF folder or GGUF file: its own tokenizer");
  cmd->add_flag("--bos", opts->bos, "Prepend <bos> (the default without -m)");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not prepend <bos>")->excludes("--bos");
  cmd->add_flag("--eos", opts->eos, "Append <eos>");
  cmd->add_flag("--ids", opts->ids_only, "Print only the ids");
  cmd->add_option("--tokenizer", opts->tokenizer,
                  "Use this Hugging Face tokenizer.json (or a folder with tokenizer.json) instead of the byte tokenizer");
  cmd->callback([opts] {
    if (!opts->tokenizer.empty()) return run_with_tokenizer(*opts);
    std::optional<bool> model_bos;
    if (!opts->model.empty()) {
      const ModelSource src = resolve_model_source(opts->model);
      model_bos = src.add_bos;
      // A file's own vocabulary (a HF/GGUF one, or `train --tokenizer`'s in a Tritter file); the byte vocabulary,
      // in whatever file, prints as the byte tokenizer below.
      const ModelText text = load_model_text(src.kind, src.file, src.kind == ModelFileKind::HfFolder ? src.file : "");
      if (text.tokenizer->kind() != "byte") return run_with_model_text(*opts, src);
      if (src.foreign()) model_bos = text.add_bos;
    }
    if (!opts->decode.empty()) {
      const std::vector<int32_t> ids = parse_id_list(opts->decode);
      std::fwrite(detokenize(ids, true).data(), 1, detokenize(ids, true).size(), stdout);
      std::printf("\n");
      return;
    }
    const std::string bytes = opts->file.empty() ? opts->text : read_file_bytes(opts->file);
    bool bos = !opts->no_bos;
    if (model_bos && !opts->bos && !opts->no_bos) bos = *model_bos;
    const auto ids = tokenize(bytes, {.bos = bos, .modality = -1, .eos = opts->eos});
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
    std::printf("\n");
    if (opts->ids_only) return;
    for (const int32_t id : ids) std::printf("%6d -> %s\n", id, show_piece(id).c_str());
    std::printf("%zu tokens%s\n", ids.size(), bos ? " (with <bos>)" : " (no <bos>)");
  });
}

}  // namespace tritter::cli
