// Chat templates, rendering: walks the trees chat_template_parse.cpp builds over JSON values. Values are
// nlohmann::ordered_json plus "undefined"; a namespace() is an object that `set ns.x = ...` changes in place.
#include "text/chat_template.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <sstream>

#include "core/error.h"
#include "text/chat_template_ast.h"
#include "text/unicode.h"

namespace tritter {

using json = nlohmann::ordered_json;

namespace {

using namespace chat;
using Node = ChatTemplate::Node;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// ---------------------------------------------------------------- values
struct Value {
  json j;
  bool undefined = false;
  static Value undef() { return {json(), true}; }
};

bool truthy(const Value& v) {
  if (v.undefined || v.j.is_null()) return false;
  if (v.j.is_boolean()) return v.j.get<bool>();
  if (v.j.is_number()) return v.j.get<double>() != 0;
  if (v.j.is_string()) return !v.j.get_ref<const std::string&>().empty();
  return !v.j.empty();
}

std::string python_repr(const json& j, bool top);

std::string to_text(const Value& v) {
  if (v.undefined) return "";
  return python_repr(v.j, true);
}

std::string python_repr(const json& j, bool top) {
  if (j.is_string()) return top ? j.get<std::string>() : "'" + j.get<std::string>() + "'";
  if (j.is_null()) return "None";
  if (j.is_boolean()) return j.get<bool>() ? "True" : "False";
  if (j.is_number_integer()) return std::to_string(j.get<int64_t>());
  if (j.is_number_unsigned()) return std::to_string(j.get<uint64_t>());
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (d == std::floor(d) && std::fabs(d) < 1e16) return std::to_string(static_cast<int64_t>(d)) + ".0";
    std::ostringstream s;
    s.precision(17);
    s << d;
    return s.str();
  }
  std::string out;
  if (j.is_array()) {
    out = "[";
    for (size_t k = 0; k < j.size(); ++k) out += (k ? ", " : "") + python_repr(j[k], false);
    return out + "]";
  }
  out = "{";
  bool first = true;
  for (const auto& [k, v] : j.items()) {
    out += (first ? "'" : ", '") + k + "': " + python_repr(v, false);
    first = false;
  }
  return out + "}";
}

// ---------------------------------------------------------------- evaluation
class Renderer {
 public:
  explicit Renderer(const json& context) { scopes_.push_back(context.is_object() ? context : json::object()); }

  void run(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::seq: for (const auto& c : n.body) run(*c, out); break;
      case Node::text_: out += n.text; break;
      case Node::output: out += to_text(eval(*n.exprs[0])); break;
      case Node::if_:
        for (size_t k = 0; k < n.body.size(); ++k) {
          if (k >= n.exprs.size() || truthy(eval(*n.exprs[k]))) {
            run(*n.body[k], out);
            break;
          }
        }
        break;
      case Node::for_: run_for(n, out); break;
      case Node::set: {
        Value v = eval(*n.exprs[0]);
        if (n.targets.size() == 1) {
          scopes_.back()[n.targets[0]] = v.j;
        } else {
          json* ns = find(n.targets[0]);
          if (!ns || !ns->is_object()) throw_error("chat template: line ", n.line, ": '", n.targets[0], "' is not a namespace");
          (*ns)[n.targets[1]] = v.j;
        }
        break;
      }
    }
  }

 private:
  json* find(const std::string& name) {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto f = it->find(name);
      if (f != it->end()) return &*f;
    }
    return nullptr;
  }

  void run_for(const Node& n, std::string& out) {
    Value seq = eval(*n.exprs[0]);
    std::vector<json> items;
    if (seq.j.is_array()) {
      items.assign(seq.j.begin(), seq.j.end());
    } else if (seq.j.is_object()) {
      for (const auto& [k, v] : seq.j.items()) items.push_back(k);
    } else if (seq.j.is_string()) {
      const std::string& s = seq.j.get_ref<const std::string&>();
      for (size_t i = 0; i < s.size();) {
        const size_t start = i;
        unicode::decode_utf8(s, i);
        items.push_back(s.substr(start, i - start));
      }
    } else if (!seq.undefined && !seq.j.is_null()) {
      throw_error("chat template: line ", n.line, ": cannot loop over a ", seq.j.type_name());
    }
    const auto bind = [&](json& scope, const json& item) {
      if (n.targets.size() == 1) {
        scope[n.targets[0]] = item;
      } else {
        for (size_t k = 0; k < n.targets.size(); ++k) scope[n.targets[k]] = item.is_array() && k < item.size() ? item[k] : json();
      }
    };
    if (n.exprs.size() > 1) {  // {% for x in xs if cond %}: filter first, so loop.* counts the kept items
      std::vector<json> kept;
      for (const auto& item : items) {
        scopes_.push_back(json::object());
        bind(scopes_.back(), item);
        if (truthy(eval(*n.exprs[1]))) kept.push_back(item);
        scopes_.pop_back();
      }
      items.swap(kept);
    }
    const size_t len = items.size();
    for (size_t i = 0; i < len; ++i) {
      scopes_.push_back(json::object());
      bind(scopes_.back(), items[i]);
      json loop = {{"index", i + 1}, {"index0", i}, {"first", i == 0}, {"last", i + 1 == len}, {"length", len},
                   {"revindex", len - i}, {"revindex0", len - i - 1}};
      loop["previtem"] = i > 0 ? items[i - 1] : json();
      loop["nextitem"] = i + 1 < len ? items[i + 1] : json();
      scopes_.back()["loop"] = std::move(loop);
      run(*n.body[0], out);
      scopes_.pop_back();
    }
    if (len == 0 && n.body.size() > 1) run(*n.body[1], out);
  }

  [[noreturn]] void fail(const Expr& e, const std::string& what) { throw_error("chat template: line ", e.line, ": ", what); }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::literal: return {e.value};
      case Expr::var: {
        if (const json* v = find(e.name)) return {*v};
        return Value::undef();
      }
      case Expr::attr: return member(eval(*e.a[0]), e.name);
      case Expr::index: {
        const Value obj = eval(*e.a[0]), key = eval(*e.a[1]);
        if (key.j.is_string()) return member(obj, key.j.get<std::string>());
        if (key.j.is_number_integer() && (obj.j.is_array() || obj.j.is_string())) {
          const int64_t n = obj.j.is_array() ? static_cast<int64_t>(obj.j.size()) : static_cast<int64_t>(obj.j.get_ref<const std::string&>().size());
          int64_t k = key.j.get<int64_t>();
          if (k < 0) k += n;
          if (k < 0 || k >= n) return Value::undef();
          return obj.j.is_array() ? Value{obj.j[static_cast<size_t>(k)]} : Value{std::string(1, obj.j.get_ref<const std::string&>()[k])};
        }
        return Value::undef();
      }
      case Expr::slice: return slice(e);
      case Expr::call: return call(e);
      case Expr::filter: return filter(e);
      case Expr::test: {
        const bool r = test(e);
        return {e.negated ? !r : r};
      }
      case Expr::unary: {
        const Value v = eval(*e.a[0]);
        if (e.name == "not") return {!truthy(v)};
        if (!v.j.is_number()) fail(e, "unary " + e.name + " on a " + std::string(v.j.type_name()));
        if (e.name == "+") return v;
        return v.j.is_number_float() ? Value{-v.j.get<double>()} : Value{-v.j.get<int64_t>()};
      }
      case Expr::binary: return binary(e);
      case Expr::cond: {
        if (truthy(eval(*e.a[1]))) return eval(*e.a[0]);
        return e.a[2] ? eval(*e.a[2]) : Value::undef();
      }
      case Expr::list: {
        json l = json::array();
        for (const auto& x : e.a) l.push_back(eval(*x).j);
        return {l};
      }
      case Expr::dict: {
        json d = json::object();
        for (size_t k = 0; k + 1 < e.a.size(); k += 2) d[to_text(eval(*e.a[k]))] = eval(*e.a[k + 1]).j;
        return {d};
      }
    }
    fail(e, "bad expression");
  }

  static Value member(const Value& obj, const std::string& key) {
    if (obj.j.is_object()) {
      const auto it = obj.j.find(key);
      if (it != obj.j.end()) return {*it};
    }
    return Value::undef();
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.a[0]);
    const bool is_str = obj.j.is_string();
    if (!obj.j.is_array() && !is_str) return Value::undef();
    const int64_t n = is_str ? static_cast<int64_t>(obj.j.get_ref<const std::string&>().size()) : static_cast<int64_t>(obj.j.size());
    const auto bound = [&](const ExprP& x, int64_t fallback) {
      if (!x) return fallback;
      const Value v = eval(*x);
      if (v.j.is_null() || v.undefined) return fallback;
      if (!v.j.is_number_integer()) fail(e, "a slice bound must be an integer");
      return v.j.get<int64_t>();
    };
    const int64_t step = bound(e.a[3], 1);
    if (step == 0) fail(e, "slice step cannot be zero");
    int64_t lo = bound(e.a[1], step > 0 ? 0 : n - 1), hi = bound(e.a[2], step > 0 ? n : -n - 1);
    const auto clamp = [&](int64_t v, bool is_hi) {
      if (v < 0) v += n;
      if (step > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1) + (is_hi ? 0 : 0);
    };
    if (!(step < 0 && !e.a[2])) hi = clamp(hi, true); else hi = -1;
    lo = clamp(lo, false);
    json out = json::array();
    std::string s;
    for (int64_t k = lo; step > 0 ? k < hi : k > hi; k += step) {
      if (is_str) s += obj.j.get_ref<const std::string&>()[static_cast<size_t>(k)];
      else out.push_back(obj.j[static_cast<size_t>(k)]);
    }
    return is_str ? Value{s} : Value{out};
  }

  std::vector<Value> args(const Expr& e, size_t first) {
    std::vector<Value> v;
    for (size_t k = first; k < e.a.size(); ++k) v.push_back(eval(*e.a[k]));
    return v;
  }
  // Positional argument k of a call/filter whose first `skip` operands are not arguments; or its keyword `name`.
  static const Value* arg(const Expr& e, const std::vector<Value>& v, size_t k, const char* name) {
    const size_t positional = v.size() - e.kw.size();
    if (k < positional) return &v[k];
    for (size_t i = 0; i < e.kw.size(); ++i) if (e.kw[i] == name) return &v[positional + i];
    return nullptr;
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.a[0];
    auto v = args(e, 1);
    if (callee.kind == Expr::var) {
      if (callee.name == "raise_exception") {
        throw_error("chat template: raise_exception: ", v.empty() ? std::string() : to_text(v[0]));
      }
      if (callee.name == "namespace") {
        json ns = json::object();
        for (size_t i = 0; i < e.kw.size(); ++i) ns[e.kw[i]] = v[v.size() - e.kw.size() + i].j;
        return {ns};
      }
      if (callee.name == "range") {
        int64_t a = 0, b = 0, step = 1;
        for (const auto& x : v) if (!x.j.is_number_integer()) fail(e, "range() takes integers");
        if (v.size() == 1) b = v[0].j.get<int64_t>();
        else if (v.size() >= 2) a = v[0].j.get<int64_t>(), b = v[1].j.get<int64_t>();
        if (v.size() == 3) step = v[2].j.get<int64_t>();
        if (step == 0 || v.empty() || v.size() > 3) fail(e, "range(): bad arguments");
        json out = json::array();
        for (int64_t k = a; step > 0 ? k < b : k > b; k += step) {
          out.push_back(k);
          if (out.size() > 1000000) fail(e, "range(): too long");
        }
        return {out};
      }
      if (callee.name == "strftime_now") {
        char buf[128] = {0};
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        gmtime_r(&now, &tm);
        std::strftime(buf, sizeof buf, v.empty() ? "%Y-%m-%d" : to_text(v[0]).c_str(), &tm);
        return {std::string(buf)};
      }
      fail(e, "'" + callee.name + "' is not a function");
    }
    if (callee.kind == Expr::attr) return method(e, eval(*callee.a[0]), callee.name, v);
    fail(e, "this expression cannot be called");
  }

  Value method(const Expr& e, const Value& self, const std::string& m, const std::vector<Value>& v) {
    if (self.j.is_string()) {
      const std::string& s = self.j.get_ref<const std::string&>();
      if (m == "strip" || m == "lstrip" || m == "rstrip") {
        const std::string chars = v.empty() || v[0].j.is_null() ? " \t\n\r\f\v" : to_text(v[0]);
        size_t a = 0, b = s.size();
        if (m != "rstrip") while (a < b && chars.find(s[a]) != std::string::npos) ++a;
        if (m != "lstrip") while (b > a && chars.find(s[b - 1]) != std::string::npos) --b;
        return {s.substr(a, b - a)};
      }
      if (m == "upper" || m == "lower" || m == "title" || m == "capitalize") return {case_map(s, m)};
      if (m == "startswith" || m == "endswith") {
        if (v.empty()) fail(e, m + "() needs an argument");
        const std::string x = to_text(v[0]);
        return {m == "startswith" ? s.rfind(x, 0) == 0 : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0};
      }
      if (m == "replace") {
        if (v.size() < 2) fail(e, "replace() needs two arguments");
        return {replace_all(s, to_text(v[0]), to_text(v[1]))};
      }
      if (m == "split") {
        json out = json::array();
        if (v.empty() || v[0].j.is_null()) {
          size_t i = 0;
          while (i < s.size()) {
            while (i < s.size() && is_space(s[i])) ++i;
            size_t j = i;
            while (j < s.size() && !is_space(s[j])) ++j;
            if (j > i) out.push_back(s.substr(i, j - i));
            i = j;
          }
          return {out};
        }
        const std::string sep = to_text(v[0]);
        if (sep.empty()) fail(e, "split(): empty separator");
        size_t i = 0;
        for (size_t j; (j = s.find(sep, i)) != std::string::npos; i = j + sep.size()) out.push_back(s.substr(i, j - i));
        out.push_back(s.substr(i));
        return {out};
      }
    }
    if (self.j.is_object()) {
      if (m == "get") {
        if (v.empty()) fail(e, "get() needs a key");
        const Value r = member(self, to_text(v[0]));
        return r.undefined ? (v.size() > 1 ? v[1] : Value{json()}) : r;
      }
      if (m == "items" || m == "keys" || m == "values") {
        json out = json::array();
        for (const auto& [k, x] : self.j.items()) {
          if (m == "items") out.push_back(json::array({k, x}));
          else out.push_back(m == "keys" ? json(k) : x);
        }
        return {out};
      }
    }
    fail(e, "unknown method '" + m + "' of a " + (self.undefined ? std::string("undefined value") : std::string(self.j.type_name())));
  }

  static std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    std::string out;
    size_t i = 0;
    for (size_t j; (j = s.find(from, i)) != std::string::npos; i = j + from.size()) out += s.substr(i, j - i) + to;
    return out + s.substr(i);
  }

  static std::string case_map(const std::string& s, const std::string& how) {
    std::string out = s;
    bool start = true;
    for (size_t i = 0; i < out.size(); ++i) {
      char& c = out[i];
      const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
      if (how == "upper") c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      else if (how == "lower") c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      else if (how == "capitalize") c = static_cast<char>(i == 0 ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
      else c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
      start = !alpha;
    }
    return out;
  }

  static int64_t length(const Value& v) {
    if (v.j.is_string()) {
      int64_t n = 0;
      const std::string& s = v.j.get_ref<const std::string&>();
      for (size_t i = 0; i < s.size(); ++n) unicode::decode_utf8(s, i);
      return n;
    }
    return v.j.is_array() || v.j.is_object() ? static_cast<int64_t>(v.j.size()) : 0;
  }

  bool attr_test(const json& item, const std::string& attr, const std::vector<Value>& v, size_t first) {
    Value x = member({item}, attr);
    if (v.size() <= first) return truthy(x);
    const std::string t = to_text(v[first]);
    if (t == "equalto" || t == "eq" || t == "==") return v.size() > first + 1 && !x.undefined && x.j == v[first + 1].j;
    if (t == "ne" || t == "!=") return v.size() > first + 1 && (x.undefined || x.j != v[first + 1].j);
    if (t == "defined") return !x.undefined;
    if (t == "undefined") return x.undefined;
    if (t == "none") return !x.undefined && x.j.is_null();
    if (t == "string") return x.j.is_string();
    throw_error("chat template: selectattr/rejectattr: unsupported test '", t, "'");
  }

  Value filter(const Expr& e) {
    const Value x = eval(*e.a[0]);
    const auto v = args(e, 1);
    const std::string& f = e.name;
    if (f == "trim") {
      const std::string s = to_text(x);
      const size_t a = s.find_first_not_of(" \t\n\r\f\v"), b = s.find_last_not_of(" \t\n\r\f\v");
      return {a == std::string::npos ? std::string() : s.substr(a, b - a + 1)};
    }
    if (f == "upper" || f == "lower" || f == "title" || f == "capitalize") return {case_map(to_text(x), f)};
    if (f == "length" || f == "count") return {length(x)};
    if (f == "string") return {to_text(x)};
    if (f == "safe" || f == "e" || f == "escape") return x;  // no autoescape in chat templates
    if (f == "int") {
      if (x.j.is_number_integer()) return {x.j.get<int64_t>()};
      if (x.j.is_number()) {  // truncated toward zero; a value no int64 holds (or NaN) gives 0, as a bad string does
        const double d = x.j.get<double>();
        return {d > -9.2e18 && d < 9.2e18 ? static_cast<int64_t>(d) : int64_t{0}};
      }
      try {
        return {static_cast<int64_t>(std::stoll(to_text(x)))};
      } catch (const std::exception&) {
        return {int64_t{0}};
      }
    }
    if (f == "default" || f == "d") {
      const Value* fallback = arg(e, v, 0, "default_value");
      const Value* boolean = arg(e, v, 1, "boolean");
      const bool use = x.undefined || (boolean && truthy(*boolean) && !truthy(x));
      return use ? (fallback ? *fallback : Value{std::string()}) : x;
    }
    if (f == "first" || f == "last") {
      if (x.j.is_array()) return x.j.empty() ? Value::undef() : Value{f == "first" ? x.j.front() : x.j.back()};
      if (x.j.is_string()) {
        const std::string& s = x.j.get_ref<const std::string&>();
        return s.empty() ? Value::undef() : Value{std::string(1, f == "first" ? s.front() : s.back())};
      }
      return Value::undef();
    }
    if (f == "join") {
      const Value* sep = arg(e, v, 0, "d");
      std::string out;
      if (x.j.is_array()) {
        for (size_t k = 0; k < x.j.size(); ++k) out += (k && sep ? to_text(*sep) : "") + to_text({x.j[k]});
      }
      return {out};
    }
    if (f == "replace") {
      if (v.size() < 2) fail(e, "replace needs two arguments");
      return {replace_all(to_text(x), to_text(v[0]), to_text(v[1]))};
    }
    if (f == "list") {
      if (x.j.is_array()) return x;
      json out = json::array();
      if (x.j.is_object()) for (const auto& [k, _] : x.j.items()) out.push_back(k);
      if (x.j.is_string()) for (char c : x.j.get_ref<const std::string&>()) out.push_back(std::string(1, c));
      return {out};
    }
    if (f == "reverse") {
      if (x.j.is_string()) return {std::string(x.j.get_ref<const std::string&>().rbegin(), x.j.get_ref<const std::string&>().rend())};
      json out = json::array();
      if (x.j.is_array()) for (auto it = x.j.rbegin(); it != x.j.rend(); ++it) out.push_back(*it);
      return {out};
    }
    if (f == "items") {
      json out = json::array();
      if (x.j.is_object()) for (const auto& [k, val] : x.j.items()) out.push_back(json::array({k, val}));
      return {out};
    }
    if (f == "tojson") {
      const Value* indent = arg(e, v, 0, "indent");
      const int64_t n = indent && indent->j.is_number_integer() ? indent->j.get<int64_t>() : -1;
      if (n > 64) fail(e, "tojson indent " + std::to_string(n) + ", expected at most 64");
      // A string with invalid UTF-8 (a message's bytes are the user's) is written with U+FFFD, not refused.
      return {x.undefined ? std::string("null") : x.j.dump(n < 0 ? -1 : static_cast<int>(n), ' ', false, json::error_handler_t::replace)};
    }
    if (f == "selectattr" || f == "rejectattr") {
      if (v.empty()) fail(e, f + " needs an attribute name");
      json out = json::array();
      if (x.j.is_array()) {
        for (const auto& item : x.j) if (attr_test(item, to_text(v[0]), v, 1) == (f == "selectattr")) out.push_back(item);
      }
      return {out};
    }
    if (f == "map") {
      const Value* attribute = arg(e, v, 99, "attribute");
      if (!attribute) fail(e, "map supports only map(attribute=...)");
      json out = json::array();
      if (x.j.is_array()) for (const auto& item : x.j) out.push_back(member({item}, to_text(*attribute)).j);
      return {out};
    }
    fail(e, "unsupported filter '" + f + "'");
  }

  bool test(const Expr& e) {
    const Value x = eval(*e.a[0]);
    const auto v = args(e, 1);
    const std::string& t = e.name;
    if (t == "defined") return !x.undefined;
    if (t == "undefined") return x.undefined;
    if (t == "none") return !x.undefined && x.j.is_null();
    if (t == "string") return x.j.is_string();
    if (t == "number") return x.j.is_number();
    if (t == "integer") return x.j.is_number_integer();
    if (t == "float") return x.j.is_number_float();
    if (t == "boolean") return x.j.is_boolean();
    if (t == "true") return x.j.is_boolean() && x.j.get<bool>();
    if (t == "false") return x.j.is_boolean() && !x.j.get<bool>();
    if (t == "mapping") return x.j.is_object();
    if (t == "sequence" || t == "iterable") return x.j.is_array() || x.j.is_string() || (t == "iterable" && x.j.is_object());
    if (t == "even" || t == "odd") return x.j.is_number_integer() && (x.j.get<int64_t>() % 2 == 0) == (t == "even");
    if (t == "equalto" || t == "eq" || t == "sameas") return !v.empty() && x.j == v[0].j;
    fail(e, "unsupported test '" + t + "'");
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value l = eval(*e.a[0]);
      return truthy(l) ? eval(*e.a[1]) : l;
    }
    if (op == "or") {
      Value l = eval(*e.a[0]);
      return truthy(l) ? l : eval(*e.a[1]);
    }
    const Value l = eval(*e.a[0]), r = eval(*e.a[1]);
    if (op == "~") return {to_text(l) + to_text(r)};
    if (op == "==") return {l.undefined == r.undefined && l.j == r.j};
    if (op == "!=") return {!(l.undefined == r.undefined && l.j == r.j)};
    if (op == "in" || op == "not in") {
      bool found = false;
      if (r.j.is_string()) found = r.j.get_ref<const std::string&>().find(to_text(l)) != std::string::npos;
      else if (r.j.is_array()) found = std::find(r.j.begin(), r.j.end(), l.j) != r.j.end();
      else if (r.j.is_object()) found = l.j.is_string() && r.j.contains(l.j.get<std::string>());
      return {op == "in" ? found : !found};
    }
    if (op == "+" && l.j.is_string() && r.j.is_string()) return {l.j.get<std::string>() + r.j.get<std::string>()};
    if (op == "+" && l.j.is_array() && r.j.is_array()) {
      json out = l.j;
      for (const auto& y : r.j) out.push_back(y);
      return {out};
    }
    if (op == "+" && (l.j.is_string() || r.j.is_string())) {
      fail(e, std::string("cannot add a ") + (l.undefined ? "undefined value" : l.j.type_name()) + " and a " +
                  (r.undefined ? "undefined value" : r.j.type_name()));
    }
    if (op == "*" && l.j.is_string() && r.j.is_number_integer()) {
      std::string out;
      for (int64_t k = 0; k < std::min<int64_t>(r.j.get<int64_t>(), 1 << 20); ++k) out += l.j.get<std::string>();
      return {out};
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      if (!((l.j.is_number() && r.j.is_number()) || (l.j.is_string() && r.j.is_string()))) {
        fail(e, "cannot compare a " + std::string(l.j.type_name()) + " with a " + r.j.type_name());
      }
      return {op == "<" ? l.j < r.j : op == ">" ? r.j < l.j : op == "<=" ? !(r.j < l.j) : !(l.j < r.j)};
    }
    if (!l.j.is_number() || !r.j.is_number()) {
      fail(e, "'" + op + "' needs numbers, found a " + std::string(l.j.type_name()) + " and a " + r.j.type_name());
    }
    const bool ints = l.j.is_number_integer() && r.j.is_number_integer();
    if (ints && op != "/") {
      const int64_t a = l.j.get<int64_t>(), b = r.j.get<int64_t>();
      if ((op == "//" || op == "%") && b == 0) fail(e, "division by zero");
      int64_t r = 0;  // 64-bit results that do not fit are an error, not undefined behaviour
      if (op == "+" || op == "-" || op == "*") {
        const bool over = op == "+" ? __builtin_add_overflow(a, b, &r)
                          : op == "-" ? __builtin_sub_overflow(a, b, &r) : __builtin_mul_overflow(a, b, &r);
        if (over) fail(e, "integer overflow in '" + op + "'");
        return {r};
      }
      if (b == -1) {  // a / −1 overflows for the most negative a; a % −1 is 0
        if (op == "%") return {int64_t{0}};
        if (__builtin_sub_overflow(int64_t{0}, a, &r)) fail(e, "integer overflow in '//'");
        return {r};
      }
      if (op == "//") return {a / b - ((a % b != 0) && ((a < 0) != (b < 0)))};
      if (op == "%") {  // the sign of the divisor, as Python's
        int64_t m = a % b;
        if (m != 0 && ((m < 0) != (b < 0))) m += b;
        return {m};
      }
    }
    const double a = l.j.get<double>(), b = r.j.get<double>();
    if (op == "+") return {a + b};
    if (op == "-") return {a - b};
    if (op == "*") return {a * b};
    if (b == 0) fail(e, "division by zero");
    if (op == "/") return {a / b};
    if (op == "//") return {std::floor(a / b)};
    if (op == "%") return {a - b * std::floor(a / b)};
    fail(e, "unknown operator '" + op + "'");
  }

  std::vector<json> scopes_;
};

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source) : root_(chat::parse_template(source)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

std::string ChatTemplate::render(const json& context) const {
  std::string out;
  Renderer(context).run(*root_, out);
  return out;
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, const ChatTemplateOptions& options) const {
  json context = options.extra.is_object() ? options.extra : json::object();
  json list = json::array();
  for (const auto& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  context["messages"] = std::move(list);
  context["add_generation_prompt"] = options.add_generation_prompt;
  context["bos_token"] = options.bos_token;
  context["eos_token"] = options.eos_token;
  return render(context);
}

const char* builtin_chat_template() {
  return "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
         "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";
}

}  // namespace tritter
