// A small JSON reader for the filter config: Envoy's PluginConfig is nested, and the ABI hands
// configs over as JSON text.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sywasm {

struct Json {
  // Defined in json.cc, where Json is complete: an implicit constructor here would instantiate
  // std::pair<std::string, Json> while Json is still incomplete, which clang with libstdc++
  // refuses (the module then does not build with clang).
  Json();

  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool boolean = false;
  std::string text;  // a string's value, or a number as written
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;  // in document order

  const Json* get(std::string_view key) const;
  // The value re-encoded as JSON text (for an object or array given where a string is wanted).
  std::string dump() const;
};

// Parses TEXT; on failure returns false and sets ERR.
bool parse_json(std::string_view text, Json* out, std::string* err);

}  // namespace sywasm
