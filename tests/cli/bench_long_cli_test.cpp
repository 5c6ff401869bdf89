// `tritter bench long`: the synthetically filled cache has the bytes the cache layout gives, the decode ran after
// the filled positions, and its errors on bad arguments.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "infer/kv_cache.h"
#include "model/config.h"
#include "util/test_util.h"

namespace tritter {
namespace {

std::vector<nlohmann::json> json_lines(const std::string& output) {
  std::vector<nlohmann::json> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

TEST(BenchLongCli, FilledCacheHasTheLayoutsBytes) {
  // test preset: 2 layers, 2 kv heads, head_dim 16. 1000 filled + 4 decoded positions.
  const auto r = test::run_cli("-t 1 bench long --size test --kv-cache f16,int4 --context 1000 --tg 4 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = json_lines(r.output);
  ASSERT_EQ(rows.size(), 2u) << r.output;
  // f16: keys and values of 1004 positions × 16 × 2 bytes per (layer, kv head), each 64-aligned (32128 is).
  const int64_t f16 = 2 * 2 * (2 * 1004 * 16 * 2);
  // int4: 1024 slots (whole 32-position key groups) × 8 bytes of key levels and of value levels, key min/scale per
  // group and channel (32 × 2 × 16 × 4), value min/scale per position and 16-channel group (1024 × 2 × 4), and the
  // f32 residual of 32 keys (32 × 16 × 4), per (layer, kv head).
  const int64_t int4 = 2 * 2 * (1024 * 8 * 2 + 32 * 2 * 16 * 4 + 1024 * 2 * 4 + 32 * 16 * 4);
  EXPECT_EQ(f16, 257024);
  EXPECT_EQ(int4, 122880);
  TritterConfig c = preset_config("test");
  c.max_position_embeddings = 1004;
  EXPECT_EQ(kv_cache_bytes(c, 1004, KvDtype::F16, 64), static_cast<size_t>(f16));
  EXPECT_EQ(kv_cache_bytes(c, 1004, KvDtype::I4, 64), static_cast<size_t>(int4));
  const int64_t want[] = {f16, int4};
  const char* names[] = {"f16", "int4"};
  for (size_t i = 0; i < 2; ++i) {
    const auto& j = rows[i];
    EXPECT_EQ(j["kv"], names[i]);
    EXPECT_EQ(j["context"], 1000);
    EXPECT_EQ(j["threads"], 1);
    EXPECT_EQ(j["cache_bytes"], want[i]);
    EXPECT_EQ(j["positions"], 1004);  // the fill, then the warm-up and 3 timed tokens
    EXPECT_EQ(j["timed_tokens"], 3);
    EXPECT_GT(j["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GE(j["peak_rss_bytes"].get<int64_t>(), j["rss_bytes"].get<int64_t>());
    EXPECT_GT(j["rss_bytes"].get<int64_t>(), want[i]);
  }
}

TEST(BenchLongCli, MarkdownRowsAndHeader) {
  const auto r = test::run_cli("-t 1 bench long --size test --kv-cache int8 --context 64,128 --tg 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("| shape | cache | context | threads | tokens/s"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| test | int8 | 64 | 1 | "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| test | int8 | 128 | 1 | "), std::string::npos) << r.output;
  const auto rows = test::run_cli("-t 1 bench long --size test --kv-cache int8 --context 64 --tg 2 --no-header");
  ASSERT_EQ(rows.exit_code, 0) << rows.output;
  EXPECT_EQ(rows.output.find("| shape |"), std::string::npos) << rows.output;
  EXPECT_EQ(rows.output.rfind("| test | int8 | 64 | 1 | ", 0), 0u) << rows.output;
}

// --attention-only: no model, one row per cell with the attention's time, the bytes a step reads (every cached
// key and value of every layer: for f32 and f16, 2 layers × 2 kv heads × 1001 positions × 16 dims × 2 (K and V)
// × 4 or 2 bytes) and the rate those give.
TEST(BenchLongCli, AttentionOnlyReadsEveryCachedRow) {
  const auto r = test::run_cli("-t 1 bench long --size test --attention-only --kv-cache f32,f16,int8 --context 1000 "
                               "--tg 3 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = json_lines(r.output);
  ASSERT_EQ(rows.size(), 3u) << r.output;
  const double kv_values = 2.0 * 2 * 1001 * 16 * 2;
  for (const auto& row : rows) {
    const std::string kv = row["kv"];
    const double ms = row["attention_ms"], bytes = row["bytes_read"], gbs = row["gb_per_s"];
    EXPECT_GT(ms, 0.0) << row.dump();
    EXPECT_NEAR(gbs, bytes / (ms * 1e-3) / 1e9, 1e-9 * gbs) << row.dump();
    EXPECT_GT(row["read_roof_gb_per_s"].get<double>(), 0.0) << row.dump();
    // Within the 64-byte alignment of each (layer, head) array; int8: a byte per value plus the {min, scale} of
    // each value row's 16-channel group and of each key group's channels.
    if (kv == "f32") EXPECT_NEAR(bytes, 4 * kv_values, 0.01 * 4 * kv_values) << row.dump();
    if (kv == "f16") EXPECT_NEAR(bytes, 2 * kv_values, 0.01 * 2 * kv_values) << row.dump();
    if (kv == "int8") EXPECT_NEAR(bytes, kv_values + 2.0 * 2 * 1001 * 8 + 2.0 * 2 * 1001 / 32 * 128, 0.03 * kv_values)
        << row.dump();
  }
  const auto md = test::run_cli("-t 1 bench long --size test --attention-only --kv-cache int4 --context 100 --tg 2");
  ASSERT_EQ(md.exit_code, 0) << md.output;
  EXPECT_NE(md.output.find("read roof GB/s"), std::string::npos) << md.output;
  EXPECT_NE(md.output.find("| test | int4 | 100 | 1 |"), std::string::npos) << md.output;
}

TEST(BenchLongCli, BadArguments) {
  auto r = test::run_cli("bench long --size test --context 64 --tg 1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--tg must be >= 2"), std::string::npos) << r.output;
  r = test::run_cli("bench long --size test --context 64,abc");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("'abc'"), std::string::npos) << r.output;
  r = test::run_cli("bench long --size test --kv-cache q3 --context 64");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("'q3'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tritter
