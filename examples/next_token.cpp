// Using libtritter from C++: open a packed model (or build a random "test" model in memory), tokenize a prompt
// with the byte tokenizer, run the forward pass and print the five most likely next tokens.
//   example_next_token [MODEL.safetensors] [PROMPT]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/error.h"
#include "infer/engine.h"
#include "model/config.h"
#include "model/init.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"
#include "text/byte_tokenizer.h"

int main(int argc, char** argv) {
  using namespace tritter;
  try {
    Context ctx;  // one thread, best kernels for this CPU
    // A packed file from `tritter init --packed`, `tritter pack` or `tritter export`, or a random test model.
    std::optional<PackedModel> model;
    if (argc > 1) {
      model = PackedModel::open(argv[1]);
    } else {
      const TritterConfig config = preset_config("test");
      std::vector<float> params(static_cast<size_t>(parameter_count(config)));
      init_parameters(params, config, /*seed=*/1);
      model = PackedModel::in_memory(config, [&](float* out, const TensorInfo& info, size_t) {
        std::memcpy(out, params.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
      }, PackOptions{}, &ctx.memory);
    }
    const std::string prompt = argc > 2 ? argv[2] : "def fibonacci(n):";
    const std::vector<int32_t> ids = tokenize(prompt, {.bos = true, .modality = kTokenCode});

    Engine engine(ctx, model->weights(), EngineOptions{});
    const int64_t V = model->config().vocab_size;
    std::vector<float> logits(static_cast<size_t>(V));  // (V): the last token's logits
    engine.forward(ids, logits.data(), /*all_logits=*/false);

    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    std::printf("prompt: %s (%zu tokens)\nmost likely next tokens:\n", prompt.c_str(), ids.size());
    for (int i = 0; i < 5; ++i) {
      const int32_t id = order[static_cast<size_t>(i)];
      std::string shown = token_is_special(id) ? token_name(id) : token_bytes(id);  // a byte id → its byte
      if (shown.size() == 1 && (shown[0] < 0x20 || shown[0] > 0x7e)) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(shown[0]));
        shown = hex;
      }
      std::printf("  %5d  %-8s logit %.3f\n", id, shown.c_str(), logits[static_cast<size_t>(id)]);
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
