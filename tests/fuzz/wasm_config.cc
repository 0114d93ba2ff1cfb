// Fuzz target: the Wasm filter's config reader (modules/wasm/src/config.cc, on the SDK's JSON
// reader): Envoy's PluginConfig, or the whole Wasm filter message, as JSON (the proxy turns the
// YAML into JSON), with vm_config, inline code (inline_bytes in base64, inline_string),
// configuration as a string, an Any or an object, failure policies and Switchyard's limits. A
// config is accepted with its code, or refused with a message; never both.
#include <cstdint>
#include <string>
#include <string_view>

#include "config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // vm_config.code.local.filename is read from disk: a device or /proc file would only measure
  // the fuzzer's patience, not the reader.
  for (std::string_view dir : {"/dev", "/proc", "/sys"})
    if (text.find(dir) != std::string_view::npos) return 0;
  sywasm::PluginConfig cfg;
  std::string err;
  if (sywasm::parse_plugin_config(text, &cfg, &err)) {
    FUZZ_CHECK(err.empty());
    FUZZ_CHECK(!cfg.code.empty() || !cfg.code_path.empty());
  } else {
    FUZZ_CHECK(!err.empty());
  }
  return 0;
}
