#include "json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace extproc::json {

Value::Value() = default;

const Value* Value::find(std::string_view key) const {
  for (const auto& kv : obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, std::string* err) : t_(text), err_(err) {}

  bool document(Value* out) {
    if (!value(out, 0)) return false;
    skip();
    if (pos_ != t_.size()) return error("unexpected text after the value");
    return true;
  }

 private:
  bool error(const char* what) {
    *err_ = std::string("invalid JSON: ") + what + " at offset " + std::to_string(pos_);
    return false;
  }
  void skip() {
    while (pos_ < t_.size() &&
           (t_[pos_] == ' ' || t_[pos_] == '\n' || t_[pos_] == '\r' || t_[pos_] == '\t'))
      ++pos_;
  }
  bool literal(std::string_view word) {
    if (t_.substr(pos_, word.size()) != word) return error("unknown literal");
    pos_ += word.size();
    return true;
  }

  bool value(Value* v, int depth) {
    if (depth > 64) return error("nesting too deep");
    skip();
    if (pos_ >= t_.size()) return error("unexpected end");
    char c = t_[pos_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v->kind = Value::String;
      return string(&v->str);
    }
    if (c == 't') {
      v->kind = Value::Bool;
      v->b = true;
      return literal("true");
    }
    if (c == 'f') {
      v->kind = Value::Bool;
      return literal("false");
    }
    if (c == 'n') return literal("null");
    return number(v);
  }

  bool object(Value* v, int depth) {
    v->kind = Value::Object;
    ++pos_;
    skip();
    if (pos_ < t_.size() && t_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip();
      if (pos_ >= t_.size() || t_[pos_] != '"') return error("expected a key");
      std::string key;
      if (!string(&key)) return false;
      skip();
      if (pos_ >= t_.size() || t_[pos_] != ':') return error("expected ':'");
      ++pos_;
      v->obj.emplace_back(std::move(key), Value());
      if (!value(&v->obj.back().second, depth + 1)) return false;
      skip();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return error("expected ',' or '}'");
    }
  }

  bool array(Value* v, int depth) {
    v->kind = Value::Array;
    ++pos_;
    skip();
    if (pos_ < t_.size() && t_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      v->arr.emplace_back();
      if (!value(&v->arr.back(), depth + 1)) return false;
      skip();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return error("expected ',' or ']'");
    }
  }

  static void utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(char(cp));
    } else if (cp < 0x800) {
      out->push_back(char(0xc0 | (cp >> 6)));
      out->push_back(char(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(char(0xe0 | (cp >> 12)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(char(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(char(0xf0 | (cp >> 18)));
      out->push_back(char(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(char(0x80 | (cp & 0x3f)));
    }
  }

  bool hex4(uint32_t* out) {
    if (pos_ + 4 > t_.size()) return error("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= uint32_t(c - 'A' + 10);
      else
        return error("bad \\u escape");
    }
    *out = v;
    return true;
  }

  bool string(std::string* out) {
    ++pos_;  // the opening quote
    while (pos_ < t_.size()) {
      char c = t_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return error("control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= t_.size()) break;
      char e = t_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
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
          if (cp >= 0xd800 && cp < 0xdc00 && t_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            uint32_t lo = 0;
            if (!hex4(&lo)) return false;
            if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          utf8(cp, out);
          break;
        }
        default:
          return error("bad escape");
      }
    }
    return error("unterminated string");
  }

  bool number(Value* v) {
    size_t start = pos_;
    if (pos_ < t_.size() && t_[pos_] == '-') ++pos_;
    bool simple = true;
    while (pos_ < t_.size()) {
      char c = t_[pos_];
      if (c >= '0' && c <= '9') {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        simple = false;
        ++pos_;
      } else {
        break;
      }
    }
    std::string text(t_.substr(start, pos_ - start));
    if (text.empty() || text == "-") return error("expected a value");
    char* end = nullptr;
    v->num = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return error("bad number");
    v->kind = Value::Number;
    if (simple) {
      errno = 0;
      long long n = std::strtoll(text.c_str(), &end, 10);
      if (errno == 0) {
        v->integral = true;
        v->i = n;
      }
    }
    return true;
  }

  std::string_view t_;
  std::string* err_;
  size_t pos_ = 0;
};

}  // namespace

bool parse(std::string_view text, Value* out, std::string* err) {
  *out = Value();
  return Parser(text, err).document(out);
}

void encode_string(std::string_view s, std::string* out) {
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

}  // namespace extproc::json
