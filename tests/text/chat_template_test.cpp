// Chat templates: the templates of BitNet b1.58 2B4T, Llama 3, Qwen2 (ChatML) and Mistral (as their public
// tokenizer_config.json files spell them) rendered over several conversations, equal to @huggingface/jinja's output
// (and raising where it raises); plus the engine's own constructs and its syntax errors.
#include "text/chat_template.h"
#include "util/test_util.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "text/hf_reference.h"

namespace tritter {
namespace {

using json = nlohmann::ordered_json;

struct NamedTemplate {
  const char* name;
  const char* source;
};

const NamedTemplate kTemplates[] = {
    {"bitnet-b1.58-2B-4T",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + "
     "': '+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
     "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"},
    {"llama-3",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
     "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
     "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
     "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"},
    {"qwen2-chatml",
     "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou "
     "are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
     "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"},
    {"mistral-7b-instruct-v0.1",
     "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
     "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
     "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
     "'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant "
     "roles are supported!') }}{% endif %}{% endfor %}"},
    {"mistral-7b-instruct-v0.3",
     "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set "
     "loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n"
     "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 "
     "== 0) %}\n        {{- raise_exception('After the optional system message, conversation roles must alternate "
     "user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if "
     "loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + "
     "message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' "
     "[/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + "
     "message['content'] + eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are "
     "supported, with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n"},
    // Not a model's: the constructs the above do not reach (namespace, filtered loops, loop.last, slices, filters,
    // tests, methods, block whitespace rules).
    {"engine-features",
     "{%- set ns = namespace(count=0, sys='') -%}\n{%- for m in messages if m.role != 'system' -%}\n  {%- set ns.count = "
     "ns.count + 1 -%}\n{%- endfor -%}\n{%- for m in messages -%}\n  {%- if m['role'] == 'system' %}{% set ns.sys = "
     "m.content | upper %}{% endif -%}\n{%- endfor -%}\nsys={{ ns.sys }} n={{ ns.count }} of {{ messages | length }}\n"
     "{% for m in messages[::-1] %}\n  {{ loop.index }}/{{ loop.length }} {{ m.role | title }}: "
     "{{ m.content.strip().split(' ') | join(',') }}{% if not loop.last %};{% endif %}\n{% else %}\n  (none)\n"
     "{% endfor %}\n{{ messages[-1].content[:5] if messages else 'empty' }}|{{ 'x' ~ 3 ~ 'y' }}|"
     "{{ (7 // 2, 7 % 3, 2 * 3 + 1, -4) | join(' ') }}|{{ missing | default('dflt') }}|{{ 'yes' if missing is defined else 'no' }}|"
     "{{ {'a': 1}.get('b', 'no') }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|"
     "{{ 1 if 'Ab c'.startswith('Ab') else 0 }}{{ 1 if 'abc'.endswith('z') else 0 }}|{# a comment #}{{ messages | map(attribute='role') | join('+') }}"
     "{%- if add_generation_prompt %}\n<gen>{% endif %}\n"},
};

json conversation(std::initializer_list<std::pair<const char*, const char*>> turns) {
  json list = json::array();
  for (const auto& [role, content] : turns) list.push_back({{"role", role}, {"content", content}});
  return list;
}

std::vector<json> conversations() {
  return {
      conversation({{"system", "You are a concise assistant."}, {"user", "What is BitNet?"}}),
      conversation({{"user", "Hi!"}, {"assistant", "Hello. How can I help?"}, {"user", "Explain ternary weights."}}),
      conversation({{"user", "  padded\n\ttext with ünïcödé 東京 😀  \n"}}),
      conversation({{"system", "S"}, {"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}}),
      conversation({{"user", "one"}, {"user", "two"}}),  // breaks alternation
      conversation({{"tool", "result"}}),
      json::array(),
  };
}

TEST(ChatTemplateReference, RealTemplatesMatchHuggingFaceJinja) {
  if (const auto why = testing::reference_missing("@huggingface/jinja"); !why.empty()) GTEST_SKIP() << why;
  json cases = json::array();
  for (const auto& t : kTemplates) {
    for (const auto& messages : conversations()) {
      for (bool gen : {true, false}) {
        cases.push_back({{"name", t.name}, {"template", t.source},
                         {"context", {{"messages", messages}, {"add_generation_prompt", gen}, {"bos_token", "<s>"},
                                      {"eos_token", "</s>"}}}});
      }
    }
  }
  const std::string in = testing::temp_path("cases.json"), out = testing::temp_path("rendered.json");
  std::ofstream(in) << cases.dump();
  const json expected = testing::run_reference("render '" + in + "' '" + out + "'", out);
  std::filesystem::remove(in);
  ASSERT_EQ(expected.size(), cases.size());
  int errors = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const std::string name = cases[k]["name"];
    const ChatTemplate tmpl(cases[k]["template"].get<std::string>());
    const std::string what = name + " case " + std::to_string(k) + " " + cases[k]["context"]["messages"].dump();
    if (expected[k].contains("error")) {
      ++errors;
      try {
        const std::string got = tmpl.render(cases[k]["context"]);
        ADD_FAILURE() << what << ": the reference raised '" << expected[k]["error"] << "', Tritter rendered '" << got << "'";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("raise_exception"), std::string::npos) << what << ": " << e.what();
      }
      continue;
    }
    try {
      EXPECT_EQ(tmpl.render(cases[k]["context"]), expected[k]["text"].get<std::string>()) << what;
    } catch (const Error& e) {
      ADD_FAILURE() << what << ": Tritter raised " << e.what() << "; the reference rendered " << expected[k]["text"];
    }
  }
  EXPECT_GT(errors, 0);  // the Mistral templates refuse a broken alternation
}

TEST(ChatTemplate, ApplyFillsTheUsualVariables) {
  const ChatTemplate t(kTemplates[0].source);
  const std::vector<ChatMessage> messages = {{"user", " Hello "}, {"assistant", "Hi"}};
  EXPECT_EQ(t.apply(messages, {.add_generation_prompt = true, .bos_token = "<|begin_of_text|>", .eos_token = ""}),
            "<|begin_of_text|>User: Hello<|eot_id|>Assistant: Hi<|eot_id|>Assistant: ");
}

// Values print as Python's Jinja prints them (transformers renders templates with it): True, None, [1, 'a'].
// @huggingface/jinja prints true/false, so the comparison above keeps booleans out of the output.
TEST(ChatTemplate, ValuesPrintAsPythonJinjaPrintsThem) {
  EXPECT_EQ(ChatTemplate("{{ x }} {{ y }} {{ z }} {{ 1.5 }} {{ 2.0 }} {{ undefined_name }}|").render(
                {{"x", true}, {"y", nullptr}, {"z", json::array({1, "a"})}}),
            "True None [1, 'a'] 1.5 2.0 |");
  EXPECT_EQ(ChatTemplate("{%- for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}").render({{"d", {{"b", 1}, {"a", 2}}}}),
            "b=1;a=2;");
  EXPECT_EQ(ChatTemplate("  {% if true %}\nyes\n  {% endif %}\nafter\n").render(json::object()), "yes\nafter");
}

// tojson of a message whose bytes are not UTF-8 (the fuzzer's find: nlohmann refused them with an exception the
// renderer did not expect) writes U+FFFD for them; an absurd indent is an error, not gigabytes of spaces.
TEST(ChatTemplate, ToJsonTakesAnyBytesAndABoundedIndent) {
  EXPECT_EQ(ChatTemplate("{{ m | tojson }}").render({{"m", std::string("a\xee\x80")}}), "\"a\xef\xbf\xbd\"");
  EXPECT_EQ(ChatTemplate("{{ m | tojson(indent=2) }}").render({{"m", json::array({1})}}), "[\n  1\n]");
  test::expect_error([] { ChatTemplate("{{ m | tojson(indent=100000) }}").render({{"m", 1}}); },
                     {"tojson indent 100000", "expected at most 64"});
}

TEST(ChatTemplate, RaiseExceptionAndSyntaxErrorsAreErrors) {
  const ChatTemplate t(kTemplates[3].source);
  const std::vector<ChatMessage> bad = {{"assistant", "first"}};
  try {
    t.apply(bad, {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conversation roles must alternate"), std::string::npos) << e.what();
  }
  const std::vector<std::pair<const char*, const char*>> broken = {
      {"{% if x %}never closed", "without {% endif %}"},
      {"{{ 1 + }}", "line 1"},
      {"{% macro m() %}{% endmacro %}", "unsupported statement 'macro'"},
      {"a\nb\n{{ 'unterminated }}", "line 3"},
      {"{{ x | nosuchfilter }}", ""},
      {"{% for x in %}{% endfor %}", "line 1"},
  };
  for (const auto& [src, expect] : broken) {
    try {
      ChatTemplate(src).render(json::object());
      ADD_FAILURE() << src << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("chat template"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << src << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace tritter
