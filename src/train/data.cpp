// Training data loader (see data.h).
#include "train/data.h"

#include <zstd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "model/config.h"
#include "text/byte_tokenizer.h"
#include "text/tokenizer.h"

namespace tritter::train {

namespace fs = std::filesystem;

uint64_t document_hash(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

bool document_is_val(const std::string& bytes, double val_fraction) {
  return static_cast<double>(document_hash(bytes) % 1000000ull) < val_fraction * 1e6;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string zstd_decompress(const std::string& in, const std::string& path) {
  ZSTD_DStream* ds = ZSTD_createDStream();
  std::string out;
  std::vector<char> buf(ZSTD_DStreamOutSize());
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  size_t ret = 0;
  while (input.pos < input.size) {
    ZSTD_outBuffer output{buf.data(), buf.size(), 0};
    ret = ZSTD_decompressStream(ds, &output, &input);
    if (ZSTD_isError(ret)) {
      ZSTD_freeDStream(ds);
      throw_error("data: file '", path, "': zstd: ", ZSTD_getErrorName(ret));
    }
    out.append(buf.data(), output.pos);
  }
  ZSTD_freeDStream(ds);
  if (ret != 0) throw_error("data: file '", path, "': zstd: truncated stream");
  return out;
}

}  // namespace

void TokenData::add_document(const std::string& bytes, double val_fraction) {
  const bool val = document_is_val(bytes, val_fraction);
  if (tokenizer_) {
    const Tokenizer& tok = *tokenizer_;
    auto& dst = val ? val_ids_ : train_ids_;
    const SpecialTokenIds& sp = tok.special_ids();
    const auto push = [&](int32_t id, int32_t text_bytes) {
      dst.push_back(id);
      if (val) val_bytes_.push_back(text_bytes);
    };
    if (add_bos_ && sp.bos >= 0) push(sp.bos, 0);
    const std::vector<int32_t> ids = tok.encode(bytes, false);
    for (size_t k = 0; k < ids.size(); ++k) {
      // The first token through decode(): a SentencePiece decoder strips the space its normalizer prepended.
      const int32_t one[1] = {ids[k]};
      push(ids[k], static_cast<int32_t>(k == 0 ? tok.decode(one).size() : tok.token_bytes(ids[k]).size()));
    }
    if (sp.eos >= 0) push(sp.eos, 1);
  } else {
    auto& dst = val ? val_ : train_;
    // Grown geometrically: reserving the exact new size for every document reallocated and copied the whole
    // stream once per document (quadratic: 20,000 JSONL records, 13 MB, took two minutes to load).
    const size_t need = dst.size() + bytes.size() + 1;
    if (need > dst.capacity()) dst.reserve(std::max(need, 2 * dst.capacity()));
    for (unsigned char c : bytes) dst.push_back(static_cast<uint16_t>(c + kTokenByteOffset));
    dst.push_back(static_cast<uint16_t>(kTokenEos));
  }
  ++stats_.documents;
  (val ? stats_.val_docs : stats_.train_docs) += 1;
  stats_.bytes += static_cast<int64_t>(bytes.size());
}

void TokenData::read_file(const std::string& path, double val_fraction) {
  ++stats_.files;
  std::string bytes = read_file_bytes(path);
  const bool zst = ends_with(path, ".zst");
  if (zst) bytes = zstd_decompress(bytes, path);
  if (!ends_with(path, ".jsonl") && !ends_with(path, ".jsonl.zst")) {
    add_document(bytes, val_fraction);
    return;
  }
  std::istringstream in(bytes);
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw_error("data: file '", path, "' line ", lineno, ": invalid JSON: ", json_error_text(e));
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      throw_error("data: file '", path, "' line ", lineno, ": found no string field 'text', expected {\"text\": ...}");
    }
    add_document(j["text"].get<std::string>(), val_fraction);
  }
}

TokenData::TokenData(const DataOptions& options) { read_all(options); }

TokenData::TokenData(const DataOptions& options, const Tokenizer& tokenizer, bool add_bos)
    : tokenizer_(&tokenizer), add_bos_(add_bos), model_tokens_(true) {
  read_all(options);
  tokenizer_ = nullptr;
}

void TokenData::read_all(const DataOptions& options) {
  if (options.paths.empty()) throw_error("data: no paths given, expected at least one file or directory");
  if (!(options.val_fraction >= 0.0 && options.val_fraction <= 1.0)) {
    throw_error("data: --val-fraction: found ", options.val_fraction, ", expected a share in 0 .. 1");
  }
  for (const auto& p : options.paths) {
    if (!fs::exists(p)) throw_error("data: path '", p, "': not found");
    // A FIFO would block the run forever and /dev/zero never ends: only regular files and directories are data.
    if (!fs::is_directory(p)) require_regular_file(p, "data: path");
    if (fs::is_directory(p)) {
      std::vector<std::string> files;
      for (const auto& e : fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied)) {
        if (!e.is_regular_file()) continue;
        const std::string name = e.path().string();
        for (const auto& ext : options.extensions) {
          if (ends_with(name, ext)) {
            files.push_back(name);
            break;
          }
        }
      }
      std::sort(files.begin(), files.end());  // directory order is not deterministic
      for (const auto& f : files) read_file(f, options.val_fraction);
    } else {
      read_file(p, options.val_fraction);
    }
  }
  stats_.train_tokens = static_cast<int64_t>(model_tokens_ ? train_ids_.size() : train_.size());
  stats_.val_tokens = static_cast<int64_t>(model_tokens_ ? val_ids_.size() : val_.size());
  if (stats_.train_tokens == 0 && stats_.val_tokens == 0) throw_error("data: no documents read from ", options.paths.size(), " path(s)");
}

void TokenData::sample_batch(Rng& rng, int64_t B, int64_t T, int32_t* tokens) const {
  const int64_t n = stats_.train_tokens;
  if (n < T + 1) throw_error("data: training split: found ", n, " tokens, expected at least T+1 = ", T + 1);
  const uint64_t span = static_cast<uint64_t>(n - T);  // offsets 0 .. n−T−1
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t off = rng.next_u64() % span;
    int32_t* row = tokens + b * (T + 1);
    if (model_tokens_) std::copy_n(train_ids_.begin() + static_cast<ptrdiff_t>(off), T + 1, row);
    else for (int64_t t = 0; t <= T; ++t) row[t] = train_[off + static_cast<uint64_t>(t)];
  }
}

int64_t TokenData::val_windows(int64_t T) const {
  const int64_t n = stats_.val_tokens;
  return n < T + 1 ? 0 : (n - 1) / T;
}

void TokenData::val_window(int64_t w, int64_t T, int32_t* tokens) const {
  if (model_tokens_) {
    std::copy_n(val_ids_.begin() + static_cast<ptrdiff_t>(w * T), T + 1, tokens);
    return;
  }
  for (int64_t t = 0; t <= T; ++t) tokens[t] = val_[static_cast<size_t>(w * T + t)];
}

int64_t TokenData::val_window_bytes(int64_t w, int64_t T) const {
  if (!model_tokens_) return T;
  int64_t bytes = 0;
  for (int64_t t = 1; t <= T; ++t) bytes += val_bytes_[static_cast<size_t>(w * T + t)];
  return bytes;
}

}  // namespace tritter::train
