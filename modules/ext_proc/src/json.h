// The JSON the module reads (its config blocks) and writes (dynamic metadata values).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace extproc::json {

struct Value {
  Value();
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  bool integral = false;  // written without fraction or exponent, and fits an int64
  int64_t i = 0;
  std::string str;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;  // in the order written

  const Value* find(std::string_view key) const;
  bool is_object() const { return kind == Object; }
};

// Parses TEXT into OUT; false with ERR set when it is not JSON.
bool parse(std::string_view text, Value* out, std::string* err);

// Appends S as a JSON string literal to OUT.
void encode_string(std::string_view s, std::string* out);

}  // namespace extproc::json
