// Training data: documents from files, directories (recursive, filtered by extension) and JSONL / JSONL.zst files
// with a `text` field (the curation pipeline's output), read as bytes with the byte tokenizer (id = byte + 8),
// each document followed by <eos>; or, given a model's own tokenizer (a BPE base), each document as that tokenizer's
// ids: [<bos> when the model adds it] encode(text) <eos>. A deterministic train/validation split by document hash
// (FNV-1a 64 of the bytes, whatever the tokenizer), and batches of random windows drawn from a seeded generator
// whose state is the "data position" a checkpoint saves. Non-goals: document packing masks (positions restart per
// window, not per document).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace tritter {
class Tokenizer;
}

namespace tritter::train {

struct DataOptions {
  std::vector<std::string> paths;
  // Directory walks keep files whose name ends in one of these (explicitly named files are always read).
  std::vector<std::string> extensions = {".py", ".jsonl", ".jsonl.zst", ".txt", ".md"};
  double val_fraction = 0.05;  // share of documents (by hash) held out
};

struct DataStats {
  int64_t files = 0, documents = 0, train_docs = 0, val_docs = 0;
  int64_t train_tokens = 0, val_tokens = 0, bytes = 0;
};

// FNV-1a 64 of the bytes: the split hash (documented so that another tool can reproduce the split).
uint64_t document_hash(const std::string& bytes);
// true when the document belongs to the validation split: hash % 1'000'000 < val_fraction · 1'000'000.
bool document_is_val(const std::string& bytes, double val_fraction);

class TokenData {
 public:
  // Reads everything. Throws Error naming the path when a path is missing, a JSONL line is malformed or has no
  // string `text`, or no document was read. val_fraction = 1 puts every document in the validation split (eval).
  explicit TokenData(const DataOptions& options);
  // The same documents and split as the model's `tokenizer` reads them: each [<bos> if add_bos] ids <eos> (the
  // tokenizer's bos/eos; an eos-less vocabulary ends documents with nothing). train()/val() stay empty; the streams
  // are train_ids()/val_ids().
  TokenData(const DataOptions& options, const Tokenizer& tokenizer, bool add_bos);
  const DataStats& stats() const { return stats_; }
  // Byte-tokenizer streams (empty when a model's tokenizer read the data).
  const std::vector<uint16_t>& train() const { return train_; }
  const std::vector<uint16_t>& val() const { return val_; }
  // A model tokenizer's streams (empty for the byte tokenizer).
  bool model_tokens() const { return model_tokens_; }
  const std::vector<int32_t>& train_ids() const { return train_ids_; }
  const std::vector<int32_t>& val_ids() const { return val_ids_; }
  // Bytes of text target t + 1 of validation window w counts as, summed over its T targets: T for byte tokens (each
  // byte one, <eos> one), the decoded text of each BPE target (<eos> one, <bos> and other specials none), so that
  // nats / bytes is bits per byte for any tokenizer.
  int64_t val_window_bytes(int64_t w, int64_t T) const;

  // tokens (B, T+1) i32: B windows at uniform random offsets of the training stream (rng advanced B words).
  // Throws Error when the training split holds fewer than T+1 tokens.
  void sample_batch(Rng& rng, int64_t B, int64_t T, int32_t* tokens) const;
  // Number of (T+1)-token windows the validation stream holds (stride T, deterministic), and window w.
  int64_t val_windows(int64_t T) const;
  void val_window(int64_t w, int64_t T, int32_t* tokens) const;

 private:
  void read_all(const DataOptions& options);
  void add_document(const std::string& bytes, double val_fraction);
  void read_file(const std::string& path, double val_fraction);
  std::vector<uint16_t> train_, val_;
  const Tokenizer* tokenizer_ = nullptr;  // only while the constructor reads
  bool add_bos_ = false, model_tokens_ = false;
  std::vector<int32_t> train_ids_, val_ids_, val_bytes_;  // val_bytes_[i]: bytes of text val_ids_[i] counts as
  DataStats stats_;
};

}  // namespace tritter::train
