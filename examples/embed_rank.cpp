// Text embeddings through the public header: embed files with Session::embed (mean-pooled final states,
// L2-normalized) and rank them by cosine similarity to the first one.
//   example_embed_rank [--model MODEL] [--bidirectional] QUERY_FILE FILE...
// Without --model a random "test" model is built in memory (the ranking is then meaningless but the call runs);
// without files three built-in snippets are ranked.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "tritter.h"

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw tritter::Error("cannot read '" + path + "'");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
}  // namespace

int main(int argc, char** argv) {
  try {
    std::string model_path;
    tritter::EmbedOptions options;  // pooling "mean", attention "causal"
    std::vector<std::string> names, texts;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--model" && i + 1 < argc) {
        model_path = argv[++i];
      } else if (arg == "--bidirectional") {
        options.attention = "bidirectional";
      } else {
        names.push_back(arg);
        texts.push_back(read_all(arg));
      }
    }
    if (texts.empty()) {
      names = {"query", "loop", "prose"};
      texts = {"def add(a, b):\n    return a + b\n", "for i in range(10):\n    total += i\n",
               "The quick brown fox jumps over the lazy dog."};
    }
    const tritter::Model model = model_path.empty() ? tritter::Model::random("test", 1) : tritter::Model::open(model_path);
    tritter::Session session(model, {.threads = 1});
    std::vector<std::vector<float>> vecs;
    for (const std::string& t : texts) vecs.push_back(session.embed(t, options));

    // Unit vectors: the dot product is the cosine similarity.
    std::vector<std::pair<double, size_t>> ranked;
    for (size_t i = 1; i < vecs.size(); ++i) {
      const double cos = std::inner_product(vecs[0].begin(), vecs[0].end(), vecs[i].begin(), 0.0);
      ranked.emplace_back(cos, i);
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::printf("ranked by similarity to %s (%zu dimensions):\n", names[0].c_str(), vecs[0].size());
    for (const auto& [cos, i] : ranked) std::printf("  %+.4f  %s\n", cos, names[i].c_str());
  } catch (const tritter::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
