// GGUF container: round trip of every value type and tensor layout, and one hand-made bad file per failure mode
// (each asserting the message names the file and the field).
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "util/test_util.h"

namespace tritter {
namespace {

// A minimal independent GGUF byte builder (not write_gguf): what the reader must accept or reject.
struct Bytes {
  std::string b;
  Bytes& u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(char(v >> (8 * i))); return *this; }
  Bytes& u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(char(v >> (8 * i))); return *this; }
  Bytes& str(const std::string& s) { u64(s.size()); b += s; return *this; }
  Bytes& pad(size_t a) { while (b.size() % a) b.push_back('\0'); return *this; }
};

// Header with one U32 key and one F32 tensor of 4 elements at offset `offset`, then `data_bytes` of data.
Bytes one_tensor(uint32_t type = 0, uint64_t offset = 0, size_t data_bytes = 16, uint64_t ne0 = 4) {
  Bytes x;
  x.u32(kGgufMagic).u32(3).u64(1).u64(1);
  x.str("general.test").u32(4).u32(7);
  x.str("w").u32(1).u64(ne0).u32(type).u64(offset);
  x.pad(32);
  x.b.append(data_bytes, '\x01');
  return x;
}

std::string gguf_parse_error(const std::string& bytes) {
  try {
    GgufFile f(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "bad.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Gguf, ReadsAHandBuiltFile) {
  const std::string b = one_tensor().b;
  GgufFile f(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "x.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_int("general.test"), 7);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.get("w").ne, (std::vector<int64_t>{4}));
  EXPECT_EQ(f.get("w").bytes, 16u);
  EXPECT_EQ(f.get("w").data, reinterpret_cast<const uint8_t*>(b.data()) + f.data_offset());
  EXPECT_EQ(f.data_offset() % 32, 0u);
}

TEST(Gguf, RoundTripsEveryValueTypeAndTensor) {
  test::TempDir dir;
  std::vector<std::pair<std::string, GgufValue>> kv;
  kv.emplace_back("a.u32", GgufValue::u32(4000000000u));
  kv.emplace_back("a.i32", GgufValue::i32(-5));
  kv.emplace_back("a.u64", GgufValue::u64(1ull << 40));
  kv.emplace_back("a.f32", GgufValue::f32(0.25f));
  kv.emplace_back("a.bool", GgufValue::boolean(true));
  kv.emplace_back("a.str", GgufValue::str("héllo"));
  kv.emplace_back("a.strs", GgufValue::strings({"x", "", "yz"}));
  kv.emplace_back("a.i32s", GgufValue::i32s({1, -2, 3}));
  kv.emplace_back("general.alignment", GgufValue::u32(64));
  std::vector<float> w(96);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i) - 3.5f;
  std::vector<uint8_t> q(66 * 2, 0x55);
  std::vector<GgufTensorOut> ts = {{"w.f32", GgmlType::F32, {32, 3}, w.data(), {}},
                                   {"w.tq2", GgmlType::TQ2_0, {256, 2}, q.data(), {}},
                                   {"w.one", GgmlType::F32, {1}, w.data() + 5, {}}};
  write_gguf(dir / "rt.gguf", kv, ts);
  GgufFile f(dir / "rt.gguf");
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.value("a.u32").u, 4000000000u);
  EXPECT_EQ(f.get_int("a.i32"), -5);
  EXPECT_EQ(f.get_int("a.u64"), int64_t(1) << 40);
  EXPECT_EQ(f.get_number("a.f32"), 0.25);
  EXPECT_EQ(f.value("a.bool").u, 1u);
  EXPECT_EQ(f.get_string("a.str"), "héllo");
  ASSERT_EQ(f.value("a.strs").array.size(), 3u);
  EXPECT_EQ(f.value("a.strs").array[2].s, "yz");
  EXPECT_EQ(f.value("a.i32s").array[1].i, -2);
  ASSERT_EQ(f.tensors().size(), 3u);
  const GgufTensor& a = f.get("w.f32");
  EXPECT_EQ(a.ne, (std::vector<int64_t>{32, 3}));
  EXPECT_EQ(std::memcmp(a.data, w.data(), 96 * 4), 0);
  EXPECT_EQ(f.get("w.tq2").bytes, 132u);
  EXPECT_EQ(std::memcmp(f.get("w.tq2").data, q.data(), 132), 0);
  EXPECT_EQ(f.get("w.one").offset % 64, 0u);
  float one;
  std::memcpy(&one, f.get("w.one").data, 4);
  EXPECT_EQ(one, w[5]);
  // ggml pads after the last tensor too.
  EXPECT_EQ(f.file_bytes() % 64, 0u);
}

TEST(Gguf, RejectsEachMalformedFileNamingTheField) {
  Bytes b = one_tensor();
  std::string s = b.b;
  s[0] = 'X';
  EXPECT_NE(gguf_parse_error(s).find("file 'bad.gguf': bad magic"), std::string::npos) << gguf_parse_error(s);
  s = b.b;
  s[4] = 9;
  EXPECT_NE(gguf_parse_error(s).find("GGUF version 9, expected 3"), std::string::npos);
  for (size_t cut : {size_t(3), size_t(20), size_t(40), size_t(60)}) {
    const std::string e = gguf_parse_error(b.b.substr(0, cut));
    EXPECT_NE(e.find("file 'bad.gguf'"), std::string::npos) << cut << ": " << e;
    EXPECT_TRUE(e.find("needs") != std::string::npos || e.find("cannot fit") != std::string::npos) << cut << ": " << e;
  }
  std::string e = gguf_parse_error(b.b.substr(0, b.b.size() - 1));
  EXPECT_NE(e.find("tensor 'w': data [0, 16) lies past the end of the data section (15 bytes)"), std::string::npos) << e;
  e = gguf_parse_error(one_tensor(31).b);
  EXPECT_NE(e.find("tensor 'w': ggml type 31 is unknown or removed"), std::string::npos) << e;
  e = gguf_parse_error(one_tensor(0, 8).b);
  EXPECT_NE(e.find("tensor 'w': offset 8 is not a multiple of the alignment 32"), std::string::npos) << e;
  e = gguf_parse_error(one_tensor(8, 0, 34, 30).b);
  EXPECT_NE(e.find("ne[0] = 30 is not a multiple of Q8_0's block 32"), std::string::npos) << e;
  e = gguf_parse_error(one_tensor(0, 0, 16, 1ull << 62).b);
  EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
  // Counts that cannot fit the file are rejected before anything is allocated.
  Bytes big;
  big.u32(kGgufMagic).u32(3).u64(1ull << 60).u64(0);
  e = gguf_parse_error(big.b);
  EXPECT_NE(e.find("tensor_count 1152921504606846976 cannot fit"), std::string::npos) << e;
  // Duplicate key, duplicate tensor, alignment of the wrong type, bool out of range, oversize array.
  Bytes dup;
  dup.u32(kGgufMagic).u32(3).u64(0).u64(2).str("k").u32(4).u32(1).str("k").u32(4).u32(2);
  EXPECT_NE(gguf_parse_error(dup.b).find("key 'k' appears twice"), std::string::npos);
  Bytes dupt;
  dupt.u32(kGgufMagic).u32(3).u64(2).u64(0).str("t").u32(1).u64(1).u32(0).u64(0).str("t").u32(1).u64(1).u32(0).u64(32);
  dupt.pad(32).b.append(64, '\0');
  EXPECT_NE(gguf_parse_error(dupt.b).find("tensor 't' appears twice"), std::string::npos);
  Bytes al;
  al.u32(kGgufMagic).u32(3).u64(0).u64(1).str("general.alignment").u32(10).u64(32);
  EXPECT_NE(gguf_parse_error(al.b).find("'general.alignment' has type U64, expected U32"), std::string::npos);
  Bytes al3;
  al3.u32(kGgufMagic).u32(3).u64(0).u64(1).str("general.alignment").u32(4).u32(24);
  EXPECT_NE(gguf_parse_error(al3.b).find("'general.alignment' = 24"), std::string::npos);
  Bytes bo;
  bo.u32(kGgufMagic).u32(3).u64(0).u64(1).str("b").u32(7).b.push_back('\x02');
  EXPECT_NE(gguf_parse_error(bo.b).find("key 'b': bool value 2"), std::string::npos) << gguf_parse_error(bo.b);
  Bytes arr;
  arr.u32(kGgufMagic).u32(3).u64(0).u64(1).str("a").u32(9).u32(8).u64(1ull << 40);
  EXPECT_NE(gguf_parse_error(arr.b).find("key 'a': array of 1099511627776 STRING"), std::string::npos) << gguf_parse_error(arr.b);
  Bytes vt;
  vt.u32(kGgufMagic).u32(3).u64(0).u64(1).str("v").u32(13);
  EXPECT_NE(gguf_parse_error(vt.b).find("key 'v': value type 13"), std::string::npos);
  Bytes nd;
  nd.u32(kGgufMagic).u32(3).u64(1).u64(0).str("t").u32(5);
  nd.b.append(64, '\0');
  EXPECT_NE(gguf_parse_error(nd.b).find("tensor 't': n_dims 5, expected ≤ 4"), std::string::npos);
  Bytes ov;
  ov.u32(kGgufMagic).u32(3).u64(2).u64(0).str("a").u32(1).u64(16).u32(0).u64(0).str("b").u32(1).u64(8).u32(0).u64(32);
  ov.pad(32).b.append(64, '\0');
  EXPECT_NE(gguf_parse_error(ov.b).find("tensor 'b': data at offset 32 overlaps tensor 'a'"), std::string::npos) << gguf_parse_error(ov.b);
  Bytes longname;
  longname.u32(kGgufMagic).u32(3).u64(1).u64(0).str(std::string(64, 'n')).u32(1).u64(1).u32(0).u64(0);
  EXPECT_NE(gguf_parse_error(longname.b).find("name is 64 bytes, expected < 64"), std::string::npos);
}

TEST(Gguf, WriterRejectsBadInputAndLeavesTheOldFile) {
  test::TempDir dir;
  test::write_file(dir / "keep.gguf", "old");
  float x[4] = {};
  test::expect_error([&] { write_gguf(dir / "keep.gguf", {}, {{"t", GgmlType::F32, {4}, x, {}}, {"t", GgmlType::F32, {4}, x, {}}}); },
                     {"tensor 't' appears twice"});
  test::expect_error([&] { write_gguf(dir / "keep.gguf", {}, {{"t", GgmlType::I2_S, {4}, x, {}}}); }, {"never writes I2_S"});
  test::expect_error([&] {
    write_gguf(dir / "keep.gguf", {}, {{"t", GgmlType::F32, {4}, nullptr, [](const auto& sink) { float y[2] = {}; sink(y, 8); }}});
  }, {"tensor 't': producer wrote 8 bytes, expected 16"});
  test::expect_error([&] { write_gguf(dir / "keep.gguf", {{"k", GgufValue::u32(1)}, {"k", GgufValue::u32(2)}}, {}); },
                     {"key 'k' is empty or repeated"});
  EXPECT_EQ(test::read_file(dir / "keep.gguf"), "old");
}

}  // namespace
}  // namespace tritter
