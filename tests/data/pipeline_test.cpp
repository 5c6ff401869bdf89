// The pipeline end to end on small temporary corpora: counts, record format, dedup, planted secrets that must
// appear nowhere in the output, bad inputs that are counted and never crash the run, atomic output, config
// errors, Triton extraction and the CLI.
#include "data/pipeline.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/memory.h"
#include "data/secret_cases.h"
#include "data/secret_gen.h"
#include "data/secret_scan.h"
#include "data/zstd_io.h"
#include "io/atomic_file.h"
#include "train/data.h"
#include "util/test_util.h"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace tritter::data {
namespace {

using test::TempDir;
using test::write_file;

std::vector<json> read_shards(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().starts_with("shard-")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<json> out;
  for (const auto& f : files) {
    LineReader r(f, SIZE_MAX);
    std::string line;
    while (r.next(line) == LineReader::Status::Line) out.push_back(json::parse(line));
  }
  return out;
}

std::string read_zstd(const fs::path& f) {
  LineReader r(f, SIZE_MAX);
  std::string line, all;
  while (r.next(line) == LineReader::Status::Line) all += line + "\n";
  return all;
}

std::string clean_python(int i) {
  std::string s = "\"\"\"Module " + std::to_string(i) + ".\"\"\"\n\n";
  for (int k = 0; k < 6; ++k)
    s += "def func_" + std::to_string(i) + "_" + std::to_string(k) + "(value_" + std::to_string(k) +
         "):\n    \"\"\"Return a value.\"\"\"\n    return value_" + std::to_string(k) + " * " +
         std::to_string(i * 7 + k) + " + compute_" + std::to_string(i + k) + "(value_" + std::to_string(k) + ")\n\n";
  return s;
}

// A ustar member written by hand (header, data, padding); type '0' file, 'L' GNU long name, '5' directory.
std::string tar_member(const std::string& name, const std::string& data, char type = '0', bool bad_checksum = false) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 99));
  std::snprintf(h.data() + 100, 8, "%07o", 0644);
  std::snprintf(h.data() + 108, 8, "%07o", 0);
  std::snprintf(h.data() + 116, 8, "%07o", 0);
  std::snprintf(h.data() + 124, 12, "%011o", unsigned(data.size()));
  std::snprintf(h.data() + 136, 12, "%011o", 0);
  h[156] = type;
  std::memcpy(h.data() + 257,
              "ustar\0"
              "00",
              8);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum + (bad_checksum ? 1 : 0));
  std::string padded = data;
  padded.resize((data.size() + 511) / 512 * 512, '\0');
  return h + padded;
}

// "<prefix><i><suffix>" (built by appending: GCC 12 warns falsely on `"x" + std::to_string(i)`).
std::string numbered(const char* prefix, size_t i, const char* suffix) {
  std::string s(prefix);
  s += std::to_string(i);
  s += suffix;
  return s;
}

std::unique_ptr<Context> make_ctx(int threads) {
  auto ctx = std::make_unique<Context>();
  ctx->threads = threads;
  return ctx;
}

TEST(Pipeline, EndToEnd) {
  TempDir tmp;
  fs::create_directories(tmp / "src/pkg");
  fs::create_directories(tmp / "src/node_modules/dep");
  write_file(tmp / "src/pkg/a.py", clean_python(1));
  write_file(tmp / "src/pkg/a_copy.py", clean_python(1) + "\n\n");  // exact duplicate after whitespace folding
  std::string near = clean_python(2);
  write_file(tmp / "src/pkg/b.py", near);
  near.replace(near.find("Module 2"), 8, "Module two");  // near duplicate
  write_file(tmp / "src/pkg/b_near.py", near);
  write_file(tmp / "src/pkg/c.py", clean_python(3) + "import pickle\nobj = pickle.loads(blob)\n");
  write_file(tmp / "src/pkg/lib.rs", "pub fn f(v: Option<u32>) -> u32 {\n    v.unwrap()\n}\n");
  write_file(tmp / "src/pkg/leak.py", clean_python(4) + "TOKEN = 'ghp_AIxNKu8iS2G8NPRVdD53X83RZJzzzzgEOzdm'\n");
  write_file(tmp / "src/node_modules/dep/index.js", "module.exports = 1;\n");
  write_file(tmp / "src/pkg/image.png", std::string("\x89PNG\r\n\x1a\n\0\0", 10));
  auto ctx_owner = make_ctx(2);
  Context& ctx = *ctx_owner;
  CurateConfig cfg;
  const CurateReport rep = curate({(tmp / "src").string()}, tmp / "out", cfg, ctx);
  EXPECT_EQ(rep.docs_in, 7u);
  EXPECT_EQ(rep.rejected_secret, 1u);
  EXPECT_EQ(rep.rejects_by_rule.at("github-pat"), 1u);
  EXPECT_EQ(rep.exact_duplicates, 1u);
  EXPECT_EQ(rep.near_duplicates, 1u);
  EXPECT_EQ(rep.docs_out, 4u);
  EXPECT_EQ(rep.skipped.at("vendored-dir"), 1u);
  EXPECT_EQ(rep.skipped.at("unknown-language"), 1u);
  EXPECT_EQ(rep.label_docs_by_rule.at("py.unsafe-deserialization"), 1u);
  EXPECT_EQ(rep.label_docs_by_rule.at("rs.unwrap"), 1u);
  EXPECT_NEAR(rep.duplicate_ratio(), 2.0 / 6.0, 1e-12);

  const auto recs = read_shards(tmp / "out");
  ASSERT_EQ(recs.size(), 4u);
  for (const auto& r : recs) {
    ASSERT_TRUE(r["text"].is_string());
    ASSERT_TRUE(r["id"].get<std::string>().starts_with("xxh3:"));
    const auto& m = r["metadata"];
    EXPECT_TRUE(m["language"] == "python" || m["language"] == "rust");
    EXPECT_TRUE(m["labels"].is_array());
    EXPECT_TRUE(m["quality"]["score"].is_number());
    EXPECT_EQ(m["secrets"]["status"], "clean");
    EXPECT_EQ(m["path"].get<std::string>().find("leak.py"), std::string::npos);
  }
  // Input order is kept, and the first of each duplicate group survives.
  EXPECT_NE(recs[0]["metadata"]["path"].get<std::string>().find("a.py"), std::string::npos);
  const json report = json::parse(test::read_file(tmp / "out/report.json"));
  EXPECT_EQ(report["docs_out"], 4);
  EXPECT_EQ(report["format"], "tritter-curate-report/1");
  EXPECT_TRUE(fs::exists(tmp / "out/summary.log"));
  const std::string rejects = test::read_file(tmp / "out/rejects.ndjson");
  EXPECT_NE(rejects.find("\"rule\":\"github-pat\""), std::string::npos);
  EXPECT_NE(rejects.find("leak.py"), std::string::npos);
  EXPECT_EQ(rejects.find("ghp_AIxNKu8"), std::string::npos);
  // The trainer's reader, pointed at the whole output directory, sees exactly the kept documents.
  train::DataOptions opts;
  opts.paths = {(tmp / "out").string()};
  const train::TokenData data(opts);
  EXPECT_EQ(data.stats().documents, 4);
  // duplicates.ndjson names each dropped copy and the id of the document kept in its place.
  const std::string dups = test::read_file(tmp / "out/duplicates.ndjson");
  EXPECT_NE(dups.find("\"kind\":\"exact\""), std::string::npos) << dups;
  EXPECT_NE(dups.find("a_copy.py"), std::string::npos) << dups;
  EXPECT_NE(dups.find("\"kind\":\"near\""), std::string::npos) << dups;
  EXPECT_NE(dups.find("b_near.py"), std::string::npos) << dups;
  EXPECT_NE(dups.find(recs[0]["id"].get<std::string>()), std::string::npos) << dups;
  // No temporary directory is left beside the output.
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST(Pipeline, PlantedSecretsAppearNowhere) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  const auto cases = test_cases::secret_positives();
  for (size_t i = 0; i < cases.size(); ++i) {
    // The secret sits in the middle of an otherwise clean, unique file.
    const std::string body = clean_python(int(100 + i));
    const size_t mid = body.find("\n\n", body.size() / 2);
    write_file(tmp / "in" / numbered("f", i, ".py"), body.substr(0, mid) + "\n" + cases[i].text + body.substr(mid));
  }
  write_file(tmp / "in/clean.py", clean_python(999));
  auto ctx_owner = make_ctx(2);
  Context& ctx = *ctx_owner;
  const CurateReport rep = curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, ctx);
  EXPECT_EQ(rep.docs_in, cases.size() + 1);
  EXPECT_EQ(rep.rejected_secret, cases.size());
  EXPECT_EQ(rep.docs_out, 1u);
  for (const auto& c : cases) EXPECT_GE(rep.rejects_by_rule.count(c.rule), 1u) << c.rule;
  // Grep every output file (shards decompressed) for every planted value.
  std::string everything;
  for (const auto& e : fs::recursive_directory_iterator(tmp / "out")) {
    if (!e.is_regular_file()) continue;
    everything += is_zstd_path(e.path()) ? read_zstd(e.path()) : test::read_file(e.path());
  }
  for (const auto& c : cases) EXPECT_EQ(everything.find(c.secret), std::string::npos) << c.rule << " leaked";
}

// A secret in a name rather than the text: a directory, a skipped file's name, a tar member, and a JSONL record's
// path, license and language fields. Each rejects its document (or, for a file skipped unread, is reported), its
// name is written as [REDACTED], and no planted value appears in any output or in the report-only findings.
TEST(Pipeline, SecretsInNamesAreRejectedAndRedacted) {
  TempDir tmp;
  std::vector<std::string> tokens;
  for (uint64_t i = 0; i < 6; ++i)
    tokens.push_back(test_gen::cat("gh", "p_", test_gen::fake(test_gen::kAlnum, 36, 4100 + i)));
  fs::create_directories(tmp / "in" / tokens[0]);
  write_file(tmp / "in" / tokens[0] / "a.py", clean_python(1));                       // a directory name
  write_file(tmp / "in" / (tokens[1] + ".bin"), std::string("\x7f" "ELF\0\0\0", 7));  // skipped unread
  write_file(tmp / "in/clean.py", clean_python(2));
  write_file(tmp / "src.tar", tar_member("pkg/" + tokens[2] + "/b.py", clean_python(3)) +
                                  tar_member("pkg/c.py", clean_python(4)) + std::string(1024, '\0'));
  write_file(tmp / "data.jsonl", json({{"text", clean_python(5)}, {"path", "src/" + tokens[3] + ".py"}}).dump() + "\n" +
                                     json({{"text", clean_python(6)}, {"license", tokens[4]}}).dump() + "\n" +
                                     json({{"text", clean_python(7)}, {"language", tokens[5]}}).dump() + "\n" +
                                     json({{"text", clean_python(8)}, {"path", "ok.py"}}).dump() + "\n");
  const std::vector<std::string> inputs = {(tmp / "in").string(), (tmp / "src.tar").string(),
                                           (tmp / "data.jsonl").string()};
  auto ctx_owner = make_ctx(2);
  const CurateReport rep = curate(inputs, tmp / "out", CurateConfig{}, *ctx_owner);
  EXPECT_EQ(rep.rejected_secret, 5u);  // the .bin file is skipped as binary, its name reported
  EXPECT_EQ(rep.docs_out, 3u);         // clean.py, pkg/c.py, ok.py
  EXPECT_EQ(rep.rejects_by_rule.at("github-pat"), 6u);
  std::string everything;
  for (const auto& e : fs::recursive_directory_iterator(tmp / "out")) {
    if (!e.is_regular_file()) continue;
    everything += is_zstd_path(e.path()) ? read_zstd(e.path()) : test::read_file(e.path());
  }
  for (const auto& t : tokens) EXPECT_EQ(everything.find(t), std::string::npos) << t << " leaked";
  std::map<std::string, int> fields;
  int redacted = 0;
  std::istringstream rejects(test::read_file(tmp / "out/rejects.ndjson"));
  for (std::string line; std::getline(rejects, line);) {
    const json j = json::parse(line);
    if (j.contains("field")) ++fields[j["field"].get<std::string>()];
    redacted += j["path"].get<std::string>().find("[REDACTED]") != std::string::npos;
  }
  EXPECT_EQ(fields["path"], 4);  // directory, .bin name, tar member, JSONL path
  EXPECT_EQ(fields["license"], 1);
  EXPECT_EQ(fields["language"], 1);
  EXPECT_EQ(redacted, 4);
  EXPECT_NE(test::read_file(tmp / "out/skipped.ndjson").find("[REDACTED].bin"), std::string::npos);
  // The report-only scan finds the same six, and prints none of them.
  const SecretScanReport scan = scan_secrets_only(inputs, SourceConfig{}, *ctx_owner);
  EXPECT_EQ(scan.findings.size(), 6u);
  const std::string text = findings_text(scan) + findings_sarif(scan);
  for (const auto& t : tokens) EXPECT_EQ(text.find(t), std::string::npos) << t << " leaked";
  EXPECT_NE(text.find("(in the license)"), std::string::npos);
}

// Vendored trees pass the secret gate too: a key under node_modules, vendor or third_party (directory or tar
// member) rejects that file and is reported; clean vendored files are scanned and dropped as "vendored-dir"; a
// large binary file there is recognised from its head; with skip_vendored off they are training material.
TEST(Pipeline, VendoredFilesAreScannedThenDropped) {
  TempDir tmp;
  const std::string key1 = test_gen::cat("gh", "p_", test_gen::fake(test_gen::kAlnum, 36, 5100));
  const std::string key2 = test_gen::cat("gh", "p_", test_gen::fake(test_gen::kAlnum, 36, 5101));
  const std::string key3 = test_gen::cat("gh", "p_", test_gen::fake(test_gen::kAlnum, 36, 5102));
  fs::create_directories(tmp / "in/node_modules/dep/lib");
  fs::create_directories(tmp / "in/vendor/pkg");
  fs::create_directories(tmp / "in/third_party/x");
  write_file(tmp / "in/main.py", clean_python(1));
  write_file(tmp / "in/node_modules/dep/lib/config.js", "module.exports = { token: '" + key1 + "' };\n");
  write_file(tmp / "in/node_modules/dep/index.js", "module.exports = require('./lib/config');\n");
  write_file(tmp / "in/vendor/pkg/settings.py", "GITHUB_TOKEN = \"" + key2 + "\"\n");
  write_file(tmp / "in/third_party/x/util.py", clean_python(2));
  std::string addon(20000, 'x');
  addon[9000] = '\0';  // NUL after the first 8 KiB: read whole, still binary
  write_file(tmp / "in/node_modules/dep/late.node", addon);
  write_file(tmp / "in/node_modules/dep/addon.node", std::string("\x7f" "ELF\0\0", 6) + std::string(20000, 'y'));
  write_file(tmp / "src.tar", tar_member("proj/node_modules/m/k.js", "const k = '" + key3 + "';\n") +
                                  tar_member("proj/a.py", clean_python(3)) + std::string(1024, '\0'));
  const std::vector<std::string> inputs = {(tmp / "in").string(), (tmp / "src.tar").string()};
  auto ctx_owner = make_ctx(2);
  const CurateReport rep = curate(inputs, tmp / "out", CurateConfig{}, *ctx_owner);
  EXPECT_EQ(rep.rejected_secret, 3u);
  EXPECT_EQ(rep.rejects_by_rule.at("github-pat"), 3u);
  EXPECT_EQ(rep.docs_out, 2u);  // main.py, proj/a.py
  EXPECT_EQ(rep.skipped.at("vendored-dir"), 4u);  // index.js, util.py (clean), late.node, addon.node (binary)
  EXPECT_EQ(rep.scanned_not_kept, 5u);            // config.js, settings.py, k.js, index.js, util.py
  const std::string rejects = test::read_file(tmp / "out/rejects.ndjson");
  for (const char* f : {"config.js", "settings.py", "k.js"}) EXPECT_NE(rejects.find(f), std::string::npos) << f;
  const std::string skipped = test::read_file(tmp / "out/skipped.ndjson");
  EXPECT_NE(skipped.find("third_party/x/util.py\",\"reason\":\"vendored-dir\",\"secrets\":\"clean\""),
            std::string::npos)
      << skipped;
  std::string everything;
  for (const auto& e : fs::recursive_directory_iterator(tmp / "out"))
    if (e.is_regular_file()) everything += is_zstd_path(e.path()) ? read_zstd(e.path()) : test::read_file(e.path());
  for (const auto& k : {key1, key2, key3}) EXPECT_EQ(everything.find(k), std::string::npos);
  CurateConfig keep;
  keep.source.skip_vendored = false;
  const CurateReport all = curate(inputs, tmp / "out2", keep, *ctx_owner);
  EXPECT_EQ(all.rejected_secret, 3u);
  EXPECT_EQ(all.docs_out, 4u);  // + index.js, util.py as training material
}

TEST(Pipeline, BadInputsAreCountedNotFatal) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  write_file(tmp / "in/good.py", clean_python(1));
  write_file(tmp / "in/latin1.py", "name = 'caf\xE9'\n");
  write_file(tmp / "in/nul.py", std::string("x = 1\0\0y = 2\n", 13));
  write_file(tmp / "in/empty.py", "");
  {  // A 2 GB single-line file (sparse): skipped by size before any read.
    std::ofstream f(tmp / "in/huge.py", std::ios::binary);
    f.seekp((std::streamoff(2) << 30) - 1);
    f.put('x');
  }
  fs::create_symlink(tmp / "in/missing-target.py", tmp / "in/dangling.py");
  if (geteuid() != 0) {  // root reads anything; the unreadable case only exists for other users
    write_file(tmp / "in/secret_perm.py", "x = 1\n");
    ::chmod((tmp / "in/secret_perm.py").c_str(), 0);
  }
  // JSONL: good records, a malformed line, a record without the text key, a non-string text, an oversized line.
  std::string jsonl = json({{"text", clean_python(2)}, {"path", "r/one.py"}}).dump() + "\n";
  jsonl += "{not json\n";
  jsonl += json({{"content", "x"}}).dump() + "\n";
  jsonl += json({{"text", 5}}).dump() + "\n";
  jsonl += json({{"text", std::string(3 << 20, 'a')}}).dump() + "\n";
  jsonl += "\n";
  jsonl += json({{"text", clean_python(3)}, {"language", "python"}, {"license", "MIT"}}).dump();  // no final newline
  write_file(tmp / "records.jsonl", jsonl);
  write_file(tmp / "broken.jsonl.zst", "this is not zstd data at all");
  auto ctx_owner = make_ctx(1);
  Context& ctx = *ctx_owner;
  CurateConfig cfg;
  cfg.source.max_file_bytes = 1 << 20;
  const CurateReport rep =
      curate({(tmp / "in").string(), (tmp / "records.jsonl").string(), (tmp / "broken.jsonl.zst").string()},
             tmp / "out", cfg, ctx);
  EXPECT_EQ(rep.docs_out, 3u);
  EXPECT_EQ(rep.skipped.at("invalid-utf8"), 1u);
  EXPECT_EQ(rep.skipped.at("binary"), 1u);
  EXPECT_EQ(rep.skipped.at("empty"), 1u);
  EXPECT_EQ(rep.skipped.at("too-large"), 2u);  // huge.py and the oversized JSONL line
  EXPECT_EQ(rep.skipped.at("symlink"), 1u);
  EXPECT_EQ(rep.skipped.at("malformed-jsonl"), 1u);
  EXPECT_EQ(rep.skipped.at("missing-text-key"), 2u);
  EXPECT_EQ(rep.skipped.at("corrupt-compressed-stream"), 1u);
  if (geteuid() != 0) {
    EXPECT_EQ(rep.skipped.at("unreadable"), 1u);
  }
  const auto recs = read_shards(tmp / "out");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1]["metadata"]["path"], "r/one.py");
  EXPECT_EQ(recs[1]["metadata"]["language"], "python");
  EXPECT_EQ(recs[2]["metadata"]["license"], "MIT");
  const std::string skipped = test::read_file(tmp / "out/skipped.ndjson");
  EXPECT_NE(skipped.find("latin1.py"), std::string::npos);
}

TEST(Pipeline, JsonlZstRoundTripAndTextKey) {
  TempDir tmp;
  {
    ZstdWriter w(tmp / "in.jsonl.zst", 3);
    for (int i = 0; i < 50; ++i)
      w.write(json({{"content", clean_python(i)}, {"path", numbered("p", size_t(i), ".py")}}).dump() + "\n");
    w.commit();
  }
  auto ctx_owner = make_ctx(2);
  Context& ctx = *ctx_owner;
  CurateConfig cfg;
  cfg.source.text_key = "content";
  cfg.shard_max_docs = 20;
  const CurateReport rep = curate({(tmp / "in.jsonl.zst").string()}, tmp / "out", cfg, ctx);
  EXPECT_EQ(rep.docs_in, 50u);
  EXPECT_EQ(rep.docs_out, 50u);
  EXPECT_EQ(rep.shards, 3u);
  const auto recs = read_shards(tmp / "out");
  ASSERT_EQ(recs.size(), 50u);
  EXPECT_EQ(recs[7]["text"], clean_python(7));
  EXPECT_EQ(recs[7]["metadata"]["path"], "p7.py");
}

// Pass 2 compresses about 1 MiB of records per zstd frame: a shard is several frames, each of whole records, and
// reads back as the records in order at any thread count.
TEST(Pipeline, ShardFramesHoldWholeRecords) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  std::mt19937_64 g(5);
  for (int i = 0; i < 120; ++i) {
    std::string text = clean_python(i) + "# ";
    for (int w = 0; w < 3000; ++w) {
      text += 'w';
      text += std::to_string(g() % 100000);
      text += w % 12 == 11 ? "\n# " : " ";
    }
    write_file(tmp / "in" / numbered("f", size_t(i), ".py"), text + "\n");
  }
  auto o1 = make_ctx(1), o2 = make_ctx(2);
  Context &c1 = *o1, &c2 = *o2;
  CurateConfig cfg;
  const CurateReport rep = curate({(tmp / "in").string()}, tmp / "o1", cfg, c1);
  curate({(tmp / "in").string()}, tmp / "o2", cfg, c2);
  EXPECT_EQ(rep.docs_out, 120u);
  EXPECT_EQ(rep.shards, 1u);
  ASSERT_GT(rep.bytes_out, uint64_t(2) << 20);  // more than two frames' worth
  const std::string shard = test::read_file(tmp / "o1/shard-00000.jsonl.zst");
  EXPECT_EQ(shard, test::read_file(tmp / "o2/shard-00000.jsonl.zst"));
  size_t frames = 0, records = 0;
  for (size_t at = 0; at < shard.size(); ++frames) {
    const size_t n = ZSTD_findFrameCompressedSize(shard.data() + at, shard.size() - at);
    ASSERT_FALSE(ZSTD_isError(n));
    const unsigned long long size = ZSTD_getFrameContentSize(shard.data() + at, n);
    ASSERT_LT(size, uint64_t(2) << 20);  // about 1 MiB and one record
    std::string raw(size_t(size), '\0');
    ASSERT_EQ(ZSTD_decompress(raw.data(), raw.size(), shard.data() + at, n), raw.size());
    ASSERT_EQ(raw.back(), '\n');  // a frame ends with a record
    std::istringstream lines(raw);
    for (std::string line; std::getline(lines, line); ++records) EXPECT_TRUE(json::parse(line).contains("text"));
    at += n;
  }
  EXPECT_GE(frames, 2u);
  EXPECT_EQ(records, 120u);
  EXPECT_EQ(read_shards(tmp / "o1").size(), 120u);
}

TEST(Pipeline, SameOutputOnOneAndTwoThreads) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  for (int i = 0; i < 40; ++i) write_file(tmp / "in" / numbered("m", size_t(i), ".py"), clean_python(i % 30));
  CurateConfig cfg;
  cfg.batch_docs = 7;
  auto o1 = make_ctx(1), o2 = make_ctx(2);
  Context &c1 = *o1, &c2 = *o2;
  curate({(tmp / "in").string()}, tmp / "o1", cfg, c1);
  curate({(tmp / "in").string()}, tmp / "o2", cfg, c2);
  EXPECT_EQ(read_zstd(tmp / "o1/shard-00000.jsonl.zst"), read_zstd(tmp / "o2/shard-00000.jsonl.zst"));
}

// The reports list files in input order whatever the batch size and thread count: files skipped unread (binary),
// scanned and dropped (.env) and kept ones interleave, and batches end between them.
TEST(Pipeline, ReportsFollowInputOrderAcrossBatches) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  std::vector<std::string> skipped_names;
  for (int i = 0; i < 30; ++i) {
    if (i % 3 == 0) {
      const std::string name = numbered("f", size_t(i), ".bin");
      write_file(tmp / "in" / name, std::string("\0\1\2binary", 9));
      skipped_names.push_back(name);
    } else if (i % 5 == 0) {
      const std::string name = numbered("f", size_t(i), ".env");
      write_file(tmp / "in" / name, "DEBUG=1\n");
      skipped_names.push_back(name);
    } else {
      write_file(tmp / "in" / numbered("f", size_t(i), ".py"), clean_python(i));
    }
  }
  std::sort(skipped_names.begin(), skipped_names.end());  // a directory is walked in name order
  std::string first;
  for (const size_t batch_docs : {size_t(1), size_t(2), size_t(7), size_t(1024)})
    for (const int threads : {1, 2}) {
      CurateConfig cfg;
      cfg.batch_docs = batch_docs;
      auto ctx = make_ctx(threads);
      const fs::path out = tmp / ("o" + std::to_string(batch_docs) + "_" + std::to_string(threads));
      curate({(tmp / "in").string()}, out, cfg, *ctx);
      const std::string skipped = test::read_file(out / "skipped.ndjson");
      if (first.empty()) {
        first = skipped;
        std::istringstream lines(skipped);
        std::vector<std::string> names;
        for (std::string line; std::getline(lines, line);)
          names.push_back(fs::path(json::parse(line)["path"].get<std::string>()).filename().string());
        EXPECT_EQ(names, skipped_names);
      }
      EXPECT_EQ(skipped, first) << "batch_docs " << batch_docs << ", threads " << threads;
    }
}

TEST(Pipeline, FailedRunLeavesOutputUntouched) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  write_file(tmp / "in/a.py", clean_python(1));
  auto ctx_owner = make_ctx(1);
  Context& ctx = *ctx_owner;
  curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, ctx);
  const std::string before = test::read_file(tmp / "out/shard-00000.jsonl.zst");
  EXPECT_THROW(curate({(tmp / "in").string(), (tmp / "nope").string()}, tmp / "out", CurateConfig{}, ctx), Error);
  EXPECT_EQ(test::read_file(tmp / "out/shard-00000.jsonl.zst"), before);
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  // A rerun into the existing directory replaces the shards; stale higher-numbered shards are removed.
  write_file(tmp / "out/shard-00007.jsonl.zst", "stale");
  write_file(tmp / "in/b.py", clean_python(2));
  const CurateReport rep = curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, ctx);
  EXPECT_EQ(rep.docs_out, 2u);
  EXPECT_FALSE(fs::exists(tmp / "out/shard-00007.jsonl.zst"));
  EXPECT_EQ(read_shards(tmp / "out").size(), 2u);
  // An output path that is a file is refused with a message naming it.
  write_file(tmp / "file", "x");
  try {
    curate({(tmp / "in").string()}, tmp / "file", CurateConfig{}, ctx);
    ADD_FAILURE() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a directory"), std::string::npos) << e.what();
  }
}

// Two runs into one output directory: the second is refused with a message naming the holder, the first's outputs
// are untouched, and the directory is free again once the holder is gone.
TEST(Pipeline, ConcurrentRunIntoTheSameOutputIsRefused) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  write_file(tmp / "in/a.py", clean_python(1));
  auto ctx_owner = make_ctx(1);
  curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, *ctx_owner);
  const std::string before = test::read_file(tmp / "out/report.json");
  {
    const OutputLock holder(tmp / "out", "test");
    try {
      curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, *ctx_owner);
      ADD_FAILURE() << "expected Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("is locked by pid " + std::to_string(::getpid())), std::string::npos)
          << e.what();
    }
    const auto r = test::run_cli("-q curate " + (tmp / "in").string() + " -o " + (tmp / "out").string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("is locked by pid"), std::string::npos) << r.output;
    EXPECT_EQ(test::read_file(tmp / "out/report.json"), before);
  }
  EXPECT_NO_THROW(curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, *ctx_owner));
}

// kill -9 at moments spread over a whole run into an existing output directory (the swap included): every time, the
// directory holds one run's complete outputs (report.json agrees with the shards beside it: old run or new), the
// user's own file survives, and the next run removes what the killed ones left beside it.
TEST(Pipeline, KilledRunLeavesTheOldOutputsOrTheNewOnes) {
  TempDir tmp;
  fs::create_directories(tmp / "old");
  fs::create_directories(tmp / "new");
  for (int i = 0; i < 3; ++i) write_file(tmp / "old" / numbered("a", size_t(i), ".py"), clean_python(i));
  for (int i = 0; i < 300; ++i) write_file(tmp / "new" / numbered("b", size_t(i), ".py"), clean_python(1000 + i));
  CurateConfig cfg;
  cfg.shard_max_docs = 40;  // several shards: a mixture of two runs would show
  write_file(tmp / "cfg.json", R"({"shard_max_docs": 40})");
  auto ctx_owner = make_ctx(1);
  curate({(tmp / "old").string()}, tmp / "out", cfg, *ctx_owner);
  write_file(tmp / "out/notes.txt", "mine");
  const std::string cli = TRITTER_CLI;
  const std::vector<std::string> args = {cli, "-q", "-t", "1", "curate", (tmp / "new").string(), "-o",
                                         (tmp / "out").string(), "--config", (tmp / "cfg.json").string()};
  auto spawn = [&] {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, cli.c_str(), nullptr, nullptr, argv.data(), environ), 0);
    return pid;
  };
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  pid_t pid = spawn();
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  curate({(tmp / "old").string()}, tmp / "out", cfg, *ctx_owner);  // back to the old outputs
  std::set<uint64_t> seen;
  const int kKills = 20;
  for (int k = 0; k < kKills; ++k) {
    pid = spawn();
    std::this_thread::sleep_for(std::chrono::duration<double>(run_s * (0.3 + 0.9 * k / kKills)));
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    const json rep = json::parse(test::read_file(tmp / "out/report.json"));
    size_t shard_files = 0;
    for (const auto& e : fs::directory_iterator(tmp / "out"))
      shard_files += e.path().filename().string().starts_with("shard-");
    EXPECT_EQ(shard_files, rep["shards"].get<size_t>()) << "kill " << k;
    EXPECT_EQ(read_shards(tmp / "out").size(), rep["docs_out"].get<size_t>()) << "kill " << k;
    EXPECT_EQ(test::read_file(tmp / "out/notes.txt"), "mine");
    seen.insert(rep["docs_out"].get<uint64_t>());
  }
  for (uint64_t n : seen) EXPECT_TRUE(n == 3 || n == 300) << n;
  const CurateReport last = curate({(tmp / "new").string()}, tmp / "out", cfg, *ctx_owner);
  EXPECT_EQ(last.docs_out, 300u);
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name.find(".tmp-") == std::string::npos && name.find(".old-") == std::string::npos) << name;
  }
}

TEST(Pipeline, ExtractTriton) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  write_file(tmp / "in/kern.py",
             "import triton\nimport triton.language as tl\n\n@triton.jit\ndef add_kernel(x_ptr, y_ptr, n, BLOCK: "
             "tl.constexpr):\n"
             "    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)\n    mask = offs < n\n"
             "    x = tl.load(x_ptr + offs, mask=mask)\n    tl.store(y_ptr + offs, x, mask=mask)\n");
  write_file(tmp / "in/plain.py", clean_python(5));
  auto ctx_owner = make_ctx(1);
  Context& ctx = *ctx_owner;
  CurateConfig cfg;
  cfg.extract_triton = true;
  const CurateReport rep = curate({(tmp / "in").string()}, tmp / "out", cfg, ctx);
  EXPECT_EQ(rep.triton_docs, 1u);
  EXPECT_EQ(rep.triton_kernels, 1u);
  EXPECT_EQ(rep.docs_out, 1u);
  const auto t = read_shards(tmp / "out/triton");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]["metadata"]["triton_kernels"][0]["name"], "add_kernel");
  EXPECT_EQ(t[0]["metadata"]["triton_kernels"][0]["line"], 5);
  EXPECT_TRUE(t[0]["metadata"]["labels"].empty());  // masked loads and stores: no label
}

TEST(Pipeline, Tarballs) {
  TempDir tmp;
  const std::string long_name = "pkg/" + std::string(120, 'd') + "/deep.py";
  std::string tar = tar_member("pkg/", "", '5') + tar_member("pkg/a.py", clean_python(1)) +
                    tar_member("pkg/node_modules/x.js", "module.exports = 1;\n") +
                    tar_member("././@LongLink", long_name + '\0', 'L') + tar_member("ignored", clean_python(2)) +
                    tar_member("pkg/lib.rs", "pub fn f() -> u32 { 1 }\n") + std::string(1024, '\0');
  write_file(tmp / "src.tar", tar);
  {
    ZstdWriter w(tmp / "src2.tar.zst", 3);
    w.write(tar_member("b.py", clean_python(3)) + std::string(1024, '\0'));
    w.commit();
  }
  // A corrupt member header stops that archive (counted); members before it are kept.
  write_file(tmp / "bad.tar", tar_member("c.py", clean_python(4)) + tar_member("d.py", clean_python(5), '0', true));
  write_file(tmp / "short.tar", tar_member("e.py", clean_python(6)).substr(0, 700));
  auto ctx_owner = make_ctx(1);
  const CurateReport rep = curate({(tmp / "src.tar").string(), (tmp / "src2.tar.zst").string(),
                                   (tmp / "bad.tar").string(), (tmp / "short.tar").string()},
                                  tmp / "out", CurateConfig{}, *ctx_owner);
  EXPECT_EQ(rep.docs_out, 5u);
  EXPECT_EQ(rep.skipped.at("vendored-dir"), 1u);
  EXPECT_EQ(rep.skipped.at("corrupt-archive"), 2u);
  const auto recs = read_shards(tmp / "out");
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs[0]["metadata"]["path"], (tmp / "src.tar").string() + ":pkg/a.py");
  EXPECT_EQ(recs[0]["text"], clean_python(1));
  EXPECT_EQ(recs[1]["metadata"]["path"], (tmp / "src.tar").string() + ":" + long_name);
  EXPECT_EQ(recs[2]["metadata"]["language"], "rust");
  EXPECT_EQ(recs[3]["text"], clean_python(3));
  EXPECT_EQ(recs[4]["text"], clean_python(4));
}

TEST(Pipeline, RecordTextRoundTripsExactly) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  // Quotes, backslashes, every control character but NUL, DEL, and multi-byte UTF-8 (2, 3 and 4 bytes, U+2028).
  std::string text =
      clean_python(1) + "s = \"q\\\"b\\\\c\"  # caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8\n# ";
  for (int c = 1; c < 0x20; ++c) text.push_back(char(c));
  text += "\x7f end\n";
  write_file(tmp / "in/a.py", text);
  auto ctx_owner = make_ctx(1);
  const CurateReport rep = curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, *ctx_owner);
  ASSERT_EQ(rep.docs_out, 1u);
  const auto recs = read_shards(tmp / "out");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["text"].get<std::string>(), text);
}

TEST(Pipeline, TwoGigabyteJsonlLineIsSkippedInBoundedMemory) {
  TempDir tmp;
  const std::string before = json({{"text", clean_python(1)}}).dump() + "\n";
  const std::string after = "\n" + json({{"text", clean_python(2)}}).dump() + "\n";
  {  // A sparse 2 GiB line of NUL bytes between two good records.
    std::ofstream f(tmp / "big.jsonl", std::ios::binary);
    f << before;
    f.seekp(std::streamoff(before.size()) + (std::streamoff(2) << 30));
    f << after;
  }
  const int64_t peak_before = process_memory().peak_rss_bytes;
  auto ctx_owner = make_ctx(1);
  const CurateReport rep = curate({(tmp / "big.jsonl").string()}, tmp / "out", CurateConfig{}, *ctx_owner);
  EXPECT_EQ(rep.docs_out, 2u);
  EXPECT_EQ(rep.skipped.at("too-large"), 1u);
  // The line is streamed past, never held: the peak grows by far less than the line.
  EXPECT_LT(process_memory().peak_rss_bytes - peak_before, int64_t(256) << 20);
}

TEST(Pipeline, ConfigErrors) {
  EXPECT_THROW(curate_config_from_json(json::parse(R"({"shard_max_dogs": 5})")), Error);
  EXPECT_THROW(curate_config_from_json(json::parse(R"({"minhash": {"bands": 40}})")), Error);
  EXPECT_THROW(curate_config_from_json(json::parse(R"({"near_dedup": "yes"})")), Error);
  const CurateConfig c = curate_config_from_json(json::parse(R"({"text_key": "content", "languages": ["rust"]})"));
  EXPECT_EQ(c.source.text_key, "content");
  EXPECT_EQ(c.source.languages, std::vector<std::string>{"rust"});
}

TEST(Pipeline, Cli) {
  TempDir tmp;
  fs::create_directories(tmp / "in");
  write_file(tmp / "in/a.py", clean_python(1));
  write_file(tmp / "cfg.json", R"({"near_dedup": false})");
  auto r = test::run_cli("-t 1 curate " + (tmp / "in").string() + " -o " + (tmp / "out").string() + " --config " +
                         (tmp / "cfg.json").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("documents out: 1"), std::string::npos) << r.output;
  write_file(tmp / "bad.json", R"({"bogus": 1})");
  r = test::run_cli("curate " + (tmp / "in").string() + " -o " + (tmp / "out2").string() + " --config " +
                    (tmp / "bad.json").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown key 'bogus'"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "out2"));
}

// The record's metadata is written by hand in the bytes nlohmann's dump(-1) gave for the object it used to build:
// every metadata object must be exactly its own nlohmann re-serialization (keys in map order, same escapes, same
// numbers), here with labels (first and every occurrence), a licence, Triton kernels, quality flags and file
// names with quotes, backslashes, non-ASCII and an invalid UTF-8 byte.
TEST(Pipeline, RecordMetadataIsNlohmannCanonical) {
  TempDir tmp;
  fs::create_directories(tmp / "in/pkg");
  write_file(tmp / "in/LICENSE", "MIT License\n\nPermission is hereby granted, free of charge, to any person\n");
  write_file(tmp / "in/pkg/lab.py",
             clean_python(2) + "import os, yaml\n\ndef run(cmd, opts={}):\n    os.system(cmd)\n    eval(cmd)\n"
                               "    eval(cmd + '1')\n    try:\n        f()\n    except:\n        pass\n"
                               "    return yaml.load(cmd)\n");
  write_file(tmp / "in/pkg/kern.py",
             "import triton\nimport triton.language as tl\n\n@triton.jit\ndef k1(x_ptr, n):\n"
             "    x = tl.load(x_ptr + tl.arange(0, 16))\n    tl.store(x_ptr, x)\n");
  write_file(tmp / "in/pkg/caf\xC3\xA9 \"q\\b\".py", clean_python(3));
  write_file(tmp / "in/pkg/bad\xFFname.py", clean_python(4));
  write_file(tmp / "in/pkg/long.py", clean_python(5) + "x = '" + std::string(1500, 'a') + "'\n");
  auto ctx_owner = make_ctx(1);
  const CurateReport rep = curate({(tmp / "in").string()}, tmp / "out", CurateConfig{}, *ctx_owner);
  ASSERT_EQ(rep.docs_out, 5u);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(tmp / "out"))
    if (e.path().filename().string().starts_with("shard-")) files.push_back(e.path());
  std::set<std::string> seen_keys;
  for (const auto& f : files) {
    LineReader r(f, SIZE_MAX);
    std::string line;
    while (r.next(line) == LineReader::Status::Line) {
      const size_t at = line.find(",\"metadata\":");
      ASSERT_NE(at, std::string::npos);
      const std::string meta = line.substr(at + 12, line.size() - at - 13);  // without the record's closing '}'
      const json j = json::parse(line);
      EXPECT_EQ(meta, j["metadata"].dump(-1, ' ', false, json::error_handler_t::replace));
      for (const auto& [k, v] : j["metadata"].items()) seen_keys.insert(k);
      if (j["metadata"]["path"].get<std::string>().find("lab.py") != std::string::npos) {
        EXPECT_GE(j["metadata"]["label_occurrences"].size(), 4u);
        EXPECT_EQ(j["metadata"]["quality"]["label"], "negative");
      }
    }
  }
  for (const char* k : {"license", "triton_kernels", "labels", "label_occurrences", "quality", "secrets"})
    EXPECT_TRUE(seen_keys.count(k)) << k;
}

}  // namespace
}  // namespace tritter::data
