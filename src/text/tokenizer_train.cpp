// SentencePiece BPE training over streamed documents, and the trained model written as tokenizer.json. The trainer
// sees "sentences": pieces of a document cut at line ends, each keeping its '\n' (SentencePiece's file reader would
// split at them and lose every piece that holds a newline, which code is full of). Identity normalization: tabs,
// newlines and runs of spaces reach the trainer as they are.
#include "text/tokenizer_train.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"

namespace tritter {

namespace {

using json = nlohmann::json;

// The documents cut into sentences of at most max_bytes, at a line end where one is in range (else mid-line), each
// piece ending at a character boundary so no UTF-8 sequence is split.
class Sentences : public sentencepiece::SentenceIterator {
 public:
  Sentences(const DocumentFeed& next, const TokenizerTrainOptions& o, const TrainLog& log)
      : next_(next), o_(o), log_(log) {
    Next();
  }
  bool done() const override { return done_; }
  void Next() override {
    while (pos_ >= doc_.size()) {
      if (read_ >= o_.max_input_bytes || !next_(doc_)) {
        done_ = true;
        return;
      }
      if (doc_.empty()) continue;
      if (static_cast<int64_t>(doc_.size()) > o_.max_input_bytes - read_) doc_.resize(o_.max_input_bytes - read_);
      read_ += static_cast<int64_t>(doc_.size());
      ++documents_;
      pos_ = 0;
      if (log_ && documents_ % 1000 == 0) {
        log_("read " + std::to_string(documents_) + " documents, " + std::to_string(read_ >> 20) + " MiB");
      }
    }
    size_t end = std::min(doc_.size(), pos_ + o_.max_sentence_bytes);
    if (end < doc_.size()) {
      const size_t nl = doc_.rfind('\n', end - 1);
      if (nl != std::string::npos && nl >= pos_) {
        end = nl + 1;
      } else {
        while (end > pos_ + 1 && (static_cast<uint8_t>(doc_[end]) & 0xC0) == 0x80) --end;
      }
    }
    value_.assign(doc_, pos_, end - pos_);
    pos_ = end;
    ++sentences_;
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }
  int64_t documents() const { return documents_; }
  int64_t sentences() const { return sentences_; }
  int64_t bytes() const { return read_; }

 private:
  const DocumentFeed& next_;
  const TokenizerTrainOptions& o_;
  const TrainLog& log_;
  std::string doc_, value_;
  size_t pos_ = 0;
  int64_t read_ = 0, documents_ = 0, sentences_ = 0;
  bool done_ = false;
};

std::string flag(bool b) { return b ? "true" : "false"; }

std::unordered_map<std::string, std::string> trainer_args(const TokenizerTrainOptions& o) {
  std::unordered_map<std::string, std::string> a = {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", flag(o.add_dummy_prefix)},
      {"allow_whitespace_only_pieces", "true"},
      {"split_by_whitespace", flag(o.split_by_whitespace)},
      {"split_by_unicode_script", flag(o.split_by_unicode_script)},
      {"split_by_number", flag(o.split_by_number)},
      {"split_digits", flag(o.split_digits)},
      {"byte_fallback", "true"},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"max_sentence_length", std::to_string(o.max_sentence_bytes + 16)},
      {"max_sentencepiece_length", std::to_string(o.max_piece_length)},
      {"num_threads", std::to_string(std::max(1, o.threads))},
      {"minloglevel", std::to_string(o.log_level)},
      {"unk_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"pad_id", "-1"},
      {"train_extremely_large_corpus", "false"},
  };
  return a;
}

void check_options(const TokenizerTrainOptions& o) {
  if (o.model_type != "bpe") {
    throw_error("train-tokenizer: --model-type: found '", o.model_type,
                "', expected bpe (the model Tritter's tokenizer.json reader runs)");
  }
  // 3 specials + 256 byte pieces + at least the characters of the text: below this SentencePiece cannot start.
  if (o.vocab_size < 3 + 256 + 1) {
    throw_error("train-tokenizer: --vocab-size: found ", o.vocab_size,
                ", expected at least 260 (3 specials + 256 byte pieces + the text's characters and merges)");
  }
  if (o.vocab_size > (1 << 24)) throw_error("train-tokenizer: --vocab-size: found ", o.vocab_size, ", expected at most 16777216");
  if (o.max_input_bytes <= 0) throw_error("train-tokenizer: --max-input-bytes: found ", o.max_input_bytes, ", expected > 0");
}

// SentencePiece's message for the commonest failure, in the command's words.
std::string explain(const std::string& message) {
  if (message.find("Vocabulary size is smaller than required_chars") != std::string::npos) {
    return message + " (the vocabulary must hold 3 specials, 256 byte pieces and every character kept by "
                     "--character-coverage; raise --vocab-size)";
  }
  if (message.find("Vocabulary size too high") != std::string::npos) {
    return message + " (the input is too small for this many pieces; give more text or a smaller --vocab-size)";
  }
  return message;
}

}  // namespace

TrainedTokenizer train_bpe_tokenizer(const TokenizerTrainOptions& options, const DocumentFeed& next,
                                     const TrainLog& log) {
  check_options(options);
  Sentences sentences(next, options, log);
  if (sentences.done()) throw_error("train-tokenizer: no text to train on (the inputs hold no non-empty document)");
  TrainedTokenizer out;
  const auto status = sentencepiece::SentencePieceTrainer::Train(trainer_args(options), &sentences,
                                                                 &out.sentencepiece_model);
  out.documents = sentences.documents();
  out.sentences = sentences.sentences();
  out.bytes = sentences.bytes();
  if (!status.ok()) throw_error("train-tokenizer: SentencePiece: ", explain(status.ToString()));
  out.tokenizer_json = sentencepiece_to_tokenizer_json(out.sentencepiece_model, options.add_dummy_prefix);
  return out;
}

std::string sentencepiece_to_tokenizer_json(std::string_view serialized_model, bool add_dummy_prefix) {
  sentencepiece::SentencePieceProcessor sp;
  if (const auto st = sp.LoadFromSerializedProto(serialized_model); !st.ok()) {
    throw_error("tokenizer.model: ", st.ToString());
  }
  const int n = sp.GetPieceSize();
  std::unordered_map<std::string, int> id_of;
  id_of.reserve(static_cast<size_t>(n) * 2);
  for (int id = 0; id < n; ++id) id_of.emplace(sp.IdToPiece(id), id);
  // A learned piece (not a special or byte one) can be formed by merging two pieces.
  const auto mergeable = [&](int id) { return !sp.IsControl(id) && !sp.IsUnknown(id) && !sp.IsByte(id) && !sp.IsUnused(id); };
  // Every split of every learned piece into two vocabulary pieces is a merge, ranked by the merged piece's score
  // (higher first; SentencePiece's BPE encoder merges the best-scoring adjacent pair, leftmost among equals), ties
  // by the merged piece's id.
  struct M {
    float score;
    int id, left, right;
  };
  std::vector<M> merges;
  for (int id = 0; id < n; ++id) {
    if (!mergeable(id)) continue;
    const std::string& p = sp.IdToPiece(id);
    for (size_t cut = 1; cut < p.size(); ++cut) {
      if ((static_cast<uint8_t>(p[cut]) & 0xC0) == 0x80) continue;
      const auto l = id_of.find(p.substr(0, cut)), r = id_of.find(p.substr(cut));
      if (l == id_of.end() || r == id_of.end() || !mergeable(l->second) || !mergeable(r->second)) continue;
      merges.push_back({sp.GetScore(id), id, l->second, r->second});
    }
  }
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });

  // Written by hand: the vocabulary and merges in id / rank order (a json object would sort them by key).
  std::string vocab = "{", merge_list = "[";
  for (int id = 0; id < n; ++id) {
    vocab += (id ? "," : "") + json(sp.IdToPiece(id)).dump() + ":" + std::to_string(id);
  }
  vocab += "}";
  for (size_t i = 0; i < merges.size(); ++i) {
    merge_list += (i ? "," : "") + json::array({sp.IdToPiece(merges[i].left), sp.IdToPiece(merges[i].right)}).dump();
  }
  merge_list += "]";

  json added = json::array();
  for (int id = 0; id < n; ++id) {
    if (!sp.IsControl(id) && !sp.IsUnknown(id)) continue;
    added.push_back({{"id", id}, {"content", sp.IdToPiece(id)}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  const json replace_space = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
  json normalizers = json::array();
  if (add_dummy_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}});
  normalizers.push_back(replace_space);
  json decoders = json::array({json{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                               json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
  if (add_dummy_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  const std::string bos = sp.bos_id() >= 0 ? sp.IdToPiece(sp.bos_id()) : "";
  json post = nullptr;
  if (!bos.empty()) {
    const json tok = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({tok, json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"pair", json::array({tok, json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, tok,
                                  json{{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {sp.bos_id()}}, {"tokens", {bos}}}}}}};
  }
  const std::string unk = sp.IdToPiece(sp.unk_id());
  std::string out = "{\n\"version\":\"1.0\",\n\"truncation\":null,\n\"padding\":null,\n";
  out += "\"added_tokens\":" + added.dump() + ",\n";
  out += "\"normalizer\":" + json{{"type", "Sequence"}, {"normalizers", normalizers}}.dump() + ",\n";
  out += "\"pre_tokenizer\":null,\n";
  out += "\"post_processor\":" + post.dump() + ",\n";
  out += "\"decoder\":" + json{{"type", "Sequence"}, {"decoders", decoders}}.dump() + ",\n";
  out += "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":" + json(unk).dump() +
         ",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":true,\"byte_fallback\":true,"
         "\"ignore_merges\":false,\n\"vocab\":" + vocab + ",\n\"merges\":" + merge_list + "}\n}\n";
  return out;
}

}  // namespace tritter
