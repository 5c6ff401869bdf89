// Using libtritter from C++ through its public header: open a packed model (or build a random "test" model in
// memory), tokenize a prompt with the byte tokenizer, run the forward pass and print the five most likely next
// tokens.
//   example_next_token [MODEL.safetensors] [PROMPT]
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "tritter.h"

int main(int argc, char** argv) {
  try {
    // A packed file from `tritter init --packed`, `tritter pack` or `tritter export`, or a random test model.
    const tritter::Model model = argc > 1 ? tritter::Model::open(argv[1]) : tritter::Model::random("test", 1);
    const std::string prompt = argc > 2 ? argv[2] : "def fibonacci(n):";
    const std::vector<int32_t> ids = model.tokenize(prompt, /*bos=*/true);

    tritter::Session session(model, {.threads = 1});
    const std::vector<float> logits = session.forward(ids);  // (V): the last token's logits

    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    std::printf("prompt: %s (%zu tokens)\nmost likely next tokens:\n", prompt.c_str(), ids.size());
    for (int i = 0; i < 5; ++i) {
      const int32_t id = order[static_cast<size_t>(i)];
      std::string shown = model.token_piece(id);  // a byte id → its byte, a special → its name
      if (shown.size() == 1 && (shown[0] < 0x20 || shown[0] > 0x7e)) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(shown[0]));
        shown = hex;
      }
      std::printf("  %5d  %-8s logit %.3f\n", id, shown.c_str(), logits[static_cast<size_t>(id)]);
    }
    return 0;
  } catch (const tritter::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
