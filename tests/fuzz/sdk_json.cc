// Fuzz target: the JSON readers of the ext_proc, ext_authz and Wasm modules
// (modules/{ext_proc,ext_authz,wasm}/src/json.cc), which read their filter configs (and, for
// ext_authz, dynamic metadata). Each reads the same input. What one accepts must survive its own
// writer: ext_proc's strings through encode_string and back; ext_authz's and Wasm's whole values
// written out, read again and written out again to the same text. (The Lua module's reader has
// its own target, lua_json.)
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "modules/ext_authz/src/json.h"
#include "modules/ext_proc/src/json.h"
#include "modules/wasm/src/json.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void ext_proc_strings(const extproc::json::Value& v) {
  using extproc::json::Value;
  if (v.kind == Value::String) {
    std::string enc;
    extproc::json::encode_string(v.str, &enc);
    Value back;
    std::string err;
    FUZZ_CHECK(extproc::json::parse(enc, &back, &err));
    FUZZ_CHECK(back.kind == Value::String && back.str == v.str);
  }
  for (const auto& x : v.arr) ext_proc_strings(x);
  for (const auto& [k, x] : v.obj) ext_proc_strings(x);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string err;

  extproc::json::Value ep;
  if (extproc::json::parse(text, &ep, &err))
    ext_proc_strings(ep);
  else
    FUZZ_CHECK(!err.empty());

  err.clear();
  if (std::optional<ext_authz::json::Value> ea = ext_authz::json::parse(text, &err)) {
    std::string once, twice;
    ext_authz::json::write(*ea, &once);
    std::string err2;
    std::optional<ext_authz::json::Value> again = ext_authz::json::parse(once, &err2);
    FUZZ_CHECK(again);
    ext_authz::json::write(*again, &twice);
    FUZZ_CHECK(once == twice);
  } else {
    FUZZ_CHECK(!err.empty());
  }

  err.clear();
  sywasm::Json w;
  if (sywasm::parse_json(text, &w, &err)) {
    std::string once = w.dump();
    sywasm::Json again;
    std::string err2;
    FUZZ_CHECK(sywasm::parse_json(once, &again, &err2));
    FUZZ_CHECK(again.dump() == once);
  } else {
    FUZZ_CHECK(!err.empty());
  }
  return 0;
}
