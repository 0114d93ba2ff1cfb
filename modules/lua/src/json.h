// A small JSON reader for the filter's config blocks (the host hands them over as JSON text).
// Nested objects and arrays are needed (source_codes, metadata, filter_context), which the
// SDK's flat reader does not cover.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sylua::json {

struct Value {
  // Declared here and defaulted in json.cc: an implicit constructor makes clang (with
  // libstdc++) check pair<string, Value> while Value is still incomplete, and fail to compile.
  Value();

  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  bool integral = false;  // the text had no fraction or exponent and fits an int64
  int64_t i = 0;
  std::string str;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;  // in the order written

  const Value* find(std::string_view key) const;
  bool is_object() const { return kind == Object; }
};

// Parses TEXT; on failure returns false and says why in ERR.
bool parse(std::string_view text, Value* out, std::string* err);

// Appends VALUE's JSON text to OUT.
void encode_string(std::string_view s, std::string* out);

}  // namespace sylua::json
