// YAML -> JSON conversion for filter configs, following YAML 1.2 core-schema scalar typing.
#include "config/yaml_json.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "config/json_text.h"

namespace sy::config {
namespace {

// Aliases can make a small file describe a huge (or, in yaml-cpp, cyclic) tree; these bound
// what one filter config may expand to.
constexpr int kMaxDepth = 128;
constexpr size_t kMaxJsonBytes = 16u << 20;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Decimal integer text with its sign and leading zeros normalised for JSON ("+007" -> "7").
std::string json_decimal(std::string_view sign, std::string_view digits) {
  size_t nz = digits.find_first_not_of('0');
  std::string out(sign == "-" ? "-" : "");
  out += nz == std::string_view::npos ? "0" : std::string(digits.substr(nz));
  return out;
}

// Parses digits of BASE (8 or 16) into a uint64; nullopt on overflow.
std::optional<uint64_t> parse_radix(std::string_view digits, unsigned base) {
  uint64_t v = 0;
  for (char c : digits) {
    unsigned d = is_digit(c) ? unsigned(c - '0') : unsigned((c | 0x20) - 'a' + 10);
    if (v > (std::numeric_limits<uint64_t>::max() - d) / base) return std::nullopt;
    v = v * base + d;
  }
  return v;
}

enum class Plain { kString, kJson, kError };

// Types a plain scalar by the YAML 1.2 core schema. On kJson, *JSON holds the literal.
Plain resolve_plain(const std::string& s, std::string* json, std::string* err) {
  if (s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty()) {
    *json = "null";
    return Plain::kJson;
  }
  if (s == "true" || s == "True" || s == "TRUE") {
    *json = "true";
    return Plain::kJson;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    *json = "false";
    return Plain::kJson;
  }
  std::string_view v = s;
  for (std::string_view special : {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"}) {
    std::string_view body = v;
    bool infinity = (special[1] | 0x20) == 'i';  // only infinities take a sign
    if (infinity && !body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
    if (body == special) {
      *err = "JSON has no infinity or NaN; quote '" + s + "' to pass it as a string";
      return Plain::kError;
    }
  }
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o')) {
    std::string_view digits = v.substr(2);
    bool hex = v[1] == 'x';
    bool ok = true;
    for (char c : digits) ok = ok && (hex ? is_hex(c) : (c >= '0' && c <= '7'));
    if (ok) {
      std::optional<uint64_t> n = parse_radix(digits, hex ? 16 : 8);
      if (!n) {
        *err = "integer '" + s + "' does not fit in 64 bits";
        return Plain::kError;
      }
      *json = std::to_string(*n);
      return Plain::kJson;
    }
    return Plain::kString;
  }
  // [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
  size_t i = 0;
  std::string_view sign;
  if (i < v.size() && (v[i] == '-' || v[i] == '+')) sign = v.substr(i++, 1);
  size_t int_start = i;
  while (i < v.size() && is_digit(v[i])) ++i;
  std::string_view int_part = v.substr(int_start, i - int_start);
  bool has_dot = false;
  std::string_view frac;
  if (i < v.size() && v[i] == '.') {
    has_dot = true;
    size_t f = ++i;
    while (i < v.size() && is_digit(v[i])) ++i;
    frac = v.substr(f, i - f);
  }
  if (int_part.empty() && frac.empty()) return Plain::kString;
  std::string_view exp_sign, exp;
  bool has_exp = false;
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    has_exp = true;
    ++i;
    if (i < v.size() && (v[i] == '-' || v[i] == '+')) exp_sign = v.substr(i++, 1);
    size_t e = i;
    while (i < v.size() && is_digit(v[i])) ++i;
    exp = v.substr(e, i - e);
    if (exp.empty()) return Plain::kString;
  }
  if (i != v.size()) return Plain::kString;
  // JSON wants a digit on both sides of the point and no leading zeros: ".5" -> "0.5",
  // "1." -> "1.0", "+01.50" -> "1.50".
  *json = json_decimal(sign, int_part);
  if (has_dot) *json += "." + (frac.empty() ? std::string("0") : std::string(frac));
  if (has_exp) *json += "e" + std::string(exp_sign) + std::string(exp);
  return Plain::kJson;
}

bool is_core_tag(const std::string& tag) {
  return tag == "?" || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
         tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null";
}

class Converter {
 public:
  Converter(Diagnostics& d, std::string_view what, std::string* out)
      : d_(d), what_(what), out_(*out) {}

  bool convert(const YAML::Node& n, int depth) {
    if (depth > kMaxDepth)
      return fail(
          n, "nested more than " + std::to_string(kMaxDepth) + " levels deep (a recursive alias?)");
    if (out_.size() > kMaxJsonBytes)
      return fail(n, "expands to more than " + std::to_string(kMaxJsonBytes >> 20) +
                         " MiB of JSON (aliases?)");
    switch (n.Type()) {
      case YAML::NodeType::Map:
        return map(n, depth);
      case YAML::NodeType::Sequence: {
        out_ += '[';
        bool first = true;
        for (const YAML::Node& item : n) {
          if (!first) out_ += ',';
          first = false;
          if (!convert(item, depth + 1)) return false;
        }
        out_ += ']';
        return true;
      }
      case YAML::NodeType::Scalar:
        return scalar(n);
      default:
        out_ += "null";
        return true;
    }
  }

 private:
  bool fail(const YAML::Node& n, const std::string& why) {
    d_.error(d_.at(n), std::string(what_) + ": " + why);
    return false;
  }

  bool map(const YAML::Node& n, int depth) {
    out_ += '{';
    std::vector<std::string> seen;
    bool first = true;
    for (auto it = n.begin(); it != n.end(); ++it) {
      YAML::Node key = it->first;
      YAML::Node value = it->second;
      // JSON keys are strings, so a plain `1:` or `true:` key is taken as its text.
      if (!key.IsScalar())
        return fail(key, "JSON object keys must be strings, got " + describe(key));
      for (const std::string& s : seen)
        if (s == key.Scalar()) return fail(key, "duplicate key '" + s + "'");
      seen.push_back(key.Scalar());
      if (!first) out_ += ',';
      first = false;
      json::append_quoted(out_, key.Scalar());
      out_ += ':';
      if (!convert(value, depth + 1)) return false;
    }
    out_ += '}';
    return true;
  }

  bool scalar(const YAML::Node& n) {
    // "!" is yaml-cpp's tag for quoted and block scalars: their text is never retyped.
    if (is_core_tag(n.Tag())) {
      std::string json, err;
      switch (resolve_plain(n.Scalar(), &json, &err)) {
        case Plain::kJson:
          out_ += json;
          return true;
        case Plain::kError:
          return fail(n, err);
        case Plain::kString:
          break;
      }
    }
    json::append_quoted(out_, n.Scalar());
    return true;
  }

  Diagnostics& d_;
  std::string_view what_;
  std::string& out_;
};

}  // namespace

bool yaml_to_json(Diagnostics& d, const YAML::Node& n, std::string_view what, std::string* out) {
  out->clear();
  return Converter(d, what, out).convert(n, 0);
}

}  // namespace sy::config
