// Fuzz target: `.wasm` bytes through the Wasm module's load path (modules/wasm/src/plugin.cc
// build_code, imports.cc define_imports): Wasmtime's validation and compilation on the module's
// engine settings, then Switchyard's checks of the exports (the Proxy-Wasm ABI version) and the
// imports (every proxy_* and WASI function defined, unknown ones stubbed or refused). A module is
// built or refused with a message. Nothing runs the guest's code: that is the VM's business,
// behind its deadline and memory limit. The compiled-code cache is off (it would write a file
// per input).
#include <wasmtime.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_check.h"
#include "wasm_module.h"

namespace {

sywasm::WasmModule* module() {
  static sywasm::WasmModule* m = [] {
    // default_cache_dir() finds none of these: no cache.
    unsetenv("SWITCHYARD_WASM_CACHE");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    auto* m = new sywasm::WasmModule();
    // As the module's on_load configures its engine.
    wasm_config_t* config = wasm_config_new();
    wasmtime_config_signals_based_traps_set(config, false);
    wasmtime_config_epoch_interruption_set(config, true);
    m->engine = wasm_engine_new_with_config(config);
    FUZZ_CHECK(m->engine);
    return m;
  }();
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sywasm::PluginConfig cfg;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  std::string err;
  auto code = sywasm::build_code(module(), cfg, bytes, &err);
  FUZZ_CHECK(code ? err.empty() : !err.empty());
  if (code) FUZZ_CHECK(code->module && code->linker);
  return 0;
}
