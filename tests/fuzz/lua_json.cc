// Fuzz target: the JSON reader of the Lua module (modules/lua/src/json.cc), which reads its
// filter config. A value it accepts must survive the module's own encoder: a string parsed back
// from encode_string is the string that went in.
#include <string>
#include <string_view>

#include "modules/lua/src/json.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void walk(const sylua::json::Value& v, int depth) {
  using sylua::json::Value;
  FUZZ_CHECK(depth <= 64);  // the reader refuses deeper nesting
  switch (v.kind) {
    case Value::String: {
      std::string enc;
      sylua::json::encode_string(v.str, &enc);
      Value back;
      std::string err;
      FUZZ_CHECK(sylua::json::parse(enc, &back, &err));
      FUZZ_CHECK(back.kind == Value::String && back.str == v.str);
      break;
    }
    case Value::Array:
      for (const auto& x : v.arr) walk(x, depth + 1);
      break;
    case Value::Object:
      for (const auto& [k, x] : v.obj) {
        FUZZ_CHECK(v.find(k) != nullptr);
        walk(x, depth + 1);
      }
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sylua::json::Value v;
  std::string err;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (sylua::json::parse(text, &v, &err))
    walk(v, 0);
  else
    FUZZ_CHECK(!err.empty());
  return 0;
}
