// The packed inference file: names, dtypes and shapes per the table, the scale reproducing σ exactly, the int8 head,
// and one bad file per failure mode (missing / extra tensor, wrong shape, non-finite scale, code 11, wrong format,
// NaN weight at pack time leaving an existing output alone).
#include "model/packed_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/quantize.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "model/model_files.h"
#include "util/test_util.h"

namespace tritter {
namespace {

std::vector<float> params_for(const TritterConfig& c) {
  std::vector<float> p(parameter_count(c));
  init_parameters(p, c, 17);
  return p;
}

std::string open_error(const std::filesystem::path& path) {
  try {
    PackedModel::open(path);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

// Rewrites a packed file with one tensor changed by `edit` (same metadata).
std::filesystem::path rewrite(const std::filesystem::path& src, const std::filesystem::path& dst,
                              const std::function<void(std::vector<SafeTensorOut>&, std::vector<std::vector<uint8_t>>&)>& edit) {
  SafeTensorsFile f(src);
  std::vector<std::vector<uint8_t>> data;
  for (const auto& t : f.tensors()) data.emplace_back(t.data, t.data + t.bytes());
  std::vector<SafeTensorOut> out;
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& t = f.tensors()[i];
    out.push_back({t.name, t.dtype, t.shape, nullptr, {}});
  }
  edit(out, data);
  for (size_t i = 0; i < out.size(); ++i) out[i].data = data[i].data();
  write_safetensors(dst, out, f.metadata());
  return dst;
}

TEST(PackedModel, LayoutScalesAndTraffic) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  const auto p = params_for(c);
  pack_checkpoint(dir / "m.st", c, p, {});
  const PackedModel m = PackedModel::open(dir / "m.st");
  SafeTensorsFile f(dir / "m.st");
  EXPECT_EQ(f.metadata_value("format"), "tritter-packed-v1");
  EXPECT_EQ(f.metadata_value("qweight_layout"), "T16");
  const auto table = tensor_table(c);
  const TensorInfo& q = *find_tensor(table, "model.layers.1.self_attn.k_proj.weight");  // (32, 64)
  const SafeTensor& qw = f.expect("model.layers.1.self_attn.k_proj.qweight", DType::U8, {32, 16});
  EXPECT_EQ(qw.bytes(), ternary_matrix_bytes(32, 64));
  const SafeTensor& sc = f.expect("model.layers.1.self_attn.k_proj.weight_scale", DType::F32, {1});
  float beta;
  std::memcpy(&beta, sc.data, 4);
  EXPECT_EQ(1.0f / beta, ternary_sigma(p.data() + q.offset, q.numel()));  // σ reproduced bit for bit
  EXPECT_EQ(m.weights().layers[1].k.sigma, ternary_sigma(p.data() + q.offset, q.numel()));
  // The levels round-trip through the kernel layout.
  std::vector<int8_t> levels(q.numel()), unpacked(q.numel());
  ternary_quantize(levels.data(), p.data() + q.offset, q.numel(), 1.0f / beta);
  ternary_matrix_unpack(unpacked.data(), qw.data, 32, 64);
  EXPECT_EQ(levels, unpacked);
  EXPECT_EQ(f.find("model.layers.1.self_attn.k_proj.weight"), nullptr);
  EXPECT_NE(f.find("model.layers.1.self_attn.q_norm.weight"), nullptr);
  // Decode traffic: ternary bytes + norms + the f32 head + one embedding row.
  size_t want = 0;
  for (const auto& t : table) {
    if (t.role == TensorRole::BitLinear) want += ternary_matrix_bytes(t.shape[0], t.shape[1]);
    if (t.role == TensorRole::Norm || t.role == TensorRole::LmHead) want += t.numel() * 4;
  }
  EXPECT_EQ(m.weights().bytes_per_token, want + c.hidden_size * 4);
  for (const auto& t : f.tensors()) {
    if (t.dtype == DType::F32) {
      EXPECT_TRUE(t.aligned(4)) << t.name;
    }
  }
}

// A mapped file re-laid out in T20 and back: the same codes, bytes_per_token down by the T20 saving, and the file
// written from the T20 model byte-identical to the one written from T16 (files store T16).
TEST(PackedModel, TernaryLayoutRoundTripAndWrite) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  pack_checkpoint(dir / "m.st", c, params_for(c), {});
  PackedModel m = PackedModel::open(dir / "m.st");
  const PackedModel ref = PackedModel::open(dir / "m.st");
  const size_t t16_bytes = m.weights().bytes_per_token;
  m.use_ternary_layout(TernaryLayout::T20, nullptr);
  size_t saved = 0;
  for (const auto& t : tensor_table(c)) {
    if (t.role != TensorRole::BitLinear) continue;
    saved += ternary_matrix_bytes(t.shape[0], t.shape[1]) -
             ternary_matrix_bytes(t.shape[0], t.shape[1], TernaryLayout::T20);
  }
  EXPECT_GT(saved, 0u);
  EXPECT_EQ(m.weights().bytes_per_token, t16_bytes - saved);
  for (size_t l = 0; l < m.weights().layers.size(); ++l) {
    for (Proj p : kProjs) {
      const TernaryMatrix& a = layer_matrix(m.weights().layers[l], p);
      const TernaryMatrix& b = layer_matrix(ref.weights().layers[l], p);
      if (b.data == nullptr) continue;
      ASSERT_EQ(a.layout, TernaryLayout::T20);
      EXPECT_EQ(a.sigma, b.sigma);
      std::vector<int8_t> qa(static_cast<size_t>(a.rows * a.cols)), qb(qa.size());
      ternary_matrix_unpack(qa.data(), a);
      ternary_matrix_unpack(qb.data(), b);
      ASSERT_EQ(qa, qb) << "layer " << l << " proj " << proj_index(p);
    }
  }
  write_packed_weights(dir / "from_t20.st", m.weights(), false);
  write_packed_weights(dir / "from_t16.st", ref.weights(), false);
  EXPECT_TRUE(test::read_file(dir / "from_t20.st") == test::read_file(dir / "from_t16.st"));
  m.use_ternary_layout(TernaryLayout::T16, nullptr);
  EXPECT_EQ(m.weights().bytes_per_token, t16_bytes);
  const TernaryMatrix& back = m.weights().layers[0].q;
  EXPECT_EQ(std::memcmp(back.data, ref.weights().layers[0].q.data, ternary_matrix_bytes(back.rows, back.cols)), 0);
}

TEST(PackedModel, Int8HeadTiedAndInMemoryEqualsFile) {
  test::TempDir dir;
  ConfigOverrides o;
  o.model_size = "test";
  o.tie_word_embeddings = true;
  const TritterConfig c = resolve_config(o);
  const auto p = params_for(c);
  pack_checkpoint(dir / "h.st", c, p, {HeadFormat::I8});
  const PackedModel m = PackedModel::open(dir / "h.st");
  EXPECT_EQ(m.weights().head.format, HeadFormat::I8);
  EXPECT_EQ(m.weights().head.f32, nullptr);
  const float* E = p.data();
  for (int64_t v = 0; v < c.vocab_size; v += 37) {
    for (int64_t j = 0; j < c.hidden_size; ++j) {
      const float w = E[v * c.hidden_size + j], s = m.weights().head.row_scale[v];
      ASSERT_LE(std::fabs(m.weights().head.i8[v * c.hidden_size + j] * s - w), s / 2 * (1 + 1e-6f));
    }
  }
  const PackedModel mem = PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, info.numel() * 4);
  }, {HeadFormat::I8}, nullptr);
  EXPECT_EQ(mem.weights().bytes_per_token, m.weights().bytes_per_token);
  EXPECT_EQ(std::memcmp(mem.weights().head.i8, m.weights().head.i8, c.vocab_size * c.hidden_size), 0);
}

TEST(PackedModelBad, EachFailureNamesFileAndTensor) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  pack_checkpoint(dir / "good.st", c, params_for(c), {});
  const std::string qname = "model.layers.0.mlp.up_proj.qweight";
  auto index_of = [&](const std::vector<SafeTensorOut>& o, const std::string& n) {
    for (size_t i = 0; i < o.size(); ++i) {
      if (o[i].name == n) return i;
    }
    return size_t{0};
  };
  std::string msg = open_error(rewrite(dir / "good.st", dir / "missing.st", [&](auto& o, auto& d) {
    const size_t i = index_of(o, qname);
    o.erase(o.begin() + i);
    d.erase(d.begin() + i);
  }));
  EXPECT_NE(msg.find("missing.st"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor '" + qname + "' is missing"), std::string::npos) << msg;

  msg = open_error(rewrite(dir / "good.st", dir / "shape.st", [&](auto& o, auto& d) {
    o[index_of(o, qname)].shape = {64, 256};
    d[index_of(o, qname)].resize(64 * 256);  // U8: the bytes the new shape says, so the file is well formed
  }));
  EXPECT_NE(msg.find("tensor '" + qname + "': shape [64, 256], expected [256, 16]"), std::string::npos) << msg;

  msg = open_error(rewrite(dir / "good.st", dir / "code11.st", [&](auto& o, auto& d) { d[index_of(o, qname)][5] = 0xff; }));
  EXPECT_NE(msg.find("tensor '" + qname + "': invalid 2-bit code 11"), std::string::npos) << msg;

  const std::string sname = "model.layers.1.self_attn.o_proj.weight_scale";
  msg = open_error(rewrite(dir / "good.st", dir / "nan.st", [&](auto& o, auto& d) {
    const float nan = NAN;
    std::memcpy(d[index_of(o, sname)].data(), &nan, 4);
  }));
  EXPECT_NE(msg.find("tensor '" + sname + "': scale nan, expected a finite value > 0"), std::string::npos) << msg;

  msg = open_error(rewrite(dir / "good.st", dir / "extra.st", [&](auto& o, auto& d) {
    o.push_back({"model.layers.0.mlp.up_proj.weight", DType::U8, {1}, nullptr, {}});
    d.push_back({0});
  }));
  EXPECT_NE(msg.find("unexpected tensor 'model.layers.0.mlp.up_proj.weight'"), std::string::npos) << msg;

  save_checkpoint(dir / "ck.st", c, params_for(c));
  msg = open_error(dir / "ck.st");
  EXPECT_NE(msg.find("format 'tritter-v1', expected 'tritter-packed-v1'"), std::string::npos) << msg;
}

// A T20 file: qweight_layout T20, shapes of 16×20 tiles, the same codes as the T16 file, 20 % fewer ternary bytes
// in the file and per token; writing it back gives either file byte for byte; a byte that is no T20 code and an
// unknown layout are named.
TEST(PackedModel, T20FileRoundTripAndBadBytesAreNamed) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  const auto p = params_for(c);
  pack_checkpoint(dir / "t16.st", c, p, {});
  PackOptions o20;
  o20.layout = TernaryLayout::T20;
  pack_checkpoint(dir / "t20.st", c, p, o20);
  const PackedModel a = PackedModel::open(dir / "t16.st"), b = PackedModel::open(dir / "t20.st");
  SafeTensorsFile f(dir / "t20.st");
  EXPECT_EQ(f.metadata_value("qweight_layout"), "T20");
  const SafeTensor& qw = f.expect("model.layers.1.self_attn.k_proj.qweight", DType::U8, {32, 16});  // (32, 64)
  EXPECT_EQ(qw.bytes(), ternary_matrix_bytes(32, 64, TernaryLayout::T20));
  size_t saved = 0;
  for (const auto& t : tensor_table(c)) {
    if (t.role != TensorRole::BitLinear) continue;
    saved += ternary_matrix_bytes(t.shape[0], t.shape[1]) - ternary_matrix_bytes(t.shape[0], t.shape[1], TernaryLayout::T20);
  }
  EXPECT_EQ(a.weights().bytes_per_token - b.weights().bytes_per_token, saved);
  EXPECT_EQ(SafeTensorsFile(dir / "t16.st").file_bytes() - f.file_bytes(), saved);
  for (size_t l = 0; l < a.weights().layers.size(); ++l) {
    for (Proj pr : kProjs) {
      const TernaryMatrix& ma = layer_matrix(a.weights().layers[l], pr);
      const TernaryMatrix& mb = layer_matrix(b.weights().layers[l], pr);
      if (ma.data == nullptr) continue;
      EXPECT_EQ(mb.layout, TernaryLayout::T20);
      std::vector<int8_t> qa(static_cast<size_t>(ma.rows * ma.cols)), qb(qa.size());
      ternary_matrix_unpack(qa.data(), ma);
      ternary_matrix_unpack(qb.data(), mb);
      ASSERT_EQ(qa, qb) << l;
    }
  }
  // Either model written in either layout: the same bytes as the other model written in that layout.
  for (TernaryLayout l : {TernaryLayout::T16, TernaryLayout::T20}) {
    write_packed_weights(dir / "wa.st", a.weights(), false, "", "", l);
    write_packed_weights(dir / "wb.st", b.weights(), false, "", "", l);
    EXPECT_TRUE(test::read_file(dir / "wa.st") == test::read_file(dir / "wb.st")) << ternary_layout_name(l);
    EXPECT_EQ(qweight_layout_of(SafeTensorsFile(dir / "wa.st")), l);
  }

  const std::string qname = "model.layers.0.mlp.up_proj.qweight";
  int invalid = 0;
  while (ternary_t20_first_invalid(reinterpret_cast<const uint8_t*>(&invalid), 1) < 0) ++invalid;
  std::string msg = open_error(rewrite(dir / "t20.st", dir / "bad20.st", [&](auto& o, auto& d) {
    for (size_t i = 0; i < o.size(); ++i) {
      if (o[i].name == qname) d[i][70] = static_cast<uint8_t>(invalid);
    }
  }));
  EXPECT_NE(msg.find("bad20.st"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor '" + qname + "': byte 70: found " + std::to_string(invalid) + ", expected a T20 code"),
            std::string::npos) << msg;
  {
    SafeTensorsFile g(dir / "t20.st");
    std::vector<SafeTensorOut> out;
    for (const auto& t : g.tensors()) out.push_back({t.name, t.dtype, t.shape, t.data, {}});
    auto meta = g.metadata();
    meta["qweight_layout"] = "T17";
    write_safetensors(dir / "t17.st", out, meta);
  }
  msg = open_error(dir / "t17.st");
  EXPECT_NE(msg.find("qweight_layout 'T17', expected 'T16' or 'T20'"), std::string::npos) << msg;
}

// A packed 4-bit head (tied embeddings): the packer's levels are the quantizer's of the embedding rows, the file
// equals the in-memory pack, and a level nibble 0, a padding nibble other than 8 or a multiplier 0 is named.
TEST(PackedModel, FourBitHeadTiedEqualsInMemoryAndBadLevelsAreNamed) {
  test::TempDir dir;
  ConfigOverrides o;
  o.model_size = "test";
  o.tie_word_embeddings = true;
  o.hidden_size = 80;  // 3 groups, the last half padding
  const TritterConfig c = resolve_config(o);
  const auto p = params_for(c);
  const int64_t V = c.vocab_size, D = c.hidden_size, rb = head_i4_row_bytes(D), G = head_i4_groups(D);
  pack_checkpoint(dir / "h.st", c, p, {HeadFormat::I4});
  const PackedModel m = PackedModel::open(dir / "h.st");
  ASSERT_EQ(m.weights().head.format, HeadFormat::I4);
  EXPECT_EQ(m.weights().head.f32, nullptr);
  std::vector<uint8_t> q(static_cast<size_t>(V * rb)), k(static_cast<size_t>(V * G));
  std::vector<float> r(static_cast<size_t>(V));
  head_i4_quantize_rows(q.data(), k.data(), r.data(), p.data(), V, D, "test");  // the embedding is the table's first
  EXPECT_EQ(std::memcmp(m.weights().head.q4, q.data(), q.size()), 0);
  EXPECT_EQ(std::memcmp(m.weights().head.mult, k.data(), k.size()), 0);
  EXPECT_EQ(std::memcmp(m.weights().head.row_scale, r.data(), r.size() * 4), 0);
  const PackedModel mem = PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, info.numel() * 4);
  }, {HeadFormat::I4}, nullptr);
  EXPECT_EQ(mem.weights().bytes_per_token, m.weights().bytes_per_token);
  EXPECT_EQ(std::memcmp(mem.weights().head.q4, m.weights().head.q4, q.size()), 0);

  auto index_of = [&](const std::vector<SafeTensorOut>& out, const std::string& n) {
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i].name == n) return i;
    }
    return size_t{0};
  };
  std::string msg = open_error(rewrite(dir / "h.st", dir / "nib0.st", [&](auto& t, auto& d) {
    d[index_of(t, "lm_head.q4")][size_t(2 * rb + 16 + 3)] = 0x80;  // row 2, group 1, byte 3: low nibble 0
  }));
  EXPECT_NE(msg.find("tensor 'lm_head.q4' row 2 column 35: level nibble 0, expected 1..15"), std::string::npos) << msg;
  msg = open_error(rewrite(dir / "h.st", dir / "pad.st", [&](auto& t, auto& d) {
    d[index_of(t, "lm_head.q4")][size_t(rb + 32 + 2)] = 0x98;  // row 1, group 2, byte 2: high nibble = padding column 82
  }));
  EXPECT_NE(msg.find("row 1 padding column 82: nibble 9, expected 8"), std::string::npos) << msg;
  msg = open_error(rewrite(dir / "h.st", dir / "k0.st", [&](auto& t, auto& d) {
    d[index_of(t, "lm_head.group_mult")][size_t(3 * G + 1)] = 0;
  }));
  EXPECT_NE(msg.find("tensor 'lm_head.group_mult' row 3 group 1: multiplier 0, expected 1..255"), std::string::npos) << msg;
}

TEST(PackedModelBad, NonFiniteWeightAndQuantFalse) {
  test::TempDir dir;
  const TritterConfig c = preset_config("test");
  auto p = params_for(c);
  p[find_tensor(tensor_table(c), "model.layers.0.self_attn.v_proj.weight")->offset + 3] = INFINITY;
  test::write_file(dir / "out.st", "old");
  EXPECT_THROW(pack_checkpoint(dir / "out.st", c, p, {}), Error);
  EXPECT_EQ(test::read_file(dir / "out.st"), "old");
  ConfigOverrides o;
  o.model_size = "test";
  o.quant = false;
  const TritterConfig fp = resolve_config(o);
  EXPECT_THROW(pack_checkpoint(dir / "fp.st", fp, params_for(fp), {}), Error);
}

}  // namespace
}  // namespace tritter
