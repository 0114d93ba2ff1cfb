// The wasm module's entry: Proxy-Wasm filters (HTTP `wasm`, network `wasm_network`) on Wasmtime.
#include <chrono>

#include "vm.h"

SY_MODULE_STAMP("wasm", "0.1.0");

namespace sywasm {

const sy_host_t* g_host;

void WasmModule::start_ticker() {
  std::lock_guard<std::mutex> lock(ticker_mu);
  if (ticker.joinable()) return;
  // One thread per generation advances the engine's epoch; every callback gets a deadline a
  // number of epochs ahead, so a runaway loop traps (as an interrupt) and the worker goes on.
  ticker = std::thread([this] {
    while (!stop.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
      wasmtime_engine_increment_epoch(engine);
    }
  });
}

void WasmModule::watch(Plugin* p) {
  std::lock_guard<std::mutex> lock(watch_mu);
  watched.push_back(p);
  if (watcher.joinable()) return;
  // Twice a second, like the Lua module's watched scripts. Compiling happens here, not on a
  // worker, so a big .wasm never stalls traffic.
  watcher = std::thread([this] {
    while (!stop.load(std::memory_order_relaxed)) {
      {
        std::lock_guard<std::mutex> lock(watch_mu);
        for (Plugin* p : watched) check_watched(p);
      }
      for (int i = 0; i < 50 && !stop.load(std::memory_order_relaxed); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
}

void WasmModule::unwatch(Plugin* p) {
  std::lock_guard<std::mutex> lock(watch_mu);
  std::erase(watched, p);
}

namespace {

bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  auto* m = new WasmModule();
  m->self = module;
  wasm_config_t* config = wasm_config_new();
  // The proxy's crash handler owns SIGSEGV and SIGBUS: Wasmtime must install no signal
  // handlers, so its generated code checks bounds explicitly and a trap is a return value.
  wasmtime_config_signals_based_traps_set(config, false);
  wasmtime_config_epoch_interruption_set(config, true);
  m->engine = wasm_engine_new_with_config(config);
  if (!m->engine) {
    snprintf(err->message, sizeof err->message, "wasm: cannot create the Wasmtime engine");
    delete m;
    return false;
  }
  *module_data = m;
  return true;
}

void on_unload(void* module_data) {
  auto* m = static_cast<WasmModule*>(module_data);
  m->stop = true;
  if (m->ticker.joinable()) m->ticker.join();
  if (m->watcher.joinable()) m->watcher.join();
  wasm_engine_delete(m->engine);
  delete m;
}

const sy_http_filter_t* const kHttpFilters[] = {&kHttpFilter, nullptr};
const sy_network_filter_t* const kNetworkFilters[] = {&kNetworkFilter, nullptr};

const sy_module_descriptor_t kDescriptor = {
    sizeof(sy_module_descriptor_t),
    SY_ABI_MAJOR,
    SY_ABI_MINOR,
    "wasm",
    "0.1.0",
    on_load,
    on_unload,
    nullptr,
    nullptr,
    kHttpFilters,
    kNetworkFilters,
    nullptr,  // on_queue_ready: VMs register their queues with a filter config's handle
};

}  // namespace
}  // namespace sywasm

SY_MODULE_ENTRY(host, module) {
  (void)module;
  if (!SY_HAS_SLOT(host, sy_host_t, stream_reset)) return nullptr;  // needs ABI 1.2's slots
  sywasm::g_host = host;
  return &sywasm::kDescriptor;
}
