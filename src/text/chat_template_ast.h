// The parsed form of a chat template (internal to text/: chat_template_parse.cpp builds it, chat_template.cpp
// renders it). Expressions and statements are plain trees; values are JSON.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "text/chat_template.h"

namespace tritter {

namespace chat {
using json = nlohmann::ordered_json;

struct Expr {
  enum Kind { literal, var, attr, index, slice, call, filter, test, unary, binary, cond, list, dict } kind;
  json value;                            // literal
  std::string name;                      // var, attr, filter, test, unary/binary operator
  std::vector<std::unique_ptr<Expr>> a;  // operands / arguments (nullptr for an omitted slice bound)
  std::vector<std::string> kw;           // call/filter: keyword names of the trailing arguments
  bool negated = false;                  // test: is not
  int line = 0;
};
using ExprP = std::unique_ptr<Expr>;


}  // namespace chat

struct ChatTemplate::Node {
  enum Kind { seq, text_, output, if_, for_, set } kind = seq;
  std::string text;                  // text
  std::vector<std::string> targets;  // for: loop names; set: name [, attribute]
  std::vector<chat::ExprP> exprs;          // output: 1; if: conditions; for: iterable [, filter]; set: value
  std::vector<std::unique_ptr<Node>> body;  // seq: children; if: one seq per branch (+ else); for: body [, else]
  int line = 0;
};


namespace chat {
// Parses a template; throws Error "chat template: line L: ..." on bad syntax or an unsupported construct.
std::unique_ptr<ChatTemplate::Node> parse_template(std::string_view source);
}  // namespace chat

}  // namespace tritter
