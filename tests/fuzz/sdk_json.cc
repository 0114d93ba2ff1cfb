// Fuzz target: the SDK's JSON reader and writer (abi/sdk/switchyard/json.hpp), which every
// bundled module (Lua, ext_proc, ext_authz, Wasm) and any SDK module reads its config and
// metadata with. What it accepts must be well formed as it says: nesting within kMaxDepth,
// unique keys that find() finds, every string surviving write_string and back, the whole value
// written, read again and written again to the same text; the flat-object reader accepts
// exactly the objects of scalars the full reader does; a refusal always says why.
#include <cstdint>
#include <string>
#include <string_view>
#include <switchyard/json.hpp>

#include "tests/fuzz/fuzz_check.h"

namespace json = sy::sdk::json;

namespace {

// Whether V is an object whose members are all scalars (what parse_flat_object takes).
bool flat(const json::Value& v) {
  if (!v.is_object()) return false;
  for (const auto& [k, x] : v.obj)
    if (x.kind == json::Value::Array || x.kind == json::Value::Object) return false;
  return true;
}

void walk(const json::Value& v, int depth) {
  FUZZ_CHECK(depth <= json::kMaxDepth);
  switch (v.kind) {
    case json::Value::String: {
      std::string enc;
      json::write_string(v.str, &enc);
      json::Value back;
      std::string err;
      FUZZ_CHECK(json::parse(enc, &back, &err));
      FUZZ_CHECK(back.kind == json::Value::String && back.str == v.str);
      break;
    }
    case json::Value::Array:
      for (const auto& x : v.arr) walk(x, depth + 1);
      break;
    case json::Value::Object:
      for (const auto& [k, x] : v.obj) {
        FUZZ_CHECK(v.find(k) == &x);  // keys are unique, so find() finds this very member
        walk(x, depth + 1);
      }
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  json::Value v;
  std::string err;
  bool ok = json::parse(text, &v, &err);
  FUZZ_CHECK(ok || !err.empty());

  std::string flat_err;
  auto fo = json::parse_flat_object(text, &flat_err);
  FUZZ_CHECK(bool(fo) == (ok && flat(v)));
  FUZZ_CHECK(fo || !flat_err.empty());
  if (fo) FUZZ_CHECK(fo->size() == v.obj.size());
  if (!ok) return 0;

  walk(v, 0);
  std::string once, twice;
  json::write(v, &once);
  json::Value again;
  std::string err2;
  FUZZ_CHECK(json::parse(once, &again, &err2));
  json::write(again, &twice);
  FUZZ_CHECK(once == twice);
  return 0;
}
