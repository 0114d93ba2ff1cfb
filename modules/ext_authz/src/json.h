// A small JSON value for the filter's config (the host hands it over as JSON text) and for
// dynamic metadata (the ABI carries it as JSON text; lite protobuf has no JSON support).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ext_authz::json {

struct Value {
  // Defined in json.cc, where Value is complete: an implicit constructor here would instantiate
  // std::pair<std::string, Value> while Value is still incomplete, which clang with libstdc++
  // refuses (the module then does not build with clang).
  Value();

  enum Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Value> array;
  // Objects keep their members in order: duplicate keys are an error of the parser.
  std::vector<std::pair<std::string, Value>> object;

  // The member KEY of an object, or nullptr (also when this is not an object).
  const Value* get(std::string_view key) const;
  bool is_object() const { return type == kObject; }
  const char* type_name() const;
};

// Parses TEXT (RFC 8259). On failure returns nullopt and says why in ERR.
std::optional<Value> parse(std::string_view text, std::string* err);
// Appends V as compact JSON text.
void write(const Value& v, std::string* out);
// Appends S as a JSON string literal.
void write_string(std::string_view s, std::string* out);

}  // namespace ext_authz::json
