// `tritter train-tokenizer --input PATH... -o tokenizer.json --vocab-size N`: a BPE tokenizer for code trained with
// SentencePiece on source files, directories and curated JSONL(.zst) shards (read by the curation layer's document
// source), written atomically as a Hugging Face tokenizer.json. Documents of the validation split (the hash rule
// `tritter train` uses) are held out of training and measured at the end: bytes per token with the written file.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "commands.h"
#include "core/error.h"
#include "data/sources.h"
#include "io/atomic_file.h"
#include "text/hf_tokenizer.h"
#include "text/tokenizer.h"
#include "text/tokenizer_train.h"
#include "train/data.h"

namespace tritter::cli {

namespace {

struct TrainTokenizerOptions {
  std::vector<std::string> inputs, languages, eval;
  std::string output, model_output, text_key = "text";
  TokenizerTrainOptions train;
  double val_fraction = 0.05;
  int64_t max_eval_bytes = 64 << 20;
};

const char* kDescription =
    "Train a BPE tokenizer for code (SentencePiece) and write it as a Hugging Face tokenizer.json.\n"
    "Byte fallback: every byte string has ids (valid UTF-8 decodes back byte for byte; invalid bytes read as U+FFFD,\n"
    "as Hugging Face's tokenizers read them). Spaces are kept as they are (no collapsing; runs of spaces and\n"
    "indentation become pieces), tabs and newlines too. Inputs: source files, directories (walked as `tritter\n"
    "curate` walks them: hidden, vendored, generated and non-UTF-8 files are left out) and JSONL / JSONL.zst files\n"
    "such as curate's shards. Documents in the validation split (FNV-1a hash, as `tritter train` splits) are not\n"
    "trained on; at the end their bytes per token is printed. The output is written atomically; --sp-model\n"
    "also writes SentencePiece's own tokenizer.model.";

void print_line(const GlobalOptions& g, const std::string& line) {
  if (!g.quiet) std::fprintf(stderr, "train-tokenizer: %s\n", line.c_str());
}

// The validation-split documents (all of them with --val-fraction 0) of one --eval input.
std::vector<std::string> read_held_out(const std::string& path, const TrainTokenizerOptions& o) {
  data::SourceConfig sc;
  sc.text_key = o.text_key;
  sc.languages = o.languages;
  data::DocumentSource source({path}, sc, {});
  std::vector<std::string> docs;
  int64_t bytes = 0;
  for (data::Document doc; bytes < o.max_eval_bytes && source.next(doc);) {
    if (!doc.scan_only.empty() && doc.scan_only != "unknown-language") continue;
    if (o.val_fraction > 0 && !train::document_is_val(doc.text, o.val_fraction)) continue;
    bytes += static_cast<int64_t>(doc.text.size());
    docs.push_back(std::move(doc.text));
  }
  return docs;
}

void report_held_out(const std::string& what, const std::vector<std::string>& docs, const Tokenizer& tok) {
  if (docs.empty()) return;
  int64_t tokens = 0, bytes = 0;
  for (const auto& d : docs) tokens += static_cast<int64_t>(tok.encode(d, false).size()), bytes += d.size();
  std::printf("%s: %s documents, %s bytes, %s tokens: %.3f bytes per token\n", what.c_str(),
              grouped(static_cast<int64_t>(docs.size())).c_str(), grouped(bytes).c_str(), grouped(tokens).c_str(),
              double(bytes) / double(std::max<int64_t>(tokens, 1)));
}

void run(const TrainTokenizerOptions& o, const GlobalOptions& g) {
  const auto t0 = std::chrono::steady_clock::now();
  // Fail on an unwritable output before the training, not after it.
  { AtomicFile probe(o.output); }
  data::SourceConfig sc;
  sc.text_key = o.text_key;
  sc.languages = o.languages;
  data::DocumentSource source(o.inputs, sc, {});
  std::vector<std::string> held_out;
  int64_t held_bytes = 0, skipped = 0;
  const DocumentFeed feed = [&](std::string& text) {
    data::Document doc;
    while (source.next(doc)) {
      // Training material only (what curate would keep); a plain text file of no known language is text too.
      if (!doc.scan_only.empty() && doc.scan_only != "unknown-language") {
        ++skipped;
        continue;
      }
      if (o.val_fraction > 0 && train::document_is_val(doc.text, o.val_fraction)) {
        if (held_bytes < o.max_eval_bytes) held_bytes += static_cast<int64_t>(doc.text.size()), held_out.push_back(doc.text);
        continue;
      }
      text = std::move(doc.text);
      return true;
    }
    return false;
  };
  TokenizerTrainOptions to = o.train;
  to.threads = g.threads > 0 ? g.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (g.quiet) to.log_level = 2;
  else if (!g.verbose) to.log_level = 1;
  print_line(g, "training " + to.model_type + " with " + std::to_string(to.vocab_size) + " ids on at most " +
                    fmt("%.1f", double(to.max_input_bytes) / (1 << 20)) + " MiB");
  TrainedTokenizer t;
  {
    // SentencePiece reports its own progress only with -v (hundreds of lines): a line every 30 s says it is alive.
    std::mutex m;
    std::condition_variable_any cv;
    std::jthread beat([&](std::stop_token st) {
      std::unique_lock lock(m);
      for (int s = 30;; s += 30) {
        cv.wait_for(lock, st, std::chrono::seconds(30), [] { return false; });  // wakes at once on stop
        if (st.stop_requested()) return;
        print_line(g, "training, " + std::to_string(s) + " s");
      }
    });
    t = train_bpe_tokenizer(to, feed, [&](const std::string& l) { print_line(g, l); });
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  print_line(g, "trained on " + grouped(t.documents) + " documents (" + grouped(t.bytes) + " bytes, " +
                    grouped(t.sentences) + " pieces of text) in " + fmt("%.1f", secs) + " s; " + grouped(skipped) +
                    " files not training material");
  // The file is read back by Tritter's own reader before it is committed: what is written is what loads.
  const auto tok = parse_tokenizer_json(t.tokenizer_json, o.output);
  AtomicFile out(o.output);
  out.write(t.tokenizer_json);
  out.commit();
  if (!o.model_output.empty()) write_file_atomic(o.model_output, t.sentencepiece_model);
  report_held_out("held out", held_out, *tok);
  for (const auto& path : o.eval) report_held_out("held out of " + path, read_held_out(path, o), *tok);
  std::printf("wrote %s (%s ids)\n", o.output.c_str(), grouped(tok->vocab_size()).c_str());
}

}  // namespace

void add_train_tokenizer_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("train-tokenizer", "Train a BPE tokenizer for code and write it as tokenizer.json");
  cmd->description(kDescription);
  auto o = std::make_shared<TrainTokenizerOptions>();
  cmd->add_option("-i,--input", o->inputs, "Source files, directories, .jsonl / .jsonl.zst files (curate's shards)")
      ->required();
  cmd->add_option("-o,--output", o->output, "The tokenizer.json to write")->required();
  cmd->add_option("--vocab-size", o->train.vocab_size, "Ids in all: 3 specials + 256 byte pieces + learned pieces")
      ->capture_default_str();
  cmd->add_option("--model-type", o->train.model_type, "bpe (the model Tritter's tokenizer.json reader runs)")
      ->capture_default_str();
  cmd->add_option("--max-input-bytes", o->train.max_input_bytes, "Read at most this many bytes of training text")
      ->capture_default_str();
  cmd->add_option("--language", o->languages, "Keep only these languages (python, rust, c, ...; default: every one)");
  cmd->add_option("--text-key", o->text_key, "JSONL field holding the text")->capture_default_str();
  cmd->add_option("--val-fraction", o->val_fraction,
                  "Share of documents held out of training (by hash, as `tritter train`) and measured; 0: none")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--eval", o->eval,
                  "Also measure bytes per token on the validation split of these inputs (never trained on)");
  cmd->add_option("--sp-model", o->model_output, "Also write SentencePiece's own model (tokenizer.model) here");
  cmd->add_option("--character-coverage", o->train.character_coverage,
                  "Share of characters the vocabulary covers; the rarest go to byte fallback")
      ->check(CLI::Range(0.5, 1.0))->capture_default_str();
  cmd->add_option("--max-piece-length", o->train.max_piece_length, "Longest piece, in characters")->capture_default_str();
  cmd->add_option("--max-sentence-bytes", o->train.max_sentence_bytes,
                  "Documents reach the trainer cut at line ends into pieces of at most this many bytes")
      ->capture_default_str();
  cmd->add_flag("!--no-split-digits", o->train.split_digits, "Let pieces hold several digits (default: one per digit)");
  cmd->add_flag("!--no-split-by-whitespace", o->train.split_by_whitespace,
                "Let pieces span spaces (\"\\n    \", \" = \"); default: a piece starts at a run of spaces");
  cmd->add_flag("--split-by-unicode-script", o->train.split_by_unicode_script,
                "Keep letters and punctuation apart (no \"self.\")");
  cmd->add_flag("--split-by-number", o->train.split_by_number, "Keep digits and letters apart (no \"utf8\")");
  cmd->add_flag("--add-dummy-prefix", o->train.add_dummy_prefix,
                "Put a space before every text, as Llama 2 does (prose); code starts lines without one");
  cmd->callback([o, &global] { run(*o, global); });
}

}  // namespace tritter::cli
