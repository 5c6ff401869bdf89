// Byte tokenizer: the original's ids, lossless on every byte value and on invalid UTF-8, no specials from text.
#include "text/byte_tokenizer.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tritter {
namespace {

TEST(ByteTokenizer, SpecialIdsMatchTheOriginal) {
  EXPECT_EQ(token_name(0), "<pad>");
  EXPECT_EQ(token_name(1), "<bos>");
  EXPECT_EQ(token_name(2), "<eos>");
  EXPECT_EQ(token_name(3), "<unk>");
  EXPECT_EQ(token_name(4), "<text>");
  EXPECT_EQ(token_name(5), "<code>");
  EXPECT_EQ(token_name(6), "<image>");
  EXPECT_EQ(token_name(7), "<audio>");
}

TEST(ByteTokenizer, EveryByteRoundTripsAndNeverGivesASpecial) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const auto ids = tokenize(all, {.bos = false});
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(ids[b], b + 8);
    EXPECT_FALSE(token_is_special(ids[b]));
    EXPECT_EQ(token_bytes(ids[b]), std::string(1, static_cast<char>(b)));
  }
  EXPECT_EQ(detokenize(ids), all);
}

TEST(ByteTokenizer, InvalidUtf8IsLossless) {
  const std::string bad = "a\xff\xfe\xc3(\xed\xa0\x80z";
  EXPECT_EQ(detokenize(tokenize(bad)), bad);
}

TEST(ByteTokenizer, OptionsAndGolden) {
  EXPECT_EQ(tokenize("Hi", {.bos = true, .modality = kTokenText, .eos = true}),
            (std::vector<int32_t>{1, 4, 80, 113, 2}));
  EXPECT_EQ(tokenize("", {}), (std::vector<int32_t>{1}));
  const std::vector<int32_t> ids = {1, 80, 2, 300};
  EXPECT_EQ(detokenize(ids), "H");
  EXPECT_EQ(detokenize(ids, true), "<bos>H<eos><id 300>");
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(detokenize(negative), Error);
  EXPECT_THROW(tokenize("x", {.modality = 42}), Error);
}

}  // namespace
}  // namespace tritter
