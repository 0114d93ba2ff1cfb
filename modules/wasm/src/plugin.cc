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

#include "signatures.h"
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

namespace {

bool compile(WasmModule* mod, const PluginConfig& cfg, const std::string& code_bytes, Code* p,
             std::string* err) {
  p->sha256 = hex_sha256(code_bytes);
  std::string dir = cfg.cache_dir.empty() ? default_cache_dir() : cfg.cache_dir;
  std::string cached = dir.empty() ? "" : dir + "/" + p->sha256 + "-wasmtime-50.0.1.cwasm";
  if (!cached.empty() && ::access(cached.c_str(), R_OK) == 0) {
    if (wasmtime_error_t* e =
            wasmtime_module_deserialize_file(mod->engine, cached.c_str(), &p->module)) {
      // A stale or damaged entry: compile afresh and overwrite it.
      error_text(e);
      p->module = nullptr;
    } else {
      p->from_cache = true;
      return true;
    }
  }
  if (wasmtime_error_t* e =
          wasmtime_module_new(mod->engine, reinterpret_cast<const uint8_t*>(code_bytes.data()),
                              code_bytes.size(), &p->module)) {
    *err = "wasm: cannot compile " +
           (cfg.code_path.empty() ? std::string("the inline code") : "'" + cfg.code_path + "'") +
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

bool detect_abi(Code* p, std::string* err) {
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

}  // namespace

std::shared_ptr<Code> build_code(WasmModule* mod, const PluginConfig& cfg, const std::string& bytes,
                                 std::string* err) {
  auto code = std::make_shared<Code>();
  // The boundary check comes after compile, so it reads only bytes Wasmtime has validated, and
  // before anything asks Wasmtime for a value type's kind (signatures.h).
  if (!compile(mod, cfg, bytes, code.get(), err) || !check_boundary_signatures(bytes, err) ||
      !detect_abi(code.get(), err) || !define_imports(mod, code.get(), err))
    return nullptr;
  return code;
}

Code::~Code() {
  if (linker) wasmtime_linker_delete(linker);
  if (module) wasmtime_module_delete(module);
}

Plugin::~Plugin() {
  if (cfg.watch) mod->unwatch(this);
  vms.clear();
}

std::shared_ptr<Code> Plugin::current_code() {
  std::lock_guard<std::mutex> lock(code_mu);
  return code;
}

void check_watched(Plugin* p) {
  struct stat st;
  if (::stat(p->cfg.code_path.c_str(), &st) != 0) return;  // mid-replace, or gone: keep running
  int64_t mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (st.st_size == p->seen_size && mtime == p->seen_mtime_ns && st.st_ino == p->seen_ino) return;
  p->seen_size = st.st_size;
  p->seen_mtime_ns = mtime;
  p->seen_ino = st.st_ino;
  std::ifstream f(p->cfg.code_path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string bytes = ss.str();
  if (!f || hex_sha256(bytes) == p->current_code()->sha256) return;
  std::string err;
  std::shared_ptr<Code> code = build_code(p->mod, p->cfg, bytes, &err);
  if (code) {
    // The new version must start (on_vm_start, on_configure) before it serves anything.
    Vm probe(p, nullptr);
    probe.code = code;
    if (!probe.start(&err)) code = nullptr;
  }
  sy_str_t line;
  std::string msg = p->log_prefix();
  if (!code) {
    msg += "the new version of " + p->cfg.code_path + " is refused, the running one stays: " + err;
    g_host->log(p->mod->self, SY_LOG_ERROR, line = str(msg));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p->code_mu);
    p->code = code;
  }
  msg += "reloaded " + p->cfg.code_path + " (sha256 " + code->sha256 + ")";
  g_host->log(p->mod->self, SY_LOG_INFO, str(msg));
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
  bool reload = vm && vm->failed && cfg.failure_policy == FailurePolicy::kFailReload;
  bool new_code = vm && cfg.watch && vm->code != current_code();
  if (reload || new_code) {
    // A new instance for new streams; streams in flight keep the old one until they end.
    auto fresh = std::make_shared<Vm>(this, w);
    std::string err;
    if (reload) count(m_reloads);
    if (fresh->start(&err)) {
      if (vm->tick_timer) g_host->timer_cancel(vm->tick_timer);
      vm->tick_timer = nullptr;
      vm->tick_ms = 0;
      vm = fresh;
      fresh->log(SY_LOG_INFO, reload ? "VM reloaded after a failure" : "VM runs the new code");
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
  if (!parse_plugin_config(view(json), &p->cfg, &why) ||
      !(p->code = build_code(mod, p->cfg, p->cfg.code, &why))) {
    snprintf(err->message, sizeof err->message, "%s", why.c_str());
    return nullptr;
  }
  // A named string, not the conditional's temporary: the label must outlive the calls below.
  const std::string plugin_name = p->cfg.name.empty() ? "unnamed" : p->cfg.name;
  sy_label_t label{str("plugin"), str(plugin_name)};
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
  if (p->cfg.watch) {
    struct stat st;
    if (::stat(p->cfg.code_path.c_str(), &st) == 0) {
      p->seen_size = st.st_size;
      p->seen_mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      p->seen_ino = st.st_ino;
    }
    mod->watch(p.get());
  }
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
