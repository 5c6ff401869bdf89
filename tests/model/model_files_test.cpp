// load_any_model on Tritter's own files: checkpoints in F32, BF16 and F16 (weights exact in bf16 and f16 give the
// same logits as the native load), and detection of each kind.
#include "model/model_files.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tritter
