// Curation throughput (issue 8): MB/s per core for each stage (secret scan, Python and Rust labels, exact key,
// MinHash) and for the whole pipeline on 1 and 2 threads, on a deterministic synthetic corpus of Python and
// Rust files. Real-corpus figures come from `tritter curate` (docs/curation.md).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/context.h"
#include "data/dedup.h"
#include "data/labels.h"
#include "data/pipeline.h"
#include "data/secrets.h"

namespace {

using namespace tritter;
namespace fs = std::filesystem;

std::string ident(std::mt19937& rng) {
  static const char* kWords[] = {"value", "count",  "buffer", "index", "result", "item", "node",  "parse", "config",
                                 "data",  "offset", "total",  "name",  "path",   "size", "state", "entry", "cache"};
  return std::string(kWords[rng() % 18]) + "_" + std::to_string(rng() % 50);
}

std::string python_file(std::mt19937& rng) {
  std::string s = "\"\"\"Synthetic module for the curation benchmark.\"\"\"\nimport os\nimport json\n\n";
  for (int f = 0; f < 12; ++f) {
    s += "def " + ident(rng) + "(" + ident(rng) + ", " + ident(rng) + "=None):\n    \"\"\"Docstring.\"\"\"\n";
    for (int l = 0; l < 8; ++l) {
      switch (rng() % 6) {
        case 0:
          s += "    " + ident(rng) + " = " + ident(rng) + " + " + std::to_string(rng() % 1000) + "\n";
          break;
        case 1:
          s += "    if " + ident(rng) + " is None:\n        return " + ident(rng) + "\n";
          break;
        case 2:
          s += "    # note: " + ident(rng) + " is cached\n";
          break;
        case 3:
          s += "    " + ident(rng) + " = json.loads(" + ident(rng) + ")\n";
          break;
        case 4:
          s += "    print(f\"{" + ident(rng) + "} done\")\n";
          break;
        default:
          s += "    for " + ident(rng) + " in range(" + std::to_string(rng() % 100) + "):\n        pass\n";
      }
    }
    s += "    return " + ident(rng) + "\n\n";
  }
  return s;
}

std::string rust_file(std::mt19937& rng) {
  std::string s = "//! Synthetic crate module.\nuse std::collections::HashMap;\n\n";
  for (int f = 0; f < 12; ++f) {
    s += "pub fn " + ident(rng) + "(" + ident(rng) + ": &str) -> Option<usize> {\n";
    for (int l = 0; l < 8; ++l) {
      switch (rng() % 5) {
        case 0:
          s += "    let " + ident(rng) + " = " + ident(rng) + ".len() + " + std::to_string(rng() % 1000) + ";\n";
          break;
        case 1:
          s += "    // " + ident(rng) + " is never empty here\n";
          break;
        case 2:
          s += "    let m: HashMap<String, u32> = HashMap::new();\n";
          break;
        case 3:
          s += "    let v = " + ident(rng) + ".parse::<u32>().ok()?;\n";
          break;
        default:
          s += "    println!(\"{}\", " + ident(rng) + ");\n";
      }
    }
    s += "    Some(0)\n}\n\n";
  }
  return s;
}

std::vector<std::string> make_corpus(int files) {
  std::mt19937 rng(1234);
  std::vector<std::string> d;
  for (int i = 0; i < files; ++i) d.push_back(i % 2 ? rust_file(rng) : python_file(rng));
  return d;
}

// ~1.7 MB for the per-stage benchmarks.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> docs = make_corpus(400);
  return docs;
}

int64_t bytes_of(const std::vector<std::string>& docs) {
  int64_t n = 0;
  for (const auto& d : docs) n += int64_t(d.size());
  return n;
}
int64_t corpus_bytes() { return bytes_of(corpus()); }

void BM_SecretScan(benchmark::State& state) {
  data::SecretScanner scanner;
  data::SecretScanner::Scratch scratch(scanner);
  for (auto _ : state)
    for (const auto& d : corpus()) benchmark::DoNotOptimize(scanner.scan(d, scratch));
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
}
BENCHMARK(BM_SecretScan)->Unit(benchmark::kMillisecond);

// Compiling the rule set (Hyperscan + RE2), paid once per run.
void BM_SecretCompile(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(data::SecretScanner{});
}
BENCHMARK(BM_SecretCompile)->Unit(benchmark::kMillisecond);

void BM_Labels(benchmark::State& state) {
  data::QualityConfig q;
  for (auto _ : state)
    for (size_t i = 0; i < corpus().size(); ++i)
      benchmark::DoNotOptimize(data::label_document(corpus()[i], i % 2 ? "rust" : "python", "src/x", q));
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
}
BENCHMARK(BM_Labels)->Unit(benchmark::kMillisecond);

void BM_ExactKey(benchmark::State& state) {
  for (auto _ : state)
    for (const auto& d : corpus()) benchmark::DoNotOptimize(data::exact_key(d));
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
}
BENCHMARK(BM_ExactKey)->Unit(benchmark::kMillisecond);

void BM_MinHash(benchmark::State& state) {
  data::MinHasher h(data::MinHashConfig{});
  for (auto _ : state)
    for (const auto& d : corpus()) benchmark::DoNotOptimize(h.band_hashes(h.signature(d)));
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
}
BENCHMARK(BM_MinHash)->Unit(benchmark::kMillisecond);

// The whole pipeline (read, scan, label, dedup, write shards, and the one-off rule compile) over ~7 MB written
// as files; arg = threads. Wall-clock rate: run it on an otherwise idle machine.
void BM_Pipeline(benchmark::State& state) {
  static const std::vector<std::string> docs = make_corpus(1600);
  const fs::path dir = fs::temp_directory_path() / "tritter-curate-bench";
  fs::create_directories(dir / "in");
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string name = "f";
    name += std::to_string(i);
    name += i % 2 ? ".rs" : ".py";
    std::ofstream(dir / "in" / name) << docs[i];
  }
  Context ctx;
  ctx.threads = int(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(data::curate({(dir / "in").string()}, dir / "out", {}, ctx));
  state.SetBytesProcessed(state.iterations() * bytes_of(docs));
  fs::remove_all(dir);
}
BENCHMARK(BM_Pipeline)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

}  // namespace
