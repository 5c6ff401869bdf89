// GGUF models: a BitNet file from an independent Python writer (tests/model/gguf_bitnet_writer.py: llama.cpp's
// conversion, TQ2_0 blocks) gives the native logits; Tritter's writer round-trips (write → read → same logits)
// with F32 embeddings and with Q8_0 ones (then the native model with the same Q8_0-rounded embedding); bad files
// name the file and key or tensor.
#include "model/gguf_model.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/foreign_fixture.h"
#include "model/model_files.h"
#include "util/test_util.h"

namespace tritter {
namespace {

struct Fixture {
  test::TempDir dir;
  nlohmann::json cfg = test::bitnet_config_json();
  TritterConfig c = hf_config_to_tritter(cfg, "test");
  std::vector<float> p = test::exact_params(c, 11);
  Fixture() { test::write_manifest(dir.path(), cfg, c, p); }
  std::filesystem::path write(const std::string& name, const std::string& opts = "") {
    const auto out = dir / name;
    EXPECT_EQ(test::run_python("gguf_bitnet_writer.py", (dir / "manifest.json").string() + " " +
                                                           (dir / "weights.f32").string() + " " + out.string() + " " + opts),
              0);
    return out;
  }
};

TEST(GgufModel, IndependentBitNetFileGivesTheNativeLogits) {
  Fixture fx;
  const auto path = fx.write("m.gguf");
  LoadedModel m = load_any_model(path, nullptr);
  EXPECT_EQ(m.kind, ModelFileKind::Gguf);
  EXPECT_TRUE(m.add_bos);
  EXPECT_EQ(m.model.config(), fx.c);
  const PackedModel native = test::native_model(fx.c, fx.p);
  EXPECT_EQ(test::model_logits(m.model.weights()), test::model_logits(native.weights()));
}

TEST(GgufModel, IndependentI2SFileGivesTheNativeLogits) {
  // bitnet.cpp's I2_S blocks, written by the Python writer from the published layout: the same codes and scale.
  Fixture fx;
  LoadedModel m = load_any_model(fx.write("i2.gguf", "i2s"), nullptr);
  const PackedModel native = test::native_model(fx.c, fx.p);
  EXPECT_EQ(test::model_logits(m.model.weights()), test::model_logits(native.weights()));
}

TEST(GgufModel, TritterWriterRoundTripsTheLogits) {
  Fixture fx;
  const PackedModel native = test::native_model(fx.c, fx.p);
  GgufWriteOptions o;
  o.embed = GgmlType::F32;
  write_gguf_model(fx.dir / "rt.gguf", native.weights(), o);
  {
    const GgufFile f(fx.dir / "rt.gguf");
    EXPECT_EQ(f.get_string("general.architecture"), "bitnet");
    EXPECT_EQ(f.get_string("bitnet.hidden_act"), "relu2");
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(f.value("tokenizer.ggml.tokens").array.size(), 264u);
    EXPECT_EQ(f.value("tokenizer.ggml.tokens").array[8 + 'A'].s, "A");
    EXPECT_EQ(f.value("tokenizer.ggml.tokens").array[8 + ' '].s, "\xc4\xa0");  // GPT-2's byte map: ' ' → U+0120
    EXPECT_EQ(f.get("blk.1.ffn_down.weight").type, GgmlType::TQ2_0);
    EXPECT_EQ(f.get("blk.1.ffn_down.weight").ne, (std::vector<int64_t>{512, 256}));
    EXPECT_EQ(f.get("blk.0.attn_q.scale").type, GgmlType::F32);
    EXPECT_EQ(f.find("output.weight"), nullptr);  // tied, as llama.cpp's bitnet graph expects
    EXPECT_EQ(f.tensors().size(), 2u + 2u * (11u + 7u));
  }
  EXPECT_EQ(test::model_logits(load_any_model(fx.dir / "rt.gguf", nullptr).model.weights()),
            test::model_logits(native.weights()));
  // Q8_0 embedding: the logits of the native model whose embedding went through Q8_0.
  write_gguf_model(fx.dir / "q8.gguf", native.weights(), GgufWriteOptions{});
  std::vector<float> p = fx.p;
  const auto table = tensor_table(fx.c);
  const TensorInfo* e = find_tensor(table, "model.embed_tokens.weight");
  std::vector<uint8_t> q(static_cast<size_t>(e->numel() / 32 * 34));
  quantize_q8_0(q.data(), p.data() + e->offset, e->numel());
  dequantize_q8_0(p.data() + e->offset, q.data(), e->numel());
  EXPECT_EQ(GgufFile(fx.dir / "q8.gguf").get("token_embd.weight").type, GgmlType::Q8_0);
  EXPECT_TRUE(gguf_head_is_quantized(GgufFile(fx.dir / "q8.gguf")));
  EXPECT_FALSE(gguf_head_is_quantized(GgufFile(fx.dir / "rt.gguf")));
  EXPECT_EQ(test::model_logits(load_any_model(fx.dir / "q8.gguf", nullptr, LoadOptions{HeadChoice::F32}).model.weights()),
            test::model_logits(test::native_model(fx.c, p).weights()));
  // auto: a Q8_0 head runs in int8, the packer's int8 head of the same Q8_0-rounded rows, read at a quarter of
  // the f32 bytes (the embedding rows a token looks up stay f32).
  const PackedModel native_i8 = PackedModel::in_memory(fx.c, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, p.data() + info.offset, static_cast<size_t>(info.numel()) * 4);
  }, PackOptions{HeadFormat::I8}, nullptr);
  const LoadedModel q8 = load_any_model(fx.dir / "q8.gguf", nullptr);
  EXPECT_EQ(q8.model.weights().head.format, HeadFormat::I8);
  EXPECT_EQ(q8.model.weights().bytes_per_token, native_i8.weights().bytes_per_token);
  EXPECT_EQ(test::model_logits(q8.model.weights()), test::model_logits(native_i8.weights()));
  // Written as a packed file, the int8 head carries over bit for bit (levels, row scales, head "i8").
  write_packed_weights(fx.dir / "q8.safetensors", q8.model.weights(), q8.add_bos);
  const PackedModel q8_packed = PackedModel::open(fx.dir / "q8.safetensors");
  EXPECT_EQ(q8_packed.file()->metadata().at("head"), "i8");
  EXPECT_EQ(q8_packed.weights().head.format, HeadFormat::I8);
  EXPECT_EQ(test::model_logits(q8_packed.weights()), test::model_logits(native_i8.weights()));
  // And the GGUF converts back to a Tritter packed file bit for bit.
  LoadedModel back = load_any_model(fx.dir / "rt.gguf", nullptr);
  write_packed_weights(fx.dir / "back.safetensors", back.model.weights(), back.add_bos);
  EXPECT_EQ(test::model_logits(load_any_model(fx.dir / "back.safetensors", nullptr).model.weights()),
            test::model_logits(native.weights()));
}

TEST(GgufModel, BadFilesNameTheFileAndKey) {
  Fixture fx;
  test::expect_error([&] { load_any_model(fx.write("nt.gguf", "no-tokenizer"), nullptr); },
                     {"nt.gguf': key 'tokenizer.ggml.model' is missing"});
  test::expect_error([&] { load_any_model(fx.write("na.gguf", "no-act"), nullptr); },
                     {"na.gguf': key 'bitnet.hidden_act' is absent (llama.cpp then runs SiLU)"});
  test::expect_error([&] { load_any_model(fx.write("i2.gguf", "i2s-bad"), nullptr); },
                     {"i2.gguf': tensor 'blk.0.attn_q.weight': I2_S value 0 has code 3, expected 0, 1 or 2"});
  // Truncated: the reader names the tensor whose data runs past the end.
  const auto good = fx.write("t.gguf");
  std::string bytes = test::read_file(good);
  test::write_file(fx.dir / "cut.gguf", bytes.substr(0, bytes.size() - 100));
  test::expect_error([&] { load_any_model(fx.dir / "cut.gguf", nullptr); }, {"cut.gguf': tensor '", "past the end"});
  test::write_file(fx.dir / "magic.gguf", "GGUX" + bytes.substr(4));
  test::expect_error([&] { load_any_model(fx.dir / "magic.gguf", nullptr); }, {"magic.gguf': not a model file Tritter reads"});
}

}  // namespace
}  // namespace tritter

namespace tritter {
namespace {

// The Hub's own GGUF parser (npm @huggingface/gguf, pinned in package.json) reads what Tritter writes the same
// way Tritter does. Skipped when `npm ci` has not been run in the source tree.
TEST(GgufModel, HuggingFaceGgufParserReadsTritterFiles) {
  const std::filesystem::path root = TRITTER_SOURCE_DIR;
  if (!std::filesystem::exists(root / "node_modules" / "@huggingface" / "gguf")) GTEST_SKIP() << "run `npm ci` first";
  Fixture fx;
  const PackedModel native = test::native_model(fx.c, fx.p);
  write_gguf_model(fx.dir / "hf.gguf", native.weights(), GgufWriteOptions{});
  const std::string out_file = (fx.dir / "hf.json").string();
  const std::string cmd = "cd " + root.string() + " && node tests/model/gguf_hf_check.mjs " + (fx.dir / "hf.gguf").string() +
                          " > " + out_file;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const nlohmann::json j = nlohmann::json::parse(test::read_file(out_file));
  const GgufFile f(fx.dir / "hf.gguf");
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["architecture"], "bitnet");
  EXPECT_EQ(j["tokenizer"], "gpt2");
  EXPECT_EQ(j["tokens"], 264);
  EXPECT_EQ(j["alignment"], 32);
  EXPECT_EQ(j["data_offset"].get<size_t>(), f.data_offset());
  ASSERT_EQ(j["tensors"].size(), f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    EXPECT_EQ(j["tensors"][i]["name"], t.name);
    EXPECT_EQ(j["tensors"][i]["type"].get<uint32_t>(), static_cast<uint32_t>(t.type)) << t.name;
    EXPECT_EQ(j["tensors"][i]["ne"].get<std::vector<int64_t>>(), t.ne) << t.name;
    EXPECT_EQ(j["tensors"][i]["offset"].get<uint64_t>(), t.offset) << t.name;
  }
}

// rope_scaling: llama.cpp's rope.scaling.* keys as its converter writes them (linear, yarn) are read; Tritter's
// writer round-trips every type (linear and yarn under 'bitnet' with llama.cpp's keys, llama3 and dynamic, which
// llama.cpp's bitnet graph cannot apply, under 'tritter'); an unknown scaling type names the key and value.
TEST(GgufModel, RopeScalingReadsLlamaCppKeysAndRoundTrips) {
  for (const nlohmann::json& rs : test::rope_scaling_examples()) {
    const std::string type = rs["rope_type"];
    Fixture fx;
    fx.cfg["rope_scaling"] = rs;
    fx.c = hf_config_to_tritter(fx.cfg, "test");
    test::write_manifest(fx.dir.path(), fx.cfg, fx.c, fx.p);
    const PackedModel native = test::native_model(fx.c, fx.p);
    const std::vector<float> want = test::model_logits(native.weights());
    if (type == "linear" || type == "yarn") {
      const LoadedModel m = load_any_model(fx.write("in.gguf"), nullptr);
      EXPECT_EQ(m.model.config(), fx.c) << type;
      EXPECT_EQ(test::model_logits(m.model.weights()), want) << type;
    }
    GgufWriteOptions o;
    o.embed = GgmlType::F32;
    write_gguf_model(fx.dir / "rt.gguf", native.weights(), o);
    const GgufFile f(fx.dir / "rt.gguf");
    const bool llama_cpp = type == "linear" || type == "yarn";
    EXPECT_EQ(f.get_string("general.architecture"), llama_cpp ? "bitnet" : "tritter") << type;
    if (llama_cpp) {
      EXPECT_EQ(f.get_string("bitnet.rope.scaling.type"), type);
      EXPECT_EQ(f.get_number("bitnet.rope.scaling.factor"), rs["factor"].get<double>());
    }
    if (type == "yarn") {
      EXPECT_EQ(f.get_int("bitnet.rope.scaling.original_context_length"), 64);
      EXPECT_EQ(f.get_number("bitnet.rope.scaling.attn_factor"), 1.25);
    }
    const LoadedModel back = load_any_model(fx.dir / "rt.gguf", nullptr);
    EXPECT_EQ(back.model.config(), fx.c) << type;
    EXPECT_EQ(test::model_logits(back.model.weights()), want) << type;
  }
  Fixture fx;
  test::expect_error([&] { load_any_model(fx.write("lr.gguf", "rope-longrope"), nullptr); },
                     {"lr.gguf': key 'bitnet.rope.scaling.type': found 'longrope', expected 'none', 'linear' or 'yarn'"});
}

}  // namespace
}  // namespace tritter
