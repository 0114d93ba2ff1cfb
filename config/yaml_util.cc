// Strict YAML field readers that collect located errors instead of throwing.
#include "config/yaml_util.h"

#include <algorithm>

#include "config/units.h"

namespace sy::config {

Location Diagnostics::at(const YAML::Mark& m) const {
  // yaml-cpp uses -1 for "no position" (null_mark); clamp so a location is never negative.
  return Location{file_, std::max(m.line, 0) + 1, std::max(m.column, 0) + 1};
}

Location Diagnostics::at(const YAML::Node& n) const { return at(n.Mark()); }

void Diagnostics::error(Location loc, std::string message) {
  errors_.push_back(Error{std::move(loc), std::move(message)});
}

std::vector<Error> Diagnostics::take() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const Error& a, const Error& b) {
    if (a.loc.line != b.loc.line) return a.loc.line < b.loc.line;
    return a.loc.col < b.loc.col;
  });
  return std::move(errors_);
}

Location value_loc(const Diagnostics& d, const MapEntry& e) {
  return d.at(e.value.IsNull() ? e.key_node : e.value);
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar: {
      // Long scalars (an inline script, say) would drown the message.
      std::string s = n.Scalar();
      if (s.size() > 40) s = s.substr(0, 37) + "...";
      return "'" + s + "'";
    }
    default:
      return "an empty value";
  }
}

namespace {

void type_error(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
                std::string_view expected) {
  d.error(loc, std::string(what) + ": expected " + std::string(expected) + ", got " + describe(n));
}

// A plain (unquoted) scalar: YAML gives it a type by its text; a quoted one is always a string.
bool is_plain(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

}  // namespace

bool read_string(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
                 std::string* out) {
  if (!n.IsScalar()) {
    type_error(d, n, loc, what, "a string");
    return false;
  }
  *out = n.Scalar();
  return true;
}

bool read_uint(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
               uint64_t min, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  std::string err;
  if (!is_plain(n)) {
    type_error(d, n, loc, what, "an integer");
    return false;
  }
  if (!parse_uint(n.Scalar(), &v, &err)) {
    d.error(loc, std::string(what) + ": " + err + ", got " + describe(n));
    return false;
  }
  if (v < min || v > max) {
    d.error(loc, std::string(what) + ": must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + ", got " + std::to_string(v));
    return false;
  }
  *out = v;
  return true;
}

bool read_bool(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
               bool* out) {
  // YAML 1.2 core schema booleans only: "yes"/"on" are strings there, and guessing invites
  // surprises like the Norway problem.
  if (is_plain(n)) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      *out = true;
      return true;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      *out = false;
      return true;
    }
  }
  type_error(d, n, loc, what, "true or false");
  return false;
}

bool read_duration(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
                   Duration* out) {
  std::string err;
  if (!n.IsScalar()) {
    type_error(d, n, loc, what, "a duration like 1s or 250ms");
    return false;
  }
  if (!parse_duration(n.Scalar(), out, &err)) {
    d.error(loc, std::string(what) + ": " + err + ", got " + describe(n));
    return false;
  }
  return true;
}

bool read_size(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
               uint64_t min, uint64_t max, uint64_t* out) {
  std::string err;
  uint64_t v = 0;
  if (!n.IsScalar()) {
    type_error(d, n, loc, what, "a size like 65536, 64KiB or 1MiB");
    return false;
  }
  if (!parse_size(n.Scalar(), &v, &err)) {
    d.error(loc, std::string(what) + ": " + err + ", got " + describe(n));
    return false;
  }
  if (v < min || v > max) {
    d.error(loc, std::string(what) + ": must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + " bytes, got " + std::to_string(v));
    return false;
  }
  *out = v;
  return true;
}

bool read_address(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
                  bool allow_port_zero, Address* out) {
  std::string err;
  if (!n.IsScalar()) {
    type_error(d, n, loc, what, "an address like 127.0.0.1:8080");
    return false;
  }
  if (!parse_address(n.Scalar(), allow_port_zero, out, &err)) {
    d.error(loc, std::string(what) + ": " + err + ", got " + describe(n));
    return false;
  }
  return true;
}

Fields::Fields(Diagnostics& d, const YAML::Node& node, Location loc, std::string what,
               std::initializer_list<std::string_view> keys)
    : d_(d), loc_(std::move(loc)), what_(std::move(what)) {
  if (!node.IsMap()) {
    type_error(d_, node, loc_, what_, "a map");
    return;
  }
  is_map_ = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies: the iterator hands out proxies that die at the end of the statement.
    YAML::Node k = it->first;
    YAML::Node v = it->second;
    if (!k.IsScalar()) {
      d_.error(d_.at(k), what_ + ": keys must be strings, got " + describe(k));
      continue;
    }
    const std::string& key = k.Scalar();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      std::string expected;
      for (std::string_view e : keys) {
        if (!expected.empty()) expected += ", ";
        expected += e;
      }
      d_.error(d_.at(k),
               "unknown key '" + key + "' in " + what_ + "; expected one of: " + expected);
      continue;
    }
    if (find(key) != nullptr) {
      // yaml-cpp keeps both and would silently read the first; the user meant one of them.
      d_.error(d_.at(k), "duplicate key '" + key + "' in " + what_);
      continue;
    }
    entries_.push_back(MapEntry{key, k, v});
  }
}

const MapEntry* Fields::find(std::string_view key) const {
  for (const MapEntry& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}

const MapEntry* Fields::require(std::string_view key) {
  const MapEntry* e = find(key);
  if (e == nullptr && is_map_)
    d_.error(loc_, "missing required key '" + std::string(key) + "' in " + what_);
  return e;
}

const MapEntry* Fields::exactly_one(std::initializer_list<std::string_view> keys, bool allow_none) {
  std::vector<const MapEntry*> present;
  for (const MapEntry& e : entries_)
    if (std::find(keys.begin(), keys.end(), e.key) != keys.end()) present.push_back(&e);
  std::string names;
  for (std::string_view k : keys) {
    if (!names.empty()) names += ", ";
    names += k;
  }
  if (present.empty()) {
    if (!allow_none && is_map_) d_.error(loc_, what_ + " needs one of: " + names);
    return nullptr;
  }
  for (size_t i = 1; i < present.size(); ++i)
    d_.error(d_.at(present[i]->key_node), "'" + present[i]->key + "' conflicts with '" +
                                              present[0]->key + "' in " + what_ +
                                              "; use only one of: " + names);
  return present[0];
}

bool Fields::string(std::string_view key, std::string* out, bool required, bool allow_empty) {
  const MapEntry* e = required ? require(key) : find(key);
  if (e == nullptr) return false;
  std::string what = std::string(key) + " in " + what_;
  std::string v;
  if (!read_string(d_, e->value, value_loc(d_, *e), what, &v)) return false;
  if (v.empty() && !allow_empty) {
    d_.error(value_loc(d_, *e), what + ": must not be empty");
    return false;
  }
  *out = std::move(v);
  return true;
}

bool Fields::boolean(std::string_view key, bool* out) {
  const MapEntry* e = find(key);
  return e != nullptr &&
         read_bool(d_, e->value, value_loc(d_, *e), std::string(key) + " in " + what_, out);
}

bool Fields::uint32(std::string_view key, uint32_t* out, uint64_t min, uint64_t max) {
  const MapEntry* e = find(key);
  uint64_t v = 0;
  if (e == nullptr ||
      !read_uint(d_, e->value, value_loc(d_, *e), std::string(key) + " in " + what_, min, max, &v))
    return false;
  *out = uint32_t(v);
  return true;
}

bool Fields::duration(std::string_view key, Duration* out) {
  const MapEntry* e = find(key);
  return e != nullptr &&
         read_duration(d_, e->value, value_loc(d_, *e), std::string(key) + " in " + what_, out);
}

bool Fields::size32(std::string_view key, uint32_t* out, uint64_t min) {
  const MapEntry* e = find(key);
  uint64_t v = 0;
  if (e == nullptr || !read_size(d_, e->value, value_loc(d_, *e), std::string(key) + " in " + what_,
                                 min, UINT32_MAX, &v))
    return false;
  *out = uint32_t(v);
  return true;
}

bool Fields::size64(std::string_view key, uint64_t* out) {
  const MapEntry* e = find(key);
  return e != nullptr && read_size(d_, e->value, value_loc(d_, *e),
                                   std::string(key) + " in " + what_, 0, UINT64_MAX, out);
}

bool Fields::address(std::string_view key, Address* out, bool required, bool allow_port_zero) {
  const MapEntry* e = required ? require(key) : find(key);
  return e != nullptr && read_address(d_, e->value, value_loc(d_, *e),
                                      std::string(key) + " in " + what_, allow_port_zero, out);
}

const MapEntry* Fields::list(std::string_view key) {
  const MapEntry* e = find(key);
  if (e == nullptr) return nullptr;
  if (!e->value.IsSequence()) {
    type_error(d_, e->value, value_loc(d_, *e), std::string(key) + " in " + what_, "a list");
    return nullptr;
  }
  return e;
}

bool Fields::string_list(std::string_view key, std::vector<std::string>* out) {
  const MapEntry* e = list(key);
  if (e == nullptr) return false;
  std::string what = "items of " + std::string(key) + " in " + what_;
  std::vector<std::string> v;
  bool ok = true;
  for (const YAML::Node& item : e->value) {
    std::string s;
    if (!read_string(d_, item, d_.at(item), what, &s)) {
      ok = false;
    } else if (s.empty()) {
      d_.error(d_.at(item), what + ": must not be empty");
      ok = false;
    } else {
      v.push_back(std::move(s));
    }
  }
  if (ok) *out = std::move(v);
  return ok;
}

}  // namespace sy::config
