#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ext_authz::json {

Value::Value() = default;

const Value* Value::get(std::string_view key) const {
  if (type != kObject) return nullptr;
  for (const auto& [k, v] : object)
    if (k == key) return &v;
  return nullptr;
}

const char* Value::type_name() const {
  switch (type) {
    case kNull:
      return "null";
    case kBool:
      return "a boolean";
    case kNumber:
      return "a number";
    case kString:
      return "a string";
    case kArray:
      return "a list";
    case kObject:
      return "a map";
  }
  return "?";
}

namespace {

// Recursive descent over a view; nesting is bounded so hostile metadata cannot exhaust the
// worker's stack.
class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  bool value(Value* out, int depth) {
    if (depth > 64) return fail("nesting deeper than 64 levels");
    ws();
    if (i_ >= t_.size()) return fail("unexpected end of input");
    char c = t_[i_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      out->type = Value::kString;
      return string(&out->string);
    }
    if (literal("true")) {
      out->type = Value::kBool;
      out->boolean = true;
      return true;
    }
    if (literal("false")) {
      out->type = Value::kBool;
      return true;
    }
    if (literal("null")) return true;
    return number(out);
  }

  bool end() {
    ws();
    return i_ == t_.size() || fail("unexpected text after the value");
  }
  const std::string& error() const { return err_; }

 private:
  bool fail(const std::string& why) {
    if (err_.empty()) err_ = why + " at offset " + std::to_string(i_);
    return false;
  }
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }
  bool literal(std::string_view w) {
    if (t_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool object(Value* out, int depth) {
    out->type = Value::kObject;
    ++i_;
    ws();
    if (i_ < t_.size() && t_[i_] == '}') return ++i_, true;
    for (;;) {
      ws();
      std::string key;
      if (i_ >= t_.size() || t_[i_] != '"') return fail("expected a string key");
      if (!string(&key)) return false;
      if (out->get(key) != nullptr) return fail("duplicate key '" + key + "'");
      ws();
      if (i_ >= t_.size() || t_[i_] != ':') return fail("expected ':'");
      ++i_;
      Value v;
      if (!value(&v, depth + 1)) return false;
      out->object.emplace_back(std::move(key), std::move(v));
      ws();
      if (i_ < t_.size() && t_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < t_.size() && t_[i_] == '}') return ++i_, true;
      return fail("expected ',' or '}'");
    }
  }
  bool array(Value* out, int depth) {
    out->type = Value::kArray;
    ++i_;
    ws();
    if (i_ < t_.size() && t_[i_] == ']') return ++i_, true;
    for (;;) {
      Value v;
      if (!value(&v, depth + 1)) return false;
      out->array.push_back(std::move(v));
      ws();
      if (i_ < t_.size() && t_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < t_.size() && t_[i_] == ']') return ++i_, true;
      return fail("expected ',' or ']'");
    }
  }
  bool hex4(uint32_t* cp) {
    if (i_ + 4 > t_.size()) return fail("short \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[i_++];
      *cp <<= 4;
      if (c >= '0' && c <= '9')
        *cp |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        *cp |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        *cp |= uint32_t(c - 'A' + 10);
      else
        return fail("bad \\u escape");
    }
    return true;
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
  bool string(std::string* out) {
    ++i_;  // the opening quote
    while (i_ < t_.size()) {
      char c = t_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= t_.size()) break;
      char e = t_[i_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return false;
          // A surrogate pair encodes one code point beyond the BMP.
          if (cp >= 0xD800 && cp < 0xDC00 && t_.substr(i_, 2) == "\\u") {
            i_ += 2;
            uint32_t lo = 0;
            if (!hex4(&lo)) return false;
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(cp, out);
          break;
        }
        default:
          return fail("bad escape in a string");
      }
    }
    return fail("unterminated string");
  }
  bool number(Value* out) {
    size_t start = i_;
    if (i_ < t_.size() && t_[i_] == '-') ++i_;
    while (i_ < t_.size() && (isdigit(static_cast<unsigned char>(t_[i_])) || t_[i_] == '.' ||
                              t_[i_] == 'e' || t_[i_] == 'E' || t_[i_] == '+' || t_[i_] == '-'))
      ++i_;
    std::string s(t_.substr(start, i_ - start));
    char* end = nullptr;
    double d = s.empty() ? 0 : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d)) {
      i_ = start;
      return fail("unexpected character");
    }
    out->type = Value::kNumber;
    out->number = d;
    return true;
  }

  std::string_view t_;
  size_t i_ = 0;
  std::string err_;
};

}  // namespace

std::optional<Value> parse(std::string_view text, std::string* err) {
  Parser p(text);
  Value v;
  if (!p.value(&v, 0) || !p.end()) {
    if (err) *err = "invalid JSON: " + p.error();
    return std::nullopt;
  }
  return v;
}

void write_string(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out->append(buf);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

void write(const Value& v, std::string* out) {
  switch (v.type) {
    case Value::kNull:
      out->append("null");
      break;
    case Value::kBool:
      out->append(v.boolean ? "true" : "false");
      break;
    case Value::kNumber: {
      char buf[32];
      // Integral values print without a fraction, as JSON readers expect of counts and ids.
      if (v.number == std::floor(v.number) && std::fabs(v.number) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v.number);
      else
        std::snprintf(buf, sizeof buf, "%.17g", v.number);
      out->append(buf);
      break;
    }
    case Value::kString:
      write_string(v.string, out);
      break;
    case Value::kArray: {
      out->push_back('[');
      for (size_t i = 0; i < v.array.size(); ++i) {
        if (i) out->push_back(',');
        write(v.array[i], out);
      }
      out->push_back(']');
      break;
    }
    case Value::kObject: {
      out->push_back('{');
      for (size_t i = 0; i < v.object.size(); ++i) {
        if (i) out->push_back(',');
        write_string(v.object[i].first, out);
        out->push_back(':');
        write(v.object[i].second, out);
      }
      out->push_back('}');
      break;
    }
  }
}

}  // namespace ext_authz::json
