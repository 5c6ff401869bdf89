// llama.cpp runs a GGUF file Tritter writes and gives the same next-token distribution (docs/model-files.md).
// llama.cpp's "bitnet" graph (src/models/bitnet.cpp) gates its FFN with SiLU(gate)·up where BitNet b1.58 2B4T and
// Tritter use relu²(gate)·up, so the check runs a model whose FFN contributes exactly nothing in both (its pre-FFN
// norm gains are 0: gate = up = 0, silu(0)·0 = relu²(0)·0 = 0, down(0) = 0): embeddings, attention with its
// sub-norm, RoPE (NEOX in both), GQA, the norms and the tied head are compared. Tolerance: both quantize
// activations before every ternary matmul with absmax int8 (Tritter per token, llama.cpp per 256-value block), a
// rounding of at most half a step, i.e. ≤ 1/254 of the row's largest |x| per element; to first order each of the
// 4 quantized matmuls per layer (q, k, v, o) adds at most 1/127 of the largest logit's size to a logit, so
// |Δ log p| ≤ 2 · 4 · L / 127 · max|z| (the 2: a log-softmax moves by at most twice the largest logit change).
// Runs node-llama-cpp's prebuilt binaries (tests/llama_cpp: `npm ci` there); skips, saying why, without them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/context.h"
#include "infer/engine.h"
#include "model/foreign_fixture.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"
#include "util/test_util.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;

// The node_modules that holds node-llama-cpp, or "" (then *why says where it was looked for).
fs::path llama_cpp_modules(std::string* why) {
  std::vector<fs::path> places;
  if (const char* env = std::getenv("TRITTER_NODE_LLAMA_CPP")) places.emplace_back(fs::path(env) / "node_modules");
  places.emplace_back(fs::path(TRITTER_SOURCE_DIR) / "tests/llama_cpp/node_modules");
  places.emplace_back(fs::path(TRITTER_SOURCE_DIR) / "node_modules");
  for (const auto& p : places) if (fs::exists(p / "node-llama-cpp/package.json")) return p;
  *why = "node-llama-cpp is not installed (npm ci in tests/llama_cpp, or set TRITTER_NODE_LLAMA_CPP to a folder "
         "holding node_modules/node-llama-cpp)";
  return {};
}

TEST(LlamaCpp, ExportedGgufGivesTritterNextTokenDistribution) {
  std::string why;
  const fs::path modules = llama_cpp_modules(&why);
  if (modules.empty()) GTEST_SKIP() << why;
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  test::TempDir dir;
  const TritterConfig c = hf_config_to_tritter(test::bitnet_config_json(), "test");
  std::vector<float> p = test::exact_params(c, 17);
  for (const TensorInfo& t : tensor_table(c)) {
    if (t.name.find("pre_feedforward_layernorm") != std::string::npos) std::fill_n(p.data() + t.offset, t.numel(), 0.0f);
  }
  const PackedModel m = test::native_model(c, p);
  GgufWriteOptions o;
  o.embed = GgmlType::F32;
  write_gguf_model(dir / "m.gguf", m.weights(), o);
  fs::create_symlink(modules, dir / "node_modules");
  fs::copy_file(fs::path(TRITTER_SOURCE_DIR) / "tests/llama_cpp/llama_cpp_logits.mjs", dir / "run.mjs");
  const std::vector<std::vector<int32_t>> prompts = {
      {80, 109, 116, 116, 119}, {1, 72, 101, 108, 108, 111, 33}, {108, 109, 110, 40, 120, 41, 58}, {200, 9, 30, 31}};
  const std::string cmd = "cd " + dir.path().string() + " && node run.mjs m.gguf '" + nlohmann::json(prompts).dump() +
                          "' 2> node.err";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int rc = pclose(pipe);
  if (rc != 0) GTEST_SKIP() << "node-llama-cpp's prebuilt binary did not run here: " << test::read_file(dir / "node.err");
  std::istringstream lines(out);
  Context ctx;
  const int64_t V = c.vocab_size;
  const double L = static_cast<double>(c.num_hidden_layers);
  size_t k = 0, same_top = 0;
  for (std::string line; std::getline(lines, line); ++k) {
    ASSERT_LT(k, prompts.size());
    const auto top = nlohmann::json::parse(line)["top"];
    Engine e(ctx, m.weights(), EngineOptions{});
    std::vector<float> z(static_cast<size_t>(V));
    e.forward(prompts[k], z.data(), false);
    double zmax = 0, lse = 0;
    for (float v : z) zmax = std::max(zmax, std::fabs(static_cast<double>(v)));
    const double zhi = *std::max_element(z.begin(), z.end());
    for (float v : z) lse += std::exp(v - zhi);
    lse = zhi + std::log(lse);
    const double tol = 2.0 * 4.0 * L / 127.0 * zmax;
    double worst = 0;
    int32_t worst_id = -1;
    for (const auto& e2 : top) {
      const int32_t id = e2[0].get<int32_t>();
      const double lp = std::log(e2[1].get<double>()), lt = z[static_cast<size_t>(id)] - lse;
      if (std::fabs(lp - lt) > worst) worst = std::fabs(lp - lt), worst_id = id;
    }
    const int32_t ours = static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
    same_top += top[0][0].get<int32_t>() == ours;
    std::printf("prompt %zu: llama.cpp top %d, Tritter top %d; worst |d log p| %.4f (token %d), tolerance %.4f\n", k,
                top[0][0].get<int32_t>(), ours, worst, worst_id, tol);
    EXPECT_LE(worst, tol) << "prompt " << k << ": token " << worst_id;
  }
  EXPECT_EQ(k, prompts.size()) << out;
  EXPECT_GE(same_top, prompts.size() - 1) << "the most likely token differs on more than one prompt";
}

}  // namespace
}  // namespace tritter
