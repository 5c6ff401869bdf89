// The curate config's TOML subset: a full example converts to the JSON the config reader takes, and each
// unsupported or malformed construct fails with the line and what was expected.
#include "data/config_toml.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/pipeline.h"
#include "util/test_util.h"

namespace tritter::data {
namespace {

TEST(ConfigToml, ExampleConvertsAndConfigures) {
  const char* text = R"(# curate.toml
text_key = "content"   # The Stack
languages = ["python", 'rust']
max_file_bytes = 4_194_304
min_alnum_fraction = 0.3
near_dedup = true

[minhash]
seed = 7
bands = 20
rows = 12
)";
  const nlohmann::json j = parse_toml_subset(text, "t.toml");
  EXPECT_EQ(j["text_key"], "content");
  EXPECT_EQ(j["languages"], nlohmann::json::array({"python", "rust"}));
  EXPECT_EQ(j["max_file_bytes"], 4194304);
  EXPECT_DOUBLE_EQ(j["min_alnum_fraction"].get<double>(), 0.3);
  EXPECT_EQ(j["minhash"]["rows"], 12);
  const CurateConfig c = curate_config_from_json(j);
  EXPECT_EQ(c.source.text_key, "content");
  EXPECT_EQ(c.minhash.bands, 20);
  EXPECT_EQ(c.minhash.seed, 7u);

  test::TempDir tmp;
  test::write_file(tmp / "c.toml", text);
  EXPECT_EQ(load_curate_config(tmp / "c.toml").source.max_file_bytes, 4194304u);
  EXPECT_EQ(parse_toml_subset("s = \"a\\\"b\\\\c\\n\"\n", "t")["s"], "a\"b\\c\n");
}

TEST(ConfigToml, ErrorsNameTheLine) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"a = 1\nb = \"open\n", "line 2: unterminated string"},
      {"a.b = 1\n", "line 1: bad key"},
      {"[a.b]\n", "line 1: bad table header"},
      {"a = 1\na = 2\n", "line 2: duplicate key 'a'"},
      {"a = [1, [2]]\n", "nested array"},
      {"a = [1, 2\n", "bad array"},
      {"a = 1979-05-27\n", "bad value"},
      {"a = 1 2\n", "text after value"},
      {"a = \"\\q\"\n", "unsupported escape"},
      {"a = { b = 1 }\n", "bad value"},
      // Bytes that are not UTF-8 (the fuzzer's find: quoted in a later error, they made json::dump throw).
      {"min_alnum_fraction = \"\xff\xfe\"\n", "not valid UTF-8"},
      {"# caf\xe9\n", "not valid UTF-8"},
  };
  for (const auto& [text, expect] : bad) {
    try {
      parse_toml_subset(text, "cfg.toml");
      ADD_FAILURE() << "no error for: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cfg.toml"), std::string::npos) << e.what();
    }
  }
}

// Integer keys take integers only: a float (1e308 cast to an integer was undefined behaviour, a fuzzing
// input) or, for sizes, a negative number (it wrapped to 2^64-1) is an error naming the key.
TEST(ConfigToml, IntegerKeysRejectFloatsAndNegativeSizes) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"max_file_bytes = 1e308\n", "'max_file_bytes': found 1e+308, expected a non-negative integer"},
      {"max_file_bytes = -1\n", "'max_file_bytes': found -1, expected a non-negative integer"},
      {"zstd_level = 2.5\n", "'zstd_level': found 2.5, expected a"},
      {"[minhash]\nnum_perm = 1e300\n", "'minhash.num_perm': found 1e+300"},
  };
  for (const auto& [text, expect] : bad) {
    try {
      curate_config_from_json(parse_toml_subset(text, "cfg.toml"));
      ADD_FAILURE() << "no error for: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace tritter::data
