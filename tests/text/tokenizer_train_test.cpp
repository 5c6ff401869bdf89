// The trained code tokenizer (text/tokenizer_train.h): a small BPE vocabulary trained with SentencePiece on Python
// standard-library files (or, where none are installed, the mixed corpus) encodes held-out text — code, Unicode,
// whitespace runs, tabs, invalid UTF-8 — to SentencePiece's own ids through Tritter's tokenizer.json reader and through
// Hugging Face's JavaScript tokenizers; decode gives the text back; bad inputs are clear errors that write nothing.
#include "text/tokenizer_train.h"

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "text/hf_reference.h"
#include "text/hf_tokenizer.h"
#include "text/unicode.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;
using testing::mixed_corpus;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Code for training and for holding out: the standard library's top-level modules in name order, alternating files,
// plus the mixed corpus (scripts, emoji, whitespace, invalid UTF-8) so the held-out text has characters of both kinds.
struct Corpus {
  std::vector<std::string> train, held_out;
  size_t held_out_files = 0;  // held_out[0, held_out_files) are standard-library files
};
const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus c;
    std::vector<fs::path> files;
    const fs::path lib = "/usr/lib/python3.11";
    if (fs::is_directory(lib)) {
      for (const auto& e : fs::directory_iterator(lib)) {
        if (e.is_regular_file() && e.path().extension() == ".py") files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    size_t train_bytes = 0, held_bytes = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      std::string text = slurp(files[i]);
      if (i % 4 != 3 && train_bytes < (1200u << 10)) train_bytes += text.size(), c.train.push_back(std::move(text));
      else if (i % 4 == 3 && held_bytes < (200u << 10)) held_bytes += text.size(), c.held_out.push_back(std::move(text));
    }
    c.held_out_files = c.held_out.size();
    for (auto& d : mixed_corpus(train_bytes == 0 ? 800000 : 150000, 1)) c.train.push_back(std::move(d));
    for (auto& d : mixed_corpus(120000, 2)) c.held_out.push_back(std::move(d));
    // Edge cases by hand: indentation by tabs and spaces, trailing spaces, CRLF, a lone byte, text starting with
    // spaces, one character, the empty string.
    for (const char* s : {"\tif x:\n\t\treturn  y  \n", "    \n\n\n        pass\r\n", "\xff", "  leading", "x", "",
                          "\xe2\x96\x81 is the metaspace itself", "<s> and </s> and <unk> as text", "\x00\x01\x1f"}) {
      c.held_out.emplace_back(s);
    }
    c.held_out.emplace_back(std::string("nul\0inside", 10));
    return c;
  }();
  return c;
}

struct Trained {
  TrainedTokenizer t;
  std::string json_path;
};
Trained train_on(const std::vector<std::string>& docs, size_t max_bytes, bool split_by_whitespace, const char* name) {
  TokenizerTrainOptions o;
  o.vocab_size = 800;
  o.log_level = 2;
  o.max_input_bytes = static_cast<int64_t>(max_bytes);
  o.split_by_whitespace = split_by_whitespace;
  size_t i = 0;
  Trained tr;
  tr.t = train_bpe_tokenizer(o, [&](std::string& text) {
    if (i == docs.size()) return false;
    text = docs[i++];
    return true;
  });
  tr.json_path = testing::temp_path(name);
  std::ofstream(tr.json_path, std::ios::binary) << tr.t.tokenizer_json;
  return tr;
}
// The default options (pieces start at a run of spaces).
const Trained& trained() {
  static const Trained tr = train_on(corpus().train, size_t{1} << 30, true, "trained_tokenizer.json");
  return tr;
}
// Pieces that span spaces ("\n▁▁▁▁return"): slower to train, so on less text.
const Trained& trained_across_spaces() {
  static const Trained tr = train_on(corpus().train, 400u << 10, false, "trained_across_spaces.json");
  return tr;
}

// SentencePiece's ids as a Hugging Face reader produces them: special-token text (<s>, </s>, <unk>) in the text is
// that token (SentencePiece reads it as characters), and invalid UTF-8 is first replaced by U+FFFD once per maximal
// invalid sequence (SentencePiece replaces each invalid byte).
std::vector<int32_t> sentencepiece_ids(const sentencepiece::SentencePieceProcessor& sp, const std::string& doc) {
  const std::string text = unicode::sanitize_utf8(doc);
  std::vector<int32_t> out;
  size_t from = 0;
  while (from <= text.size()) {
    size_t at = std::string::npos, len = 0;
    int special = -1;
    for (const int id : {sp.unk_id(), sp.bos_id(), sp.eos_id()}) {
      const size_t k = text.find(sp.IdToPiece(id), from);
      if (k != std::string::npos && (k < at || (k == at && sp.IdToPiece(id).size() > len))) {
        at = k, len = sp.IdToPiece(id).size(), special = id;
      }
    }
    std::vector<int> ids;
    EXPECT_TRUE(sp.Encode(text.substr(from, at == std::string::npos ? std::string::npos : at - from), &ids).ok());
    out.insert(out.end(), ids.begin(), ids.end());
    if (at == std::string::npos) break;
    out.push_back(special);
    from = at + len;
  }
  return out;
}

std::string show(const std::string& doc) { return "doc of " + std::to_string(doc.size()) + " bytes '" + doc.substr(0, 80) + "'"; }

void expect_sentencepiece_ids(const Trained& tr, bool check_compression) {
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(tr.t.sentencepiece_model).ok());
  const auto tok = parse_tokenizer_json(tr.t.tokenizer_json, "trained tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 800);
  EXPECT_EQ(tok->kind(), "bpe-sentencepiece");
  // Byte fallback: all 256 bytes have their piece right after the three specials.
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    ASSERT_EQ(tok->token_id(hex), std::optional<int32_t>(3 + b)) << hex;
  }
  size_t mismatches = 0, bytes = 0, tokens = 0;
  for (size_t i = 0; i < corpus().held_out.size(); ++i) {
    const std::string& doc = corpus().held_out[i];
    const auto expected = sentencepiece_ids(sp, doc);
    const auto got = tok->encode(doc, false);
    if (i < corpus().held_out_files) bytes += doc.size(), tokens += got.size();
    if (expected != got && ++mismatches <= 3) {
      size_t at = 0;
      while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
      ADD_FAILURE() << show(doc) << ": first difference at token " << at << ": Tritter "
                    << (at < got.size() ? tok->token_piece(got[at]) : "(end)") << ", SentencePiece "
                    << (at < expected.size() ? sp.IdToPiece(expected[at]) : "(end)");
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << corpus().held_out.size() << " held-out documents";
  // A trained vocabulary compresses held-out code: over two bytes per token even at 800 ids (2.15 when written).
  if (check_compression && tokens > 0) {
    EXPECT_GT(double(bytes) / double(tokens), 2.0);
  }
}

TEST(TokenizerTrain, TritterReadsTheFileToSentencePiecesIds) { expect_sentencepiece_ids(trained(), true); }

TEST(TokenizerTrain, PiecesAcrossSpacesReadToSentencePiecesIdsToo) {
  const auto& tr = trained_across_spaces();
  const auto tok = parse_tokenizer_json(tr.t.tokenizer_json, "trained tokenizer.json");
  bool spans = false;  // the option did what it says: some piece holds a space inside it
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    const std::string p = tok->token_piece(id);
    spans |= p.size() > 3 && p.find("\xE2\x96\x81", 1) != std::string::npos && p.find_first_not_of("\xE2\x96\x81") != std::string::npos;
  }
  EXPECT_TRUE(spans);
  expect_sentencepiece_ids(tr, false);
}

TEST(TokenizerTrain, DecodeGivesTheTextBack) {
  const auto tok = parse_tokenizer_json(trained().t.tokenizer_json, "trained tokenizer.json");
  for (const auto& doc : corpus().held_out) {
    const auto ids = tok->encode(doc, false);
    // Valid UTF-8 comes back byte for byte; invalid bytes were read as U+FFFD (as Hugging Face's callers read them),
    // the metaspace character itself comes back as a space (as from SentencePiece), and special-token text is the
    // special token, which decode drops unless asked to keep it.
    const std::string valid = unicode::sanitize_utf8(doc);
    std::string expected;
    for (size_t k = 0; k < valid.size(); ++k) {
      const bool metaspace = valid.compare(k, 3, "\xE2\x96\x81") == 0;
      expected += metaspace ? ' ' : valid[k];
      k += metaspace ? 2 : 0;
    }
    std::string streamed;
    for (const int32_t id : ids) streamed += tok->is_special(id) ? tok->token_piece(id) : tok->token_bytes(id);
    EXPECT_EQ(streamed, expected) << show(doc);
    EXPECT_EQ(tok->decode(ids, false), expected) << show(doc);
    if (doc.find('<') == std::string::npos) {
      EXPECT_EQ(tok->decode(ids), expected) << show(doc);
    }
  }
}

void expect_reference_ids(const Trained& tr, const std::vector<std::string>& docs, std::initializer_list<bool> add_special) {
  const auto tok = parse_tokenizer_json(tr.t.tokenizer_json, "trained tokenizer.json");
  for (const bool special : add_special) {
    const auto expected = testing::reference_ids(tr.json_path, docs, special);
    ASSERT_EQ(expected.size(), docs.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
      if (tok->encode(docs[i], special) != expected[i] && ++mismatches <= 3) ADD_FAILURE() << show(docs[i]);
    }
    EXPECT_EQ(mismatches, 0u) << "add_special " << special;
  }
}

TEST(TokenizerTrain, HuggingFaceReadsTheFileToTheSameIds) {
  if (const auto why = testing::reference_missing("@lenml/tokenizers"); !why.empty()) GTEST_SKIP() << why;
  const auto& docs = corpus().held_out;
  expect_reference_ids(trained(), docs, {false});
  // <s> first, from the post-processor.
  expect_reference_ids(trained(), std::vector<std::string>(docs.end() - 12, docs.end()), {true});
  expect_reference_ids(trained_across_spaces(), docs, {false});
}

TEST(TokenizerTrain, BadInputsAreClearErrors) {
  TokenizerTrainOptions o;
  const auto none = [](std::string&) { return false; };
  try {
    train_bpe_tokenizer(o, none);
    ADD_FAILURE() << "no error for an empty input";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no text to train on"), std::string::npos) << e.what();
  }
  const auto one = [n = 0](std::string& t) mutable { return n++ == 0 && (t = "def f(x):\n    return x\n", true); };
  o.vocab_size = 100;
  try {
    train_bpe_tokenizer(o, one);
    ADD_FAILURE() << "no error for vocab size 100";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab-size: found 100, expected at least 260"), std::string::npos) << e.what();
  }
  // More ids than the text has pieces for.
  o.vocab_size = 5000;
  o.log_level = 2;
  auto again = [n = 0](std::string& t) mutable { return n++ == 0 && (t = "def f(x):\n    return x\n", true); };
  try {
    train_bpe_tokenizer(o, again);
    ADD_FAILURE() << "no error for vocab size 5000 on one line";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Vocabulary size too high"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("smaller --vocab-size"), std::string::npos) << e.what();
  }
  o.vocab_size = 800;
  o.model_type = "unigram";
  EXPECT_THROW(train_bpe_tokenizer(o, one), Error);
}

// The command: unwritable output, an input without text and a too-small vocabulary fail with the reason and leave
// no output file; a good run writes a file Tritter reads.
TEST(TokenizerTrain, CommandWritesAtomicallyOrNothing) {
  const fs::path dir = testing::temp_path("train_tokenizer_cli");
  fs::create_directories(dir / "src");
  fs::create_directories(dir / "empty");
  std::string text;
  for (const auto& d : corpus().train) {
    if (text.size() > (300u << 10)) break;
    if (unicode::is_valid_utf8(d)) text += d;
  }
  std::ofstream(dir / "src" / "a.py", std::ios::binary) << text;
  const auto run = [&](const std::string& args, std::string& out) {
    const std::string log = (dir / "log.txt").string();
    const int rc = std::system((std::string(TRITTER_CLI) + " -q train-tokenizer " + args + " > '" + log + "' 2>&1").c_str());
    out = slurp(log);
    return rc;
  };
  std::string out;
  const std::string src = "-i '" + (dir / "src").string() + "' --val-fraction 0";
  EXPECT_NE(run(src + " --vocab-size 600 -o /nonexistent-dir/t.json", out), 0);
  EXPECT_NE(out.find("/nonexistent-dir/t.json"), std::string::npos) << out;
  const std::string target = (dir / "t.json").string();
  EXPECT_NE(run("-i '" + (dir / "empty").string() + "' --vocab-size 600 -o '" + target + "'", out), 0);
  EXPECT_NE(out.find("no text to train on"), std::string::npos) << out;
  EXPECT_NE(run(src + " --vocab-size 10 -o '" + target + "'", out), 0);
  EXPECT_NE(out.find("--vocab-size: found 10"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(run(src + " --vocab-size 600 -o '" + target + "'", out), 0) << out;
  const auto tok = load_tokenizer_json(target);
  EXPECT_EQ(tok->vocab_size(), 600);
  const std::string code = "def f(x):\n\treturn x  # done\n";
  EXPECT_EQ(tok->decode(tok->encode(code, false)), code);
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tritter
