// A model with its own tokenizer, end to end: `train-tokenizer` writes a small code BPE, `train --tokenizer` trains
// a 'test'-size model on its ids (vocab_size = the tokenizer's size) and keeps the tokenizer.json in every
// checkpoint; `export` carries it into the packed file, the GGUF (tokenizer.ggml.*) and the HF folder; `tokenize
// -m` on each gives the tokenizer's own ids, `generate` decodes text, `eval` counts bits per byte of text and
// equals the trainer's own validation figure; a chat template travels with it through convert; a resume keeps the
// tokenizer and refuses another.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/packed_model.h"
#include "text/hf_tokenizer.h"
#include "util/test_util.h"

namespace tritter {
namespace {

namespace fs = std::filesystem;

// The checkpoint `latest` names in a run directory.
fs::path latest_model(const fs::path& run) {
  std::string name = test::read_file(run / "latest");
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return run / name / "model.safetensors";
}

// The ids `tokenize --ids` prints: its first line of integers.
std::string ids_line(const test::CliResult& r) {
  std::smatch m;
  return std::regex_search(r.output, m, std::regex("(^|\n)([0-9]+( [0-9]+)*)\n")) ? m[2].str() : "";
}

TEST(OwnTokenizer, TrainExportGenerateEvalKeepTheTokenizer) {
  test::TempDir tmp;
  const std::string dir = tmp.path().string();
  fs::create_directories(tmp / "data");
  for (int i = 0; i < 24; ++i) {
    std::string text;
    for (int k = 0; k < 20; ++k) {
      const std::string n = std::to_string(i * 20 + k);
      text += "def handle_" + n + "(request, value=" + n + "):\n    if value > 10:\n        return request.get(value)\n"
              "    return None\n\n";
    }
    test::write_file(tmp / "data" / ("m" + std::to_string(i) + ".py"), text);
  }
  auto r = test::run_cli("train-tokenizer -i " + dir + "/data -o " + dir + "/tok.json --vocab-size 320");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string tok_text = test::read_file(tmp / "tok.json");
  const int64_t V = parse_tokenizer_json(tok_text, "tok.json")->vocab_size();
  ASSERT_EQ(V, 320);

  // The 'test' shape at width 256, 1 layer: GGUF's TQ2_0 blocks need matrices 256 columns wide.
  TritterConfig c = preset_config("test");
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.head_dim = 64;  // 4 heads x 64 = 256
  c.num_hidden_layers = 1;
  save_config_file(c, dir + "/c.json");
  const std::string train = "train --size " + dir + "/c.json --data " + dir + "/data --val-fraction 0.25 --batch 2 --seq 32 "
                            "--eval-every 2 --eval-windows 2 --checkpoint-every 1 --log-every 1 --out " + dir + "/run";
  r = test::run_cli(train + " --steps 2 --tokenizer " + dir + "/tok.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double train_val = test::number_after(r.output, "val bpb ([0-9.]+)");
  ASSERT_TRUE(std::isfinite(train_val)) << r.output;
  const fs::path ckpt = latest_model(tmp / "run");
  {
    const SafeTensorsFile f(ckpt);
    EXPECT_EQ(tritter_file_tokenizer_json(f), tok_text);
    EXPECT_EQ(config_from_metadata(f, kCheckpointFormat).vocab_size, V);
    EXPECT_FALSE(checkpoint_add_bos(f));
  }

  // eval on the checkpoint: the trainer's validation windows, the same forward, the same figure.
  r = test::run_cli("eval -m " + dir + "/run --data " + dir + "/data --split val --val-fraction 0.25 --batch 2 "
                    "--seq 32 --windows 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double eval_val = test::number_after(r.output, "([0-9]+\\.[0-9]+) bits/byte");
  // Both print 4 decimals: each within 5e-5 of a figure the same fp32 forward computed.
  EXPECT_NEAR(eval_val, train_val, 1e-4 + 1e-6) << r.output;

  r = test::run_cli("export " + dir + "/run -o " + dir + "/m.tpk --gguf " + dir + "/m.gguf --hf " + dir + "/hf");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(tritter_file_tokenizer_json(SafeTensorsFile(tmp / "m.tpk")), tok_text);
  r = test::run_cli("inspect " + dir + "/m.tpk");  // a summary line, not the tokenizer.json text
  EXPECT_NE(r.output.find(", 320 ids ("), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\"merges\""), std::string::npos);

  // A chat template travels with the tokenizer: HF folder -> packed file -> HF folder.
  const std::string tmpl = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}</s>{% endfor %}";
  test::write_file(tmp / "hf" / "tokenizer_config.json",
                   nlohmann::json{{"add_bos_token", false}, {"chat_template", tmpl}}.dump());
  r = test::run_cli("convert " + dir + "/hf " + dir + "/chat.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  {
    const SafeTensorsFile f(tmp / "chat.safetensors");
    EXPECT_EQ(tritter_file_tokenizer_json(f), tok_text);
    ASSERT_TRUE(f.metadata().count(kChatTemplateMetadataKey));
    EXPECT_EQ(f.metadata().at(kChatTemplateMetadataKey), tmpl);
  }
  r = test::run_cli("convert " + dir + "/chat.safetensors " + dir + "/hf2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(test::read_file(tmp / "hf2" / "tokenizer_config.json"))["chat_template"], tmpl);

  // The same ids from the tokenizer file and from each container.
  const std::string text = "def handle(request):\n    return None\n";
  test::write_file(tmp / "prompt.py", text);
  const std::string want = ids_line(test::run_cli("tokenize --ids --no-bos --tokenizer " + dir + "/tok.json --file " + dir + "/prompt.py"));
  ASSERT_FALSE(want.empty());
  EXPECT_LT(std::count(want.begin(), want.end(), ' ') + 1, static_cast<long>(text.size()));  // merges, not bytes
  for (const char* m : {"/m.tpk", "/m.gguf", "/hf", "/run"}) {
    r = test::run_cli(std::string("tokenize --ids --no-bos -m ") + dir + m + " --file " + dir + "/prompt.py");
    EXPECT_EQ(ids_line(r), want) << m << ": " << r.output;
  }

  // generate decodes through the tokenizer: the same greedy text from the packed file and the HF folder.
  const std::string gen = " -p 'def handle' -n 12 --temperature 0";
  const auto g_packed = test::run_cli("generate -m " + dir + "/m.tpk" + gen);
  const auto g_hf = test::run_cli("generate -m " + dir + "/hf" + gen);
  ASSERT_EQ(g_packed.exit_code, 0) << g_packed.output;
  ASSERT_EQ(g_hf.exit_code, 0) << g_hf.output;
  const auto text_of = [](const std::string& out) { return out.substr(0, out.find("\nprompt: ")); };
  EXPECT_EQ(text_of(g_packed.output), text_of(g_hf.output));
  EXPECT_EQ(text_of(g_packed.output).rfind("def handle", 0), 0u) << g_packed.output;  // the prompt, decoded back
  const std::string prompt_ids = ids_line(test::run_cli("tokenize --ids --no-bos --tokenizer " + dir + "/tok.json 'def handle'"));
  const std::string prompt_tokens = std::to_string(std::count(prompt_ids.begin(), prompt_ids.end(), ' ') + 1);
  EXPECT_NE(g_packed.output.find("prompt: " + prompt_tokens + " tokens"), std::string::npos) << g_packed.output;

  // A resume keeps the run's tokenizer; naming one again is refused.
  r = test::run_cli("train --resume " + dir + "/run --steps 3 --tokenizer " + dir + "/tok.json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--tokenizer is the run's own"), std::string::npos) << r.output;
  r = test::run_cli("train --resume " + dir + "/run --steps 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path last = latest_model(tmp / "run");
  EXPECT_EQ(tritter_file_tokenizer_json(SafeTensorsFile(last)), tok_text);

  // A missing tokenizer file is named.
  r = test::run_cli(train + " --steps 1 --overwrite --tokenizer " + dir + "/nope.json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("nope.json"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tritter
