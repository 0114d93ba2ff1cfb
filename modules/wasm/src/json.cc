// A small recursive-descent JSON reader (RFC 8259), enough for filter configs.
#include "json.h"

#include <cstdint>

namespace sywasm {
namespace {

class Reader {
 public:
  Reader(std::string_view s, std::string* err) : s_(s), err_(err) {}

  bool document(Json* out) {
    if (!value(out, 0)) return false;
    skip();
    if (i_ != s_.size()) return fail("trailing characters after the JSON value");
    return true;
  }

 private:
  bool fail(const std::string& why) {
    *err_ = why + " at offset " + std::to_string(i_);
    return false;
  }
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool value(Json* out, int depth) {
    if (depth > 64) return fail("JSON nested too deeply");
    skip();
    if (i_ >= s_.size()) return fail("unexpected end of JSON");
    char c = s_[i_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      out->kind = Json::kString;
      return string(&out->text);
    }
    if (s_.substr(i_, 4) == "true") return word(out, Json::kBool, true, 4);
    if (s_.substr(i_, 5) == "false") return word(out, Json::kBool, false, 5);
    if (s_.substr(i_, 4) == "null") return word(out, Json::kNull, false, 4);
    return number(out);
  }
  bool word(Json* out, Json::Kind k, bool b, size_t n) {
    out->kind = k;
    out->boolean = b;
    i_ += n;
    return true;
  }
  bool number(Json* out) {
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    while (i_ < s_.size() && (isdigit((unsigned char)s_[i_]) || s_[i_] == '.' || s_[i_] == 'e' ||
                              s_[i_] == 'E' || s_[i_] == '+' || s_[i_] == '-'))
      ++i_;
    if (i_ == start) return fail("expected a JSON value");
    out->kind = Json::kNumber;
    out->text = std::string(s_.substr(start, i_ - start));
    return true;
  }
  bool object(Json* out, int depth) {
    out->kind = Json::kObject;
    ++i_;
    if (eat('}')) return true;
    do {
      skip();
      std::string key;
      if (i_ >= s_.size() || s_[i_] != '"') return fail("expected a member name");
      if (!string(&key)) return false;
      if (!eat(':')) return fail("expected ':'");
      Json v;
      if (!value(&v, depth + 1)) return false;
      out->members.emplace_back(std::move(key), std::move(v));
    } while (eat(','));
    if (!eat('}')) return fail("expected ',' or '}'");
    return true;
  }
  bool array(Json* out, int depth) {
    out->kind = Json::kArray;
    ++i_;
    if (eat(']')) return true;
    do {
      Json v;
      if (!value(&v, depth + 1)) return false;
      out->items.push_back(std::move(v));
    } while (eat(','));
    if (!eat(']')) return fail("expected ',' or ']'");
    return true;
  }
  bool hex4(uint32_t* cp) {
    if (i_ + 4 > s_.size()) return fail("short \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s_[i_++];
      *cp <<= 4;
      if (h >= '0' && h <= '9')
        *cp |= uint32_t(h - '0');
      else if (h >= 'a' && h <= 'f')
        *cp |= uint32_t(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        *cp |= uint32_t(h - 'A' + 10);
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
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
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
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
            i_ += 2;
            uint32_t lo = 0;
            if (!hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(cp, out);
          break;
        }
        default:
          return fail("bad escape in string");
      }
    }
    return fail("unterminated string");
  }

  std::string_view s_;
  std::string* err_;
  size_t i_ = 0;
};

void quote(const std::string& s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(char(c));
    } else if (c < 0x20) {
      static const char* hex = "0123456789abcdef";
      *out += "\\u00";
      out->push_back(hex[c >> 4]);
      out->push_back(hex[c & 15]);
    } else {
      out->push_back(char(c));
    }
  }
  out->push_back('"');
}

void dump_to(const Json& j, std::string* out) {
  switch (j.kind) {
    case Json::kNull:
      *out += "null";
      break;
    case Json::kBool:
      *out += j.boolean ? "true" : "false";
      break;
    case Json::kNumber:
      *out += j.text;
      break;
    case Json::kString:
      quote(j.text, out);
      break;
    case Json::kArray:
      out->push_back('[');
      for (size_t i = 0; i < j.items.size(); ++i) {
        if (i) out->push_back(',');
        dump_to(j.items[i], out);
      }
      out->push_back(']');
      break;
    case Json::kObject:
      out->push_back('{');
      for (size_t i = 0; i < j.members.size(); ++i) {
        if (i) out->push_back(',');
        quote(j.members[i].first, out);
        out->push_back(':');
        dump_to(j.members[i].second, out);
      }
      out->push_back('}');
      break;
  }
}

}  // namespace

Json::Json() = default;

const Json* Json::get(std::string_view key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

std::string Json::dump() const {
  std::string out;
  dump_to(*this, &out);
  return out;
}

bool parse_json(std::string_view text, Json* out, std::string* err) {
  return Reader(text, err).document(out);
}

}  // namespace sywasm
