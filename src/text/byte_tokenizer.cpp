#include "text/byte_tokenizer.h"

#include "core/error.h"

namespace tritter {

namespace {
constexpr const char* kSpecialNames[kTokenSpecialCount] = {"<pad>", "<bos>",  "<eos>",   "<unk>",
                                                           "<text>", "<code>", "<image>", "<audio>"};
}

std::vector<int32_t> tokenize(std::string_view bytes, const EncodeOptions& options) {
  if (options.modality != -1 && !token_is_special(options.modality)) {
    throw_error("tokenize: modality token ", options.modality, " is not a special id, expected 4 (<text>) or 5 (<code>)");
  }
  std::vector<int32_t> ids;
  ids.reserve(bytes.size() + 3);
  if (options.bos) ids.push_back(kTokenBos);
  if (options.modality != -1) ids.push_back(options.modality);
  for (char c : bytes) ids.push_back(static_cast<int32_t>(static_cast<unsigned char>(c)) + kTokenByteOffset);
  if (options.eos) ids.push_back(kTokenEos);
  return ids;
}

std::string token_bytes(int32_t id) {
  if (id >= kTokenByteOffset && id < kByteVocabSize) return std::string(1, static_cast<char>(id - kTokenByteOffset));
  return "";
}

std::string token_name(int32_t id) {
  if (token_is_special(id)) return kSpecialNames[id];
  return "<id " + std::to_string(id) + ">";
}

std::string detokenize(std::span<const int32_t> ids, bool show_special) {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0) throw_error("detokenize: token ", i, ": found id ", id, ", expected a non-negative id");
    if (id >= kTokenByteOffset && id < kByteVocabSize) {
      out += static_cast<char>(id - kTokenByteOffset);
    } else if (show_special) {
      out += token_name(id);
    }
  }
  return out;
}

}  // namespace tritter
