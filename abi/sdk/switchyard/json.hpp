// Switchyard C++ SDK: JSON, the form in which the host hands a module its configs and metadata.
//
// One reader for every module: a full RFC 8259 parser into a small Value tree (nested configs
// such as Envoy's PluginConfig, ext_proc's processing modes, Lua's source_codes), a writer for
// the values a module hands back (dynamic metadata), and on top of the parser the flat-object
// helpers most native filters need (take_string, take_integer, no_unknown_keys).
//
// It is strict where the host is exact and a module's author may not be: raw control bytes in a
// string, lone surrogates, leading zeros, duplicate keys, nesting over kMaxDepth and anything
// after the value are errors, each saying what and at which byte offset. Header-only and
// without dependencies, as the rest of the SDK, so a module stays buildable out of tree.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Hidden for the same reason as sdk.hpp: inline functions with static locals would otherwise
// become STB_GNU_UNIQUE and pin the module in memory, which breaks hot swap.
#pragma GCC visibility push(hidden)

namespace sy::sdk::json {

// Deeper documents are refused: the parser recurses, and a config is never this deep.
inline constexpr int kMaxDepth = 64;

struct Value {
  // Declared here and defaulted below, where Value is complete: an implicit constructor would
  // make clang (with libstdc++) check pair<string, Value> while Value is incomplete, and fail.
  Value();

  enum Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Null;
  bool b = false;
  double num = 0;
  bool integral = false;  // a number written without fraction or exponent that fits an int64
  int64_t i = 0;          // its value when integral
  std::string str;        // a string's value; a number's text as written
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;  // in the order written; keys are unique

  // The member KEY of an object, or nullptr (also when this is not an object).
  const Value* find(std::string_view key) const {
    for (const auto& kv : obj)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  bool is_object() const { return kind == Object; }
  // "null", "a boolean", "a number", "a string", "a list" or "a map", for messages (a user
  // writes the config in YAML, whose words these are).
  const char* kind_name() const {
    static constexpr const char* kNames[] = {"null",     "a boolean", "a number",
                                             "a string", "a list",    "a map"};
    return kNames[kind];
  }
};

inline Value::Value() = default;

namespace detail {

class Parser {
 public:
  Parser(std::string_view text, std::string* err) : t_(text), err_(err) {}

  bool document(Value* out) {
    if (!value(out, 0)) return false;
    ws();
    return at_end() || fail("unexpected text after the value");
  }

 private:
  bool fail(const char* what) {
    if (err_ != nullptr)
      *err_ = std::string("invalid JSON: ") + what + " at offset " + std::to_string(p_);
    return false;
  }
  bool at_end() const { return p_ >= t_.size(); }
  char peek() const { return at_end() ? '\0' : t_[p_]; }
  bool eat(char c) {
    if (at_end() || t_[p_] != c) return false;
    ++p_;
    return true;
  }
  void ws() {
    while (!at_end() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }
  bool word(std::string_view w) {
    if (t_.substr(p_, w.size()) != w) return fail("unknown literal");
    p_ += w.size();
    return true;
  }

  bool value(Value* v, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    ws();
    switch (peek()) {
      case '\0':
        if (at_end()) return fail("unexpected end");
        return fail("unexpected character");
      case '{':
        return object(v, depth);
      case '[':
        return array(v, depth);
      case '"':
        v->kind = Value::String;
        return string(&v->str);
      case 't':
        v->kind = Value::Bool;
        v->b = true;
        return word("true");
      case 'f':
        v->kind = Value::Bool;
        return word("false");
      case 'n':
        v->kind = Value::Null;
        return word("null");
      default:
        return number(v);
    }
  }

  bool object(Value* v, int depth) {
    v->kind = Value::Object;
    ++p_;
    ws();
    if (eat('}')) return true;
    for (;;) {
      ws();
      if (peek() != '"') return fail("expected a quoted key");
      std::string key;
      if (!string(&key)) return false;
      if (v->find(key) != nullptr) return fail("duplicate key");
      ws();
      if (!eat(':')) return fail("expected ':'");
      Value item;
      if (!value(&item, depth + 1)) return false;
      v->obj.emplace_back(std::move(key), std::move(item));
      ws();
      if (eat('}')) return true;
      if (!eat(',')) return fail("expected ',' or '}'");
    }
  }

  bool array(Value* v, int depth) {
    v->kind = Value::Array;
    ++p_;
    ws();
    if (eat(']')) return true;
    for (;;) {
      Value item;
      if (!value(&item, depth + 1)) return false;
      v->arr.push_back(std::move(item));
      ws();
      if (eat(']')) return true;
      if (!eat(',')) return fail("expected ',' or ']'");
    }
  }

  static void utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(char(cp));
    } else if (cp < 0x800) {
      out->push_back(char(0xC0 | (cp >> 6)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(char(0xE0 | (cp >> 12)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(char(0xF0 | (cp >> 18)));
      out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    }
  }

  bool hex4(uint32_t* out) {
    if (t_.size() - p_ < 4) return fail("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[p_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= uint32_t(c - 'A' + 10);
      else
        return fail("bad \\u escape");
    }
    *out = v;
    return true;
  }

  bool string(std::string* out) {
    ++p_;  // the opening quote
    while (!at_end()) {
      char c = t_[p_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (at_end()) break;
      char e = t_[p_++];
      // The one-letter escapes and what they stand for.
      static constexpr std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
      if (size_t k = kFrom.find(e); k != std::string_view::npos) {
        out->push_back(kTo[k]);
        continue;
      }
      if (e != 'u') return fail("bad escape");
      uint32_t cp = 0;
      if (!hex4(&cp)) return false;
      if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate must pair with a low one
        uint32_t lo = 0;
        if (!eat('\\') || !eat('u')) return fail("unpaired surrogate");
        if (!hex4(&lo)) return false;
        if (lo < 0xDC00 || lo > 0xDFFF) return fail("unpaired surrogate");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return fail("unpaired surrogate");
      }
      utf8(cp, out);
    }
    return fail("unterminated string");
  }

  bool digits() {
    size_t start = p_;
    while (!at_end() && t_[p_] >= '0' && t_[p_] <= '9') ++p_;
    return p_ > start;
  }

  bool number(Value* v) {
    size_t start = p_;
    eat('-');
    if (!eat('0') && !digits()) return fail("unexpected character");
    bool simple = true;
    if (eat('.')) {
      simple = false;
      if (!digits()) return fail("bad number");
    }
    if (peek() == 'e' || peek() == 'E') {
      simple = false;
      ++p_;
      if (!eat('+')) eat('-');
      if (!digits()) return fail("bad number");
    }
    v->kind = Value::Number;
    v->str.assign(t_.substr(start, p_ - start));
    v->num = std::strtod(v->str.c_str(), nullptr);
    if (simple) {
      errno = 0;
      long long n = std::strtoll(v->str.c_str(), nullptr, 10);
      if (errno == 0) {
        v->integral = true;
        v->i = n;
      }
    }
    return true;
  }

  std::string_view t_;
  std::string* err_;
  size_t p_ = 0;
};

}  // namespace detail

// Parses TEXT into OUT. On failure returns false and says why in ERR ("invalid JSON: ... at
// offset N").
inline bool parse(std::string_view text, Value* out, std::string* err) {
  *out = Value();
  return detail::Parser(text, err).document(out);
}

// Appends S as a JSON string literal to OUT.
inline void write_string(std::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(char(c));
        }
    }
  }
  out->push_back('"');
}

// Appends D to OUT: a whole number below 1e15 in plain digits, anything else in the fewest
// significant digits that read back as the same double (0.1 is "0.1", not
// "0.10000000000000001"). JSON has no NaN or infinity: those are written as null.
inline void write_number(double d, std::string* out) {
  if (!std::isfinite(d)) {
    *out += "null";
    return;
  }
  char buf[32];
  if (d == std::floor(d) && std::fabs(d) < 1e15) {
    // Whole numbers without fraction or exponent, as readers expect of counts and ids (%g
    // would write 100 as "1e+02").
    std::snprintf(buf, sizeof buf, "%.0f", d);
  } else {
    for (int digits = 1; digits <= 17; ++digits) {
      std::snprintf(buf, sizeof buf, "%.*g", digits, d);
      if (std::strtod(buf, nullptr) == d) break;
    }
  }
  *out += buf;
}

// Appends V as compact JSON text to OUT. A number that was read goes out as written (its str),
// one built in code (str left empty) through write_number.
inline void write(const Value& v, std::string* out) {
  switch (v.kind) {
    case Value::Null:
      *out += "null";
      return;
    case Value::Bool:
      *out += v.b ? "true" : "false";
      return;
    case Value::Number:
      if (!v.str.empty())
        *out += v.str;
      else
        write_number(v.num, out);
      return;
    case Value::String:
      write_string(v.str, out);
      return;
    case Value::Array:
      out->push_back('[');
      for (size_t k = 0; k < v.arr.size(); ++k) {
        if (k) out->push_back(',');
        write(v.arr[k], out);
      }
      out->push_back(']');
      return;
    case Value::Object:
      out->push_back('{');
      for (size_t k = 0; k < v.obj.size(); ++k) {
        if (k) out->push_back(',');
        write_string(v.obj[k].first, out);
        out->push_back(':');
        write(v.obj[k].second, out);
      }
      out->push_back('}');
      return;
  }
}

// ---- Flat objects ------------------------------------------------------------------------
//
// Most native filters take a flat object of scalars as config; these read one and take its
// keys one by one, so that a key nobody took (a typo) is an error.

struct Scalar {
  enum Kind { kString, kNumber, kBool, kNull };
  Kind kind = kNull;
  std::string text;  // a string's unescaped value; a number, true, false or null as written
};

using FlatObject = std::map<std::string, Scalar, std::less<>>;

namespace detail {

// 'KEY' followed by REST. (Built by appending: GCC 12 warns falsely on "'" + std::string(...).)
inline std::string quoted(std::string_view key, std::string_view rest) {
  std::string out;
  out.reserve(key.size() + rest.size() + 2);
  out.push_back('\'');
  out.append(key);
  out.push_back('\'');
  out.append(rest);
  return out;
}

}  // namespace detail

// Parses a JSON object whose values are all scalars. On failure ERR says why.
inline std::optional<FlatObject> parse_flat_object(std::string_view text, std::string* err) {
  auto fail = [err](std::string why) -> std::optional<FlatObject> {
    if (err != nullptr) *err = std::move(why);
    return std::nullopt;
  };
  Value root;
  std::string why;
  if (!parse(text, &root, &why)) return fail("config: " + why);
  if (!root.is_object()) return fail(std::string("config must be a map, got ") + root.kind_name());
  FlatObject out;
  for (auto& [key, v] : root.obj) {
    Scalar s;
    switch (v.kind) {
      case Value::Array:
      case Value::Object:
        return fail(
            detail::quoted(key, " must be a string, number or boolean, not an object or array"));
      case Value::String:
        s.kind = Scalar::kString;
        s.text = std::move(v.str);
        break;
      case Value::Number:
        s.kind = Scalar::kNumber;
        s.text = std::move(v.str);
        break;
      case Value::Bool:
        s.kind = Scalar::kBool;
        s.text = v.b ? "true" : "false";
        break;
      case Value::Null:
        s.text = "null";
        break;
    }
    out.emplace(key, std::move(s));  // keys are unique: the parser refuses duplicates
  }
  return out;
}

// Removes KEY from OBJ and returns its string value; FALLBACK when absent. A present value of
// another kind is an error.
inline std::optional<std::string> take_string(FlatObject& obj, std::string_view key,
                                              std::string fallback, std::string* err) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if (it->second.kind != Scalar::kString) {
    *err = detail::quoted(key, " must be a string, got ") + it->second.text;
    return std::nullopt;
  }
  std::string v = std::move(it->second.text);
  obj.erase(it);
  return v;
}

// Removes KEY from OBJ and returns it as an integer in [MIN, MAX]; FALLBACK when absent.
inline std::optional<int64_t> take_integer(FlatObject& obj, std::string_view key, int64_t fallback,
                                           int64_t min, int64_t max, std::string* err) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  const std::string& t = it->second.text;
  int64_t v = 0;
  bool ok = it->second.kind == Scalar::kNumber && !t.empty();
  size_t i = t[0] == '-' ? 1 : 0;
  for (; ok && i < t.size(); ++i) {
    if (t[i] < '0' || t[i] > '9' || v > (INT64_MAX - 9) / 10) {
      ok = false;
      break;
    }
    v = v * 10 + (t[i] - '0');
  }
  if (ok && t[0] == '-') v = -v;
  if (!ok || v < min || v > max) {
    *err = detail::quoted(key, " must be an integer from ") + std::to_string(min) + " to " +
           std::to_string(max) + ", got " + (t.empty() ? "nothing" : t);
    return std::nullopt;
  }
  obj.erase(it);
  return v;
}

// After every known key was taken: an error naming what is left, so typos do not pass silently.
inline bool no_unknown_keys(const FlatObject& obj, std::string_view known, std::string* err) {
  if (obj.empty()) return true;
  *err = "unknown key '" + obj.begin()->first + "' (known: " + std::string(known) + ")";
  return false;
}

}  // namespace sy::sdk::json

#pragma GCC visibility pop
