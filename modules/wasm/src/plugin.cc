// A wasm filter config (a plugin): compile the module (or load it from the cache), check its
// ABI version, validate it by starting one VM, then keep one VM per worker.
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "vm.h"

namespace sywasm {
namespace {

std::string hex_sha256(const std::string& bytes) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

std::string error_text(wasmtime_error_t* e) {
  wasm_name_t msg;
  wasmtime_error_message(e, &msg);
  std::string s(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  wasmtime_error_delete(e);
  return s;
}

// The compiled-code cache: SWITCHYARD_WASM_CACHE, else $XDG_CACHE_HOME or ~/.cache, under
// switchyard/wasm. The file name carries the .wasm's sha256 and this engine's version, since
// Wasmtime refuses code compiled by another version or with other settings.
std::string default_cache_dir() {
  if (const char* d = getenv("SWITCHYARD_WASM_CACHE"); d && *d) return d;
  if (const char* x = getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/switchyard/wasm";
  if (const char* h = getenv("HOME"); h && *h) return std::string(h) + "/.cache/switchyard/wasm";
  return "";
}

void make_dirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0700);
  }
}

}  // namespace

bool compile_plugin(Plugin* p, std::string* err) {
  p->sha256 = hex_sha256(p->cfg.code);
  std::string dir = p->cfg.cache_dir.empty() ? default_cache_dir() : p->cfg.cache_dir;
  std::string cached = dir.empty() ? "" : dir + "/" + p->sha256 + "-wasmtime-50.0.1.cwasm";
  if (!cached.empty() && ::access(cached.c_str(), R_OK) == 0) {
    if (wasmtime_error_t* e =
            wasmtime_module_deserialize_file(p->mod->engine, cached.c_str(), &p->module)) {
      // A stale or damaged entry: compile afresh and overwrite it.
      error_text(e);
      p->module = nullptr;
    } else {
      p->from_cache = true;
      return true;
    }
  }
  if (wasmtime_error_t* e =
          wasmtime_module_new(p->mod->engine, reinterpret_cast<const uint8_t*>(p->cfg.code.data()),
                              p->cfg.code.size(), &p->module)) {
    *err =
        "wasm: cannot compile " +
        (p->cfg.code_path.empty() ? std::string("the inline code") : "'" + p->cfg.code_path + "'") +
        ": " + error_text(e);
    return false;
  }
  if (!cached.empty()) {
    wasm_byte_vec_t bytes;
    if (wasmtime_error_t* e = wasmtime_module_serialize(p->module, &bytes)) {
      error_text(e);
      return true;
    }
    make_dirs(dir);
    // Written under a temporary name and renamed, so a reader never sees half a file.
    std::string tmp = cached + ".tmp" + std::to_string(::getpid());
    if (FILE* f = fopen(tmp.c_str(), "wb")) {
      bool ok = fwrite(bytes.data, 1, bytes.size, f) == bytes.size;
      ok = fclose(f) == 0 && ok;
      if (!ok || ::rename(tmp.c_str(), cached.c_str()) != 0) ::unlink(tmp.c_str());
    }
    wasm_byte_vec_delete(&bytes);
  }
  return true;
}

bool detect_abi(Plugin* p, std::string* err) {
  wasm_exporttype_vec_t exports;
  wasmtime_module_exports(p->module, &exports);
  int found = -1;
  for (size_t i = 0; i < exports.size; ++i) {
    const wasm_name_t* n = wasm_exporttype_name(exports.data[i]);
    std::string_view name(n->data, n->size);
    if (name == "proxy_abi_version_0_2_1")
      found = std::max(found, 2);
    else if (name == "proxy_abi_version_0_2_0")
      found = std::max(found, 1);
    else if (name == "proxy_abi_version_0_1_0")
      found = std::max(found, 0);
  }
  wasm_exporttype_vec_delete(&exports);
  if (found < 0) {
    *err =
        "wasm: missing or unknown Proxy-Wasm ABI version: the module exports none of "
        "proxy_abi_version_0_2_1, proxy_abi_version_0_2_0, proxy_abi_version_0_1_0";
    return false;
  }
  p->abi = found == 2 ? AbiVersion::k0_2_1 : found == 1 ? AbiVersion::k0_2_0 : AbiVersion::k0_1_0;
  return true;
}

Plugin::~Plugin() {
  vms.clear();
  if (linker) wasmtime_linker_delete(linker);
  if (module) wasmtime_module_delete(module);
}

std::string Plugin::log_prefix() const {
  // Envoy's shape: "wasm log <name> <root_id> <vm_id>: <message>".
  return "wasm log " + cfg.name + " " + cfg.root_id + " " + cfg.vm_id + ": ";
}

void Plugin::count(uint32_t id) {
  if (metrics_ok) g_host->metric_add(mod->self, id, 1);
}

std::shared_ptr<Vm> Plugin::vm_for(sy_worker_t* w) {
  int32_t i = g_host->worker_index(w);
  if (i < 0 || size_t(i) >= vms.size()) return nullptr;
  std::shared_ptr<Vm>& vm = vms[size_t(i)];
  if (vm && vm->failed && cfg.failure_policy == FailurePolicy::kFailReload) {
    // A new instance for new streams; streams in flight keep the failed one until they end.
    auto fresh = std::make_shared<Vm>(this, w);
    std::string err;
    count(m_reloads);
    if (fresh->start(&err)) {
      vm = fresh;
      fresh->log(SY_LOG_INFO, "VM reloaded after a failure");
      if (fresh->tick_ms) fresh->arm_tick();
    } else {
      fresh->log(SY_LOG_ERROR, "VM reload failed: " + err);
    }
  }
  return vm;
}

void* plugin_create(void* module_data, sy_str_t json, sy_error_t* err, bool network) {
  auto* mod = static_cast<WasmModule*>(module_data);
  auto p = std::make_unique<Plugin>();
  p->mod = mod;
  p->network = network;
  std::string why;
  if (!parse_plugin_config(view(json), &p->cfg, &why) || !compile_plugin(p.get(), &why) ||
      !detect_abi(p.get(), &why) || !define_imports(p.get(), &why)) {
    snprintf(err->message, sizeof err->message, "%s", why.c_str());
    return nullptr;
  }
  sy_label_t label{str("plugin"), str(p->cfg.name.empty() ? "unnamed" : p->cfg.name)};
  auto def = [&](const char* n, uint32_t* id) {
    return g_host->metric_define(mod->self, SY_COUNTER, str(n), &label, 1, id) == SY_OK;
  };
  p->metrics_ok = def("wasm_traps", &p->m_traps) && def("wasm_deadline_exceeded", &p->m_deadline) &&
                  def("wasm_failed_streams", &p->m_failed) && def("wasm_vm_reloads", &p->m_reloads);
  mod->start_ticker();
  // Start one VM here, on the main thread, so a module that cannot start (bad imports, a trap in
  // _initialize, on_configure returning false) is a config error with its location.
  {
    Vm probe(p.get(), nullptr);
    if (!probe.start(&why)) {
      snprintf(err->message, sizeof err->message, "wasm: plugin '%s' (%s) cannot start: %s",
               p->cfg.name.c_str(),
               p->cfg.code_path.empty() ? "inline code" : p->cfg.code_path.c_str(), why.c_str());
      return nullptr;
    }
  }
  p->vms.resize(g_host->worker_count());
  p->workers.resize(g_host->worker_count());
  return p.release();
}

void plugin_destroy(void* config) { delete static_cast<Plugin*>(config); }

void* plugin_worker_start(void* config, sy_worker_t* w) {
  auto* p = static_cast<Plugin*>(config);
  int32_t i = g_host->worker_index(w);
  if (i < 0 || size_t(i) >= p->vms.size()) return nullptr;
  auto vm = std::make_shared<Vm>(p, w);
  p->workers[size_t(i)] = w;
  std::string err;
  if (!vm->start(&err)) {
    vm->log(SY_LOG_ERROR, "VM failed to start on worker " + std::to_string(i) + ": " + err);
    if (!vm->failed) vm->fail(err);
  }
  // proxy_set_tick_period_milliseconds during start recorded the period; arm it now that the
  // VM has its worker.
  if (vm->tick_ms) vm->arm_tick();
  p->vms[size_t(i)] = vm;
  // The worker's slot, not the VM: FAIL_RELOAD may replace the VM in it.
  return reinterpret_cast<void*>(intptr_t(i) + 1);
}

void plugin_worker_stop(void* config, void* worker_data) {
  auto* p = static_cast<Plugin*>(config);
  size_t i = size_t(reinterpret_cast<intptr_t>(worker_data)) - 1;
  if (i >= p->vms.size() || !p->vms[i]) return;
  std::shared_ptr<Vm>& vm = p->vms[i];
  if (vm->tick_timer) {
    g_host->timer_cancel(vm->tick_timer);
    vm->tick_timer = nullptr;
  }
  vm->tick_ms = 0;
  vm.reset();
}

void plugin_queue_ready(void* config, void* worker_data, uint32_t queue_id) {
  auto* p = static_cast<Plugin*>(config);
  size_t i = size_t(reinterpret_cast<intptr_t>(worker_data)) - 1;
  if (i >= p->vms.size() || !p->vms[i]) return;
  std::shared_ptr<Vm> vm = p->vms[i];
  vm->effective = vm->root_id;
  vm->call(kOnQueueReady, {vm->root_id, queue_id});
}

}  // namespace sywasm
