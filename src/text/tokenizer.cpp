// The byte tokenizer behind the Tokenizer interface, and its tokenizer.json form.
#include "text/tokenizer.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/byte_tokenizer.h"
#include "text/unicode.h"

namespace tritter {

namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  ByteTokenizer() {
    specials_.bos = kTokenBos, specials_.eos = kTokenEos, specials_.pad = kTokenPad, specials_.unk = kTokenUnk;
    specials_.end_of_generation = {kTokenEos};
  }
  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    return tokenize(text, {.bos = add_special, .modality = -1, .eos = false});
  }
  std::string decode(std::span<const int32_t> ids, bool skip_special) const override {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= kByteVocabSize) {
        throw_error("decode: token ", i, ": found id ", ids[i], ", expected 0 .. ", kByteVocabSize - 1);
      }
    }
    return detokenize(ids, !skip_special);
  }
  std::string token_piece(int32_t id) const override {
    return id >= kTokenByteOffset && id < kByteVocabSize ? token_bytes(id) : token_name(id);
  }
  std::string token_bytes(int32_t id) const override { return tritter::token_bytes(id); }
  bool is_special(int32_t id) const override { return token_is_special(id); }
  std::optional<int32_t> token_id(std::string_view piece) const override {
    if (piece.size() == 1) return static_cast<int32_t>(static_cast<unsigned char>(piece[0])) + kTokenByteOffset;
    for (int32_t id = 0; id < kTokenSpecialCount; ++id) if (token_name(id) == piece) return id;
    return std::nullopt;
  }
  const SpecialTokenIds& special_ids() const override { return specials_; }
  int64_t vocab_size() const override { return kByteVocabSize; }
  std::string kind() const override { return "byte"; }

 private:
  SpecialTokenIds specials_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

std::string byte_tokenizer_json() {
  using nlohmann::ordered_json;
  ordered_json added = ordered_json::array();
  for (int32_t id = 0; id < kTokenSpecialCount; ++id) {
    added.push_back({{"id", id}, {"content", token_name(id)}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  ordered_json vocab = ordered_json::object();
  for (int32_t id = 0; id < kTokenSpecialCount; ++id) vocab[token_name(id)] = id;
  for (int b = 0; b < 256; ++b) {
    std::string piece;
    unicode::append_utf8(piece, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
    vocab[piece] = b + kTokenByteOffset;
  }
  const ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                                   {"use_regex", false}};
  ordered_json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", ordered_json::array({{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                                        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", ordered_json::array({{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                      {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {kTokenBos}}, {"tokens", {"<bos>"}}}}}}}},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", ordered_json::array()}}},
  };
  return j.dump(2, ' ', false) + "\n";
}

}  // namespace tritter
