#include "json.h"

#include <cmath>
#include <cstdlib>

namespace sylua::json {

Value::Value() = default;

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : obj)
    if (k == key) return &v;
  return nullptr;
}

namespace {

struct Reader {
  std::string_view s;
  size_t p = 0;
  std::string* err;
  int depth = 0;

  bool fail(const char* what) {
    *err = std::string(what) + " at offset " + std::to_string(p);
    return false;
  }
  void ws() {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) ++p;
  }
  bool lit(std::string_view w) {
    if (s.substr(p, w.size()) != w) return false;
    p += w.size();
    return true;
  }
  static void put_utf8(uint32_t cp, std::string* out) {
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
  bool hex4(uint32_t* cp) {
    if (p + 4 > s.size()) return fail("short \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[p++];
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
  bool string(std::string* out) {
    ++p;  // opening quote
    while (p < s.size()) {
      char c = s[p++];
      if (c == '"') return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (p >= s.size()) break;
      char e = s[p++];
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
          if (cp >= 0xD800 && cp < 0xDC00 && s.substr(p, 2) == "\\u") {
            p += 2;
            uint32_t lo = 0;
            if (!hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(cp, out);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }
  bool number(Value* v) {
    size_t start = p;
    if (s[p] == '-') ++p;
    bool frac = false;
    while (p < s.size()) {
      char c = s[p];
      if (c >= '0' && c <= '9') {
        ++p;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        frac = true;
        ++p;
      } else {
        break;
      }
    }
    std::string text(s.substr(start, p - start));
    char* end = nullptr;
    v->kind = Value::Number;
    v->num = std::strtod(text.c_str(), &end);
    if (!end || *end) return fail("bad number");
    if (!frac && std::fabs(v->num) < 9.2e18) {
      v->integral = true;
      v->i = std::strtoll(text.c_str(), nullptr, 10);
    }
    return true;
  }
  bool value(Value* v) {
    if (++depth > 64) return fail("nesting too deep");
    ws();
    if (p >= s.size()) return fail("unexpected end");
    char c = s[p];
    bool ok = true;
    if (c == '{') {
      v->kind = Value::Object;
      ++p;
      ws();
      if (p < s.size() && s[p] == '}') {
        ++p;
      } else {
        while (ok) {
          ws();
          if (p >= s.size() || s[p] != '"') return fail("expected a key");
          std::string key;
          if (!string(&key)) return false;
          ws();
          if (p >= s.size() || s[p] != ':') return fail("expected ':'");
          ++p;
          Value item;
          if (!value(&item)) return false;
          v->obj.emplace_back(std::move(key), std::move(item));
          ws();
          if (p < s.size() && s[p] == ',') {
            ++p;
            continue;
          }
          if (p < s.size() && s[p] == '}') {
            ++p;
            break;
          }
          ok = fail("expected ',' or '}'");
        }
      }
    } else if (c == '[') {
      v->kind = Value::Array;
      ++p;
      ws();
      if (p < s.size() && s[p] == ']') {
        ++p;
      } else {
        while (ok) {
          Value item;
          if (!value(&item)) return false;
          v->arr.push_back(std::move(item));
          ws();
          if (p < s.size() && s[p] == ',') {
            ++p;
            continue;
          }
          if (p < s.size() && s[p] == ']') {
            ++p;
            break;
          }
          ok = fail("expected ',' or ']'");
        }
      }
    } else if (c == '"') {
      v->kind = Value::String;
      ok = string(&v->str);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      ok = number(v);
    } else if (lit("true")) {
      v->kind = Value::Bool;
      v->b = true;
    } else if (lit("false")) {
      v->kind = Value::Bool;
    } else if (lit("null")) {
      v->kind = Value::Null;
    } else {
      ok = fail("unexpected character");
    }
    --depth;
    return ok;
  }
};

}  // namespace

bool parse(std::string_view text, Value* out, std::string* err) {
  Reader r{text, 0, err};
  if (!r.value(out)) return false;
  r.ws();
  if (r.p != text.size()) return r.fail("trailing characters");
  return true;
}

void encode_string(std::string_view s, std::string* out) {
  static const char* hex = "0123456789abcdef";
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
          *out += "\\u00";
          out->push_back(hex[c >> 4]);
          out->push_back(hex[c & 15]);
        } else {
          out->push_back(char(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace sylua::json
