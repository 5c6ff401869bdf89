// safetensors reader/writer: round trip, header alignment, and one hand-made bad file per failure mode, each
// asserting the message names the file and the tensor, and that a failed write leaves an existing file alone.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "core/error.h"
#include "util/test_util.h"

namespace tritter {
namespace {

std::string with_length(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Parses an in-memory image; returns the error message ("" when it parsed).
std::string safetensors_parse_error(const std::string& image) {
  try {
    SafeTensorsFile f(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "bad.safetensors");
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

#define EXPECT_ERROR_HAS(image, ...)                                                       \
  do {                                                                                     \
    const std::string msg_ = safetensors_parse_error(image);                                           \
    ASSERT_FALSE(msg_.empty()) << "parsed without error";                                  \
    EXPECT_NE(msg_.find("bad.safetensors"), std::string::npos) << msg_;                    \
    for (const char* part : {__VA_ARGS__}) EXPECT_NE(msg_.find(part), std::string::npos) << msg_; \
  } while (0)

TEST(Safetensors, RoundTripKeepsOrderDataAndMetadata) {
  test::TempDir dir;
  std::vector<float> a(6);
  std::iota(a.begin(), a.end(), 0.5f);
  std::vector<uint8_t> b = {1, 2, 3};  // odd length: the next tensor starts unaligned, as the format allows
  std::vector<int32_t> c = {-7, 8};
  std::vector<SafeTensorOut> out = {
      {"z.first", DType::F32, {2, 3}, a.data(), {}},
      {"a.bytes", DType::U8, {3}, b.data(), {}},
      {"m.ints", DType::I32, {2}, nullptr, [&](const auto& sink) { sink(c.data(), 8); }},
      {"empty", DType::F32, {0, 4}, a.data(), {}},
      {"scalar", DType::F32, {}, a.data() + 5, {}},
  };
  write_safetensors(dir / "x.safetensors", out, {{"format", "tritter-v1"}, {"config", "{\"a\": 1}"}});

  SafeTensorsFile f(dir / "x.safetensors");
  EXPECT_EQ((8 + f.header_bytes()) % 8, 0u);
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.tensors()[0].name, "z.first");  // file order is the given order
  EXPECT_EQ(f.tensors()[1].name, "a.bytes");
  const SafeTensor& ta = f.expect("z.first", DType::F32, {2, 3});
  EXPECT_TRUE(ta.aligned(8));
  EXPECT_EQ(std::memcmp(ta.data, a.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.get("a.bytes").data, b.data(), 3), 0);
  int32_t cc[2];
  std::memcpy(cc, f.get("m.ints").data, 8);
  EXPECT_EQ(cc[0], -7);
  EXPECT_EQ(cc[1], 8);
  EXPECT_EQ(f.get("empty").bytes(), 0u);
  EXPECT_EQ(f.get("scalar").numel(), 1);
  EXPECT_EQ(f.metadata_value("format"), "tritter-v1");
  EXPECT_EQ(f.metadata().at("config"), "{\"a\": 1}");
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(Safetensors, ExpectNamesTensorShapeAndDtype) {
  test::TempDir dir;
  std::vector<float> w(512 * 128);
  write_safetensors(dir / "m.safetensors", {{"x", DType::F32, {512, 128}, w.data(), {}}}, {});
  SafeTensorsFile f(dir / "m.safetensors");
  try {
    f.expect("x", DType::F32, {1536, 512});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'x': shape [512, 128], expected [1536, 512]"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("m.safetensors"), std::string::npos) << e.what();
  }
  try {
    f.expect("x", DType::U8, {512, 128});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dtype F32, expected U8"), std::string::npos) << e.what();
  }
  try {
    f.get("missing.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'missing.weight' is missing"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, AcceptsSpacePaddedHeaderFromOtherWriters) {
  const std::string h = R"({"t":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},"__metadata__":{"format":"pt"}})";
  const std::string image = with_length(h + "     ", "\x01\x02");
  EXPECT_EQ(safetensors_parse_error(image), "");
}

TEST(SafetensorsBad, TooShort) { EXPECT_ERROR_HAS(std::string("abc"), "too short", "found 3 bytes"); }

TEST(SafetensorsBad, HeaderLengthPastEnd) {
  std::string image = with_length("{}", "");
  image[0] = 100;
  EXPECT_ERROR_HAS(image, "header length 100 runs past the end");
}

TEST(SafetensorsBad, HeaderLengthOverLimit) {
  std::string image = with_length("{}", "");
  image[7] = 1;  // 2^56
  EXPECT_ERROR_HAS(image, "exceeds the limit");
}

TEST(SafetensorsBad, BadMagic) { EXPECT_ERROR_HAS(with_length("[1, 2]", ""), "does not start with '{'"); }

TEST(SafetensorsBad, InvalidJson) { EXPECT_ERROR_HAS(with_length("{\"a\": ", ""), "not valid JSON"); }

TEST(SafetensorsBad, InvalidUtf8) { EXPECT_ERROR_HAS(with_length("{\"\xff\": 1}", ""), "not valid JSON"); }

TEST(SafetensorsBad, DeepNesting) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"shape":[[[1]]]}})", ""), "nests deeper");
}

TEST(SafetensorsBad, DuplicateTensorName) {
  const std::string h = R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  EXPECT_ERROR_HAS(with_length(h, "ab"), "duplicate key 't'");
}

TEST(SafetensorsBad, NonStringMetadata) {
  EXPECT_ERROR_HAS(with_length(R"({"__metadata__":{"n":1}})", ""), "__metadata__ 'n'", "expected a string");
}

TEST(SafetensorsBad, UnknownDtype) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", "a"), "tensor 't'",
                   "unsupported dtype 'Q7'");
}

TEST(SafetensorsBad, NegativeDimension) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "a"), "tensor 't'",
                   "non-negative integer");
}

TEST(SafetensorsBad, ShapeOverflow) {
  const std::string h = R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})";
  EXPECT_ERROR_HAS(with_length(h, "abcd"), "tensor 't'", "overflows");
}

TEST(SafetensorsBad, DtypeTimesShapeNotBytes) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"), "tensor 't'",
                   "needs 8 bytes", "= 4 bytes");
}

TEST(SafetensorsBad, OffsetsOutOfRange) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", "abcd"), "tensor 't'",
                   "out of range", "has 4 bytes");
}

TEST(SafetensorsBad, OffsetsReversed) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[3,1]}})", "abcd"), "tensor 't'",
                   "end before begin");
}

TEST(SafetensorsBad, OffsetsOverlap) {
  const std::string h = R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                        R"("b":{"dtype":"U8","shape":[3],"data_offsets":[1,4]}})";
  EXPECT_ERROR_HAS(with_length(h, "abcd"), "tensor 'b'", "overlap tensor 'a'");
}

TEST(SafetensorsBad, GapInData) {
  const std::string h = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})";
  EXPECT_ERROR_HAS(with_length(h, "abcd"), "gap", "tensor 'b'", "found begin 2, expected 1");
}

TEST(SafetensorsBad, TrailingBytes) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "abcd"),
                   "cover 2 bytes", "expected all 4");
}

TEST(SafetensorsBad, MissingAndUnknownFields) {
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"U8","shape":[2]}})", "ab"), "tensor 't'", "data_offsets");
  EXPECT_ERROR_HAS(with_length(R"({"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":1}})", "ab"),
                   "unknown field 'x'");
}

TEST(SafetensorsBad, TruncatedFileOnDisk) {
  test::TempDir dir;
  std::vector<float> w(100, 1.0f);
  write_safetensors(dir / "t.safetensors", {{"w", DType::F32, {100}, w.data(), {}}}, {});
  std::string bytes = test::read_file(dir / "t.safetensors");
  test::write_file(dir / "t.safetensors", bytes.substr(0, bytes.size() - 10));
  try {
    SafeTensorsFile f(dir / "t.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tensor 'w'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SafeTensorsFile(dir / "absent.safetensors"), Error);
}

TEST(SafetensorsWrite, FailuresLeaveExistingFileUnchanged) {
  test::TempDir dir;
  const auto path = dir / "keep.safetensors";
  test::write_file(path, "original");
  std::vector<float> w(4);
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {4}, w.data(), {}}, {"a", DType::F32, {4}, w.data(), {}}},
                                 {}),
               Error);
  EXPECT_EQ(test::read_file(path), "original");
  try {
    write_safetensors(path, {{"a", DType::F32, {4}, nullptr, [&](const auto& sink) { sink(w.data(), 12); }}}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrote 12 bytes, expected 16"), std::string::npos) << e.what();
  }
  EXPECT_EQ(test::read_file(path), "original");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

}  // namespace
}  // namespace tritter
