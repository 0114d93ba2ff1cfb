// Strict, error-collecting readers for yaml-cpp nodes: typed fields, known keys, locations.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sy::config {

// Collects every error found while reading one file, so the user sees them all at once.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  // The 1-based location of N (yaml-cpp marks are 0-based).
  Location at(const YAML::Node& n) const;
  Location at(const YAML::Mark& m) const;
  void error(Location loc, std::string message);
  bool empty() const { return errors_.empty(); }
  size_t count() const { return errors_.size(); }
  // Every error, in file order (stable for errors at the same place).
  std::vector<Error> take();

 private:
  std::string file_;
  std::vector<Error> errors_;
};

// One key/value pair of a YAML map.
struct MapEntry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// The location to blame for VALUE: itself, or its key when the value is an empty (null) node,
// because yaml-cpp marks an empty value at whatever token follows it, often the next line.
Location value_loc(const Diagnostics& d, const MapEntry& e);

// Scalar readers. Each reports an error at LOC, phrased as "WHAT: expected ..., got ...", and
// returns false on failure, leaving *OUT untouched. WHAT names the value, e.g. "timeout in route".
bool read_string(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
                 std::string* out);
bool read_uint(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
               uint64_t min, uint64_t max, uint64_t* out);
bool read_bool(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
               bool* out);
bool read_duration(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
                   Duration* out);
bool read_size(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
               uint64_t min, uint64_t max, uint64_t* out);
bool read_address(Diagnostics& d, const YAML::Node& n, const Location& loc, std::string_view what,
                  bool allow_port_zero, Address* out);

// "a map", "a list", "an empty value" or the scalar quoted, for "got ..." in messages.
std::string describe(const YAML::Node& n);

// A YAML map read field by field against a fixed set of keys. Construction reports a
// non-map, unknown keys (listing the expected ones) and duplicate keys; the typed getters then
// report wrong types and, when asked, missing keys. Nothing is thrown.
class Fields {
 public:
  Fields(Diagnostics& d, const YAML::Node& node, Location loc, std::string what,
         std::initializer_list<std::string_view> keys);

  bool is_map() const { return is_map_; }
  // The map's own location (blamed for missing keys).
  const Location& loc() const { return loc_; }
  // The entry for KEY, or nullptr when absent.
  const MapEntry* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Like find(), but reports "missing required key" when absent.
  const MapEntry* require(std::string_view key);
  // For alternatives such as cluster / direct_response: at most one of KEYS may be present,
  // and unless ALLOW_NONE at least one must be. Reports a missing one at the map and each later
  // one as conflicting with the first; returns the first present, or nullptr.
  const MapEntry* exactly_one(std::initializer_list<std::string_view> keys, bool allow_none);

  // Typed getters. An absent key leaves *OUT alone (it holds the default) and is reported
  // only when REQUIRED; a present one is type- and range-checked, and *OUT is written only when
  // valid. Each returns true when the key was present and valid.
  bool string(std::string_view key, std::string* out, bool required = false,
              bool allow_empty = false);
  bool boolean(std::string_view key, bool* out);
  bool uint32(std::string_view key, uint32_t* out, uint64_t min = 0, uint64_t max = UINT32_MAX);
  bool duration(std::string_view key, Duration* out);
  bool size32(std::string_view key, uint32_t* out, uint64_t min = 0);
  bool size64(std::string_view key, uint64_t* out);
  bool address(std::string_view key, Address* out, bool required, bool allow_port_zero);
  // A list of non-empty strings.
  bool string_list(std::string_view key, std::vector<std::string>* out);
  // The entry for KEY if its value is a list; reports any other value; nullptr when absent.
  const MapEntry* list(std::string_view key);

  Diagnostics& diag() { return d_; }
  const std::string& what() const { return what_; }

 private:
  Diagnostics& d_;
  Location loc_;
  std::string what_;
  bool is_map_ = false;
  std::vector<MapEntry> entries_;
};

}  // namespace sy::config
