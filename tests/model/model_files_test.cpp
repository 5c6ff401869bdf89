// load_any_model on Tritter's own files: checkpoints in F32, BF16 and F16 (weights exact in bf16 and f16 give the
// same logits as the native load), detection of each kind, and the head choice (--head) on each Tritter kind.
#include "model/model_files.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include "kernels/head.h"
#include "model/checkpoint.h"
#include "model/foreign_fixture.h"
#include "util/test_util.h"

namespace tritter {
namespace {

TEST(ModelFiles, CheckpointsInF32Bf16AndF16LoadToTheNativeLogits) {
  test::TempDir dir;
  const TritterConfig c = hf_config_to_tritter(test::bitnet_config_json(), "t");
  std::vector<float> p = test::exact_params(c, 5);
  for (float& x : p) x = f16_to_f32(f32_to_f16(x));  // exact in f16 as well
  const std::vector<float> want = test::model_logits(test::native_model(c, p).weights());
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    const auto path = dir / (std::string(dtype_name(dt)) + ".safetensors");
    save_checkpoint(path, c, p, {}, dt);
    EXPECT_EQ(SafeTensorsFile(path).get("model.embed_tokens.weight").dtype, dt);
    EXPECT_EQ(detect_model_file(path), ModelFileKind::TritterCheckpoint);
    const LoadedModel m = load_any_model(path, nullptr);
    EXPECT_EQ(test::model_logits(m.model.weights()), want) << dtype_name(dt);
    Checkpoint ck = load_checkpoint(path, nullptr);
    EXPECT_EQ(std::vector<float>(ck.params.as<float>().begin(), ck.params.as<float>().end()), p) << dtype_name(dt);
  }
  test::expect_error([&] { save_checkpoint(dir / "x.st", c, p, {}, DType::I8); }, {"dtype I8, expected F32, BF16 or F16"});
}

// The int8 head the loaders build is the packer's (`tritter pack --head i8`) bit for bit, on a linear head and on
// a cosine one (unit rows quantized), for a checkpoint and for an f32 packed file; the bytes read per token drop
// by the f32 rows less the int8 ones.
TEST(ModelFiles, HeadChoiceI8IsThePackersInt8Head) {
  test::TempDir dir;
  for (HeadType ht : {HeadType::Linear, HeadType::CosineTied}) {
    TritterConfig c = hf_config_to_tritter(test::bitnet_config_json(), "t");
    c.head_type = ht;
    const std::vector<float> p = test::exact_params(c, 7);
    auto produce = [&](float* out, const TensorInfo& info, size_t) {
      std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * 4);
    };
    const PackedModel f32 = PackedModel::in_memory(c, produce, PackOptions{HeadFormat::F32}, nullptr);
    const PackedModel i8 = PackedModel::in_memory(c, produce, PackOptions{HeadFormat::I8}, nullptr);
    const std::vector<float> want = test::model_logits(i8.weights());
    ASSERT_NE(want, test::model_logits(f32.weights())) << "the int8 head must change some logit";
    const auto ckpt = dir / "ck.safetensors", packed = dir / "f32.safetensors", packed_i8 = dir / "i8.safetensors";
    save_checkpoint(ckpt, c, p, {}, DType::F32);
    pack_checkpoint(packed, c, p, PackOptions{HeadFormat::F32});
    pack_checkpoint(packed_i8, c, p, PackOptions{HeadFormat::I8});
    for (const auto& path : {ckpt, packed}) {
      const LoadedModel a = load_any_model(path, nullptr, LoadOptions{HeadChoice::I8});
      EXPECT_EQ(a.model.weights().head.format, HeadFormat::I8) << path;
      EXPECT_EQ(test::model_logits(a.model.weights()), want) << path;
      EXPECT_EQ(a.model.weights().bytes_per_token, i8.weights().bytes_per_token) << path;
      // auto keeps a Tritter file's head: f32 here, the full-precision logits
      const LoadedModel b = load_any_model(path, nullptr, LoadOptions{HeadChoice::Auto});
      EXPECT_EQ(b.model.weights().head.format, HeadFormat::F32) << path;
      EXPECT_EQ(test::model_logits(b.model.weights()), test::model_logits(f32.weights())) << path;
    }
    const int64_t V = c.vocab_size, D = c.hidden_size;
    EXPECT_EQ(f32.weights().bytes_per_token - i8.weights().bytes_per_token, static_cast<size_t>(V * D * 3 - V * 4));
    // An int8 file keeps its head under auto and i8, and refuses f32 (its f32 rows are gone).
    EXPECT_EQ(test::model_logits(load_any_model(packed_i8, nullptr, LoadOptions{HeadChoice::I8}).model.weights()), want);
    test::expect_error([&] { load_any_model(packed_i8, nullptr, LoadOptions{HeadChoice::F32}); },
                       {packed_i8.string().c_str(), "int8 LM head", "--head f32", "tritter pack --head f32"});
  }
  test::expect_error([] { head_choice_from_name("int8"); }, {"'int8'", "expected auto, f32, i8 or i4"});
}

// --head i4 quantizes the head at load from whatever the file holds (f32 rows of a checkpoint or packed file, a
// cosine head's unit rows, an int8 file's levels): the same head as quantize_head_int4 on the same rows, each
// weight within half its group's step of them, fewer bytes per token; a packed file keeps it.
TEST(ModelFiles, HeadChoiceI4QuantizesTheHeadAtLoad) {
  test::TempDir dir;
  for (HeadType ht : {HeadType::Linear, HeadType::CosineTied}) {
    TritterConfig c = hf_config_to_tritter(test::bitnet_config_json(), "t");
    c.head_type = ht;
    const std::vector<float> p = test::exact_params(c, 9);
    auto produce = [&](float* out, const TensorInfo& info, size_t) {
      std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * 4);
    };
    const int64_t V = c.vocab_size, D = c.hidden_size, G = head_i4_groups(D);
    const PackedModel f32 = PackedModel::in_memory(c, produce, PackOptions{HeadFormat::F32}, nullptr);
    const PackedModel i8 = PackedModel::in_memory(c, produce, PackOptions{HeadFormat::I8}, nullptr);
    const auto ckpt = dir / "ck.safetensors", packed = dir / "f32.safetensors", packed_i8 = dir / "i8.safetensors";
    save_checkpoint(ckpt, c, p, {}, DType::F32);
    pack_checkpoint(packed, c, p, PackOptions{HeadFormat::F32});
    pack_checkpoint(packed_i8, c, p, PackOptions{HeadFormat::I8});
    for (const auto& [path, source] : {std::pair{ckpt, &f32}, std::pair{packed, &f32}, std::pair{packed_i8, &i8}}) {
      SCOPED_TRACE(path.string() + (ht == HeadType::Linear ? " linear" : " cosine"));
      LoadedModel a = load_any_model(path, nullptr, LoadOptions{HeadChoice::I4});
      const HeadWeights& h = a.model.weights().head;
      ASSERT_EQ(h.format, HeadFormat::I4);
      std::vector<float> got(static_cast<size_t>(D)), want(static_cast<size_t>(D));
      for (int64_t v = 0; v < V; ++v) {
        head_row_values(h, v, D, got.data());
        head_row_values(source->weights().head, v, D, want.data());
        for (int64_t d = 0; d < D; ++d) {
          const double step = double(h.mult[v * G + d / kHeadI4Group]) * h.row_scale[v];
          ASSERT_LE(std::fabs(double(got[size_t(d)]) - want[size_t(d)]), step / 2 * (1 + 64 * 0x1p-24)) << v << " " << d;
        }
      }
      PackedModel same = PackedModel::in_memory(c, produce, PackOptions{source == &f32 ? HeadFormat::F32 : HeadFormat::I8}, nullptr);
      same.quantize_head_int4(nullptr);
      EXPECT_EQ(test::model_logits(a.model.weights()), test::model_logits(same.weights()));
      const size_t i4_bytes = static_cast<size_t>(V * head_i4_row_bytes(D) + V * G + V * 4);
      EXPECT_EQ(source->weights().bytes_per_token - a.model.weights().bytes_per_token,
                (source == &f32 ? static_cast<size_t>(V * D * 4) : static_cast<size_t>(V * D + V * 4)) - i4_bytes);
      // Written as a packed file (convert --head i4), it reads back to the same head and logits; f32 and i8
      // cannot come back from it.
      const auto out = dir / "i4.safetensors";
      write_packed_weights(out, a.model.weights(), false);
      LoadedModel back = load_any_model(out, nullptr);
      ASSERT_EQ(back.model.weights().head.format, HeadFormat::I4);
      EXPECT_EQ(test::model_logits(back.model.weights()), test::model_logits(a.model.weights()));
      EXPECT_EQ(back.model.weights().bytes_per_token, a.model.weights().bytes_per_token);
      EXPECT_EQ(std::memcmp(back.model.weights().head.q4, h.q4, static_cast<size_t>(V * head_i4_row_bytes(D))), 0);
      test::expect_error([&] { load_any_model(out, nullptr, LoadOptions{HeadChoice::I8}); },
                         {out.string().c_str(), "4-bit LM head", "int8 one", "tritter pack --head i8"});
      test::expect_error([&] { load_any_model(out, nullptr, LoadOptions{HeadChoice::F32}); },
                         {"4-bit LM head", "f32 one"});
    }
  }
}

}  // namespace
}  // namespace tritter
