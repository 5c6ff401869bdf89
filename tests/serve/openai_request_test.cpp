// Request parsing: the sampling a request leaves out comes from the server's defaults (OpenAI's, or the model's
// generation_config.json as serve fills them); what the request names wins.
#include "serve/openai.h"

#include <gtest/gtest.h>

#include "model/model_text.h"

namespace tritter::serve {
namespace {

ApiLimits request_limits() {
  ApiLimits L;
  L.context = 64;
  L.vocab_size = 264;
  return L;
}

TEST(OpenAiRequest, OmittedSamplingTakesTheServerDefaults) {
  ApiLimits L = request_limits();
  const Json body = {{"prompt", "hi"}};
  GenerationRequest r = parse_generation(body, false, L);
  EXPECT_FLOAT_EQ(r.sampler.temperature, 1.0f);  // OpenAI's
  EXPECT_FLOAT_EQ(r.sampler.top_p, 1.0f);
  EXPECT_EQ(r.sampler.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampler.repeat_penalty, 1.0f);
  L.sampling = {.temperature = 0.6, .top_p = 0.9, .repeat_penalty = 1.1, .top_k = 50};
  r = parse_generation(body, false, L);
  EXPECT_FLOAT_EQ(r.sampler.temperature, 0.6f);
  EXPECT_FLOAT_EQ(r.sampler.top_p, 0.9f);
  EXPECT_EQ(r.sampler.top_k, 50);
  EXPECT_FLOAT_EQ(r.sampler.repeat_penalty, 1.1f);
  r = parse_generation({{"prompt", "hi"}, {"temperature", 0.2}, {"top_p", 0.5}, {"top_k", 3}}, false, L);
  EXPECT_FLOAT_EQ(r.sampler.temperature, 0.2f);
  EXPECT_FLOAT_EQ(r.sampler.top_p, 0.5f);
  EXPECT_EQ(r.sampler.top_k, 3);
  EXPECT_FLOAT_EQ(r.sampler.repeat_penalty, 1.1f);
}

TEST(OpenAiRequest, GenerationConfigTemperature) {
  EXPECT_EQ(generation_temperature(parse_generation_config(R"({"temperature": 0.6})", "g")), 0.6f);
  EXPECT_EQ(generation_temperature(parse_generation_config(R"({"do_sample": false, "temperature": 0.6})", "g")), 0.0f);
  EXPECT_FALSE(generation_temperature(parse_generation_config(R"({"top_p": 0.9})", "g")).has_value());
}

}  // namespace
}  // namespace tritter::serve
