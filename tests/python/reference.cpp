// The C++ side of the Python tests' bit-for-bit comparisons: runs the public API (tritter.h) in its own process
// and writes raw little-endian arrays that tests/python/test_tritter.py compares with what the bindings return.
//   tritter_py_reference MODEL OUTDIR PROMPT THREADS
// writes OUTDIR/logits_all.f32 (n, V) and logits_last.f32 (V) of PROMPT's bytes (no <bos>) as one sequence,
// embed.f32 (2, D) of PROMPT and "import os", and greedy.i32: 48 greedy tokens after PROMPT (with the file's
// add_bos), <eos> not stopping.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tritter.h"

namespace {

template <class T>
void write(const std::string& path, const std::vector<T>& v) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(v.data(), sizeof(T), v.size(), f) != v.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL OUTDIR PROMPT THREADS\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[2], prompt = argv[3];
    const tritter::Model model = tritter::Model::open(argv[1]);
    tritter::Session session(model, {.threads = std::atoi(argv[4])});
    const int64_t V = model.info().vocab_size;
    const std::vector<int32_t> ids = model.tokenize(prompt, false);
    std::vector<float> all(ids.size() * static_cast<size_t>(V));
    session.forward(ids, all, true);
    write(dir + "/logits_all.f32", all);
    session.reset();
    write(dir + "/logits_last.f32", session.forward(ids));
    std::vector<float> emb = session.embed(prompt);
    const std::vector<float> e2 = session.embed("import os");
    emb.insert(emb.end(), e2.begin(), e2.end());
    write(dir + "/embed.f32", emb);
    session.reset();
    tritter::GenerationParams p;
    p.max_tokens = 48;
    p.stop_at_eos = false;
    write(dir + "/greedy.i32", session.generate(model.tokenize(prompt, model.info().add_bos), p).tokens);
  } catch (const tritter::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
