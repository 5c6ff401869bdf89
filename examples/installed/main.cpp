// Built against an installed Tritter (tests/install/install_test.sh does, with CMake and with pkg-config): open a
// packed model, generate N tokens greedily, print each id and then the count.
//   installed_example MODEL.safetensors N
#include <tritter.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors N\n", argv[0]);
    return 2;
  }
  try {
    const tritter::Model model = tritter::Model::open(argv[1]);
    tritter::Session session(model, {.context = 128, .threads = 1});
    tritter::GenerationParams params;
    params.max_tokens = std::atoi(argv[2]);
    params.stop_at_eos = false;
    int count = 0;
    session.generate(model.tokenize("def main():", model.info().add_bos), params, [&](int32_t id, std::string_view) {
      if (id >= 0) {
        std::printf("token %d\n", id);
        ++count;
      }
      return true;
    });
    std::printf("generated %d tokens\n", count);
    return 0;
  } catch (const tritter::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
