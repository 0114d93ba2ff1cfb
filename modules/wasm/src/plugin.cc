// A wasm filter config (a plugin): find its VM group by key or start one (compile the module or
// load it from the cache, check its ABI version), validate it by starting one VM, then join the
// group's VM on each worker.
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

std::shared_ptr<Code> VmGroup::current_code() {
  std::lock_guard<std::mutex> lock(code_mu);
  return code;
}

std::string VmGroup::log_prefix() const { return "wasm log " + cfg.vm_id + ": "; }

std::string vm_key(const PluginConfig& cfg) {
  // Each field with its length, so no two configs run together into one text.
  std::string text;
  auto add = [&](std::string_view v) { text += std::to_string(v.size()) + ":" + std::string(v); };
  add(cfg.vm_id);
  add(cfg.vm_configuration);
  add(hex_sha256(cfg.code));
  for (const auto& [k, v] : cfg.env) {
    add(k);
    add(v);
  }
  add(std::to_string(cfg.memory_limit_bytes));
  add(std::to_string(cfg.callback_deadline_ms));
  add(cfg.watch ? cfg.code_path : "");
  return hex_sha256(text);
}

std::shared_ptr<Vm> VmGroup::join(Plugin* p, int32_t i, sy_worker_t* w) {
  std::shared_ptr<Vm> vm = vms[size_t(i)].lock();
  std::string err;
  if (!vm || vm->failed || vm->code != current_code()) {
    vm = std::make_shared<Vm>(shared_from_this(), i);
    if (!vm->start(&err)) {
      if (!vm->failed) vm->fail(err);
      vm->log(SY_LOG_ERROR, "VM failed to start on worker " + std::to_string(i) + ": " + err);
      return vm;
    }
    vms[size_t(i)] = vm;
  }
  if (!vm->add_root(p, w, &err)) {
    vm->log(SY_LOG_ERROR, "VM failed to start on worker " + std::to_string(i) + ": " + err);
    if (!vm->failed) vm->fail(err);
  }
  return vm;
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
    Vm probe(p->group, -1);
    probe.code = code;
    if (!probe.start(&err) || !probe.add_root(p, nullptr, &err)) code = nullptr;
  }
  sy_str_t line;
  std::string msg = p->log_prefix();
  if (!code) {
    msg += "the new version of " + p->cfg.code_path + " is refused, the running one stays: " + err;
    g_host->log(p->mod->self, SY_LOG_ERROR, line = str(msg));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p->group->code_mu);
    p->group->code = code;
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
  if (i < 0 || size_t(i) >= vms.size() || !vms[size_t(i)]) return nullptr;
  std::shared_ptr<Vm>& vm = vms[size_t(i)];
  bool reload = vm->failed && cfg.failure_policy == FailurePolicy::kFailReload;
  bool new_code = cfg.watch && vm->code != current_code();
  if (reload || new_code) {
    // A new instance for new streams (or the one another plugin of the group started already);
    // streams in flight keep the old one until they end.
    if (reload) count(m_reloads);
    std::shared_ptr<Vm> fresh = group->join(this, i, workers[size_t(i)]);
    if (!fresh->failed) {
      if (RootCtx* r = vm->root_for(this)) {
        if (r->tick_timer) g_host->timer_cancel(r->tick_timer);
        r->tick_timer = nullptr;
        r->tick_ms = 0;
      }
      // Pruned as it grows: a plugin failing over and over under FAIL_RELOAD keeps no list.
      std::erase_if(left[size_t(i)], [](const std::weak_ptr<Vm>& v) { return v.expired(); });
      left[size_t(i)].push_back(vm);
      vm = fresh;
      fresh->effective = fresh->root_for(this)->id;
      fresh->log(SY_LOG_INFO, reload ? "VM reloaded after a failure" : "VM runs the new code");
    } else {
      fresh->log(SY_LOG_ERROR, "VM reload failed: " + fresh->fail_reason);
    }
  }
  return vm;
}

// The group for CFG: the live one with its key, else a new one (compiling the code).
std::shared_ptr<VmGroup> group_for(WasmModule* mod, const PluginConfig& cfg, std::string* err) {
  std::string key = vm_key(cfg);
  auto it = mod->groups.find(key);
  if (it != mod->groups.end()) {
    if (std::shared_ptr<VmGroup> g = it->second.lock()) return g;
    mod->groups.erase(it);
  }
  std::shared_ptr<Code> code = build_code(mod, cfg, cfg.code, err);
  if (!code) return nullptr;
  auto g = std::make_shared<VmGroup>();
  g->mod = mod;
  g->key = key;
  g->cfg = cfg;
  g->cfg.code.clear();  // compiled in CODE; the bytes need not stay in memory twice
  g->code = std::move(code);
  g->vms.resize(g_host->worker_count());
  mod->groups[key] = g;
  return g;
}

void* plugin_create(void* module_data, sy_str_t json, sy_error_t* err, bool network) {
  auto* mod = static_cast<WasmModule*>(module_data);
  auto p = std::make_unique<Plugin>();
  p->mod = mod;
  p->network = network;
  std::string why;
  if (!parse_plugin_config(view(json), &p->cfg, &why) ||
      !(p->group = group_for(mod, p->cfg, &why))) {
    snprintf(err->message, sizeof err->message, "%s", why.c_str());
    return nullptr;
  }
  p->cfg.code.clear();  // the group holds it compiled
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
    Vm probe(p->group, -1);
    if (!probe.start(&why) || !probe.add_root(p.get(), nullptr, &why)) {
      snprintf(err->message, sizeof err->message, "wasm: plugin '%s' (%s) cannot start: %s",
               p->cfg.name.c_str(),
               p->cfg.code_path.empty() ? "inline code" : p->cfg.code_path.c_str(), why.c_str());
      return nullptr;
    }
  }
  p->vms.resize(g_host->worker_count());
  p->workers.resize(g_host->worker_count());
  p->left.resize(g_host->worker_count());
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
  p->workers[size_t(i)] = w;
  p->vms[size_t(i)] = p->group->join(p, i, w);
  // The worker's slot, not the VM: FAIL_RELOAD may replace the VM in it.
  return reinterpret_cast<void*>(intptr_t(i) + 1);
}

void plugin_worker_stop(void* config, void* worker_data) {
  auto* p = static_cast<Plugin*>(config);
  size_t i = size_t(reinterpret_cast<intptr_t>(worker_data)) - 1;
  if (i >= p->vms.size()) return;
  // The VMs go on for the other plugins of the group and for this plugin's streams in flight;
  // this plugin's root contexts in them stop ticking and forget it.
  for (const std::weak_ptr<Vm>& old : p->left[i])
    if (std::shared_ptr<Vm> vm = old.lock()) vm->drop_root(p);
  p->left[i].clear();
  if (p->vms[i]) p->vms[i]->drop_root(p);
  p->vms[i].reset();
  p->workers[i] = nullptr;
}

void plugin_queue_ready(void* config, void* worker_data, uint32_t queue_id) {
  auto* p = static_cast<Plugin*>(config);
  size_t i = size_t(reinterpret_cast<intptr_t>(worker_data)) - 1;
  if (i >= p->vms.size() || !p->vms[i]) return;
  std::shared_ptr<Vm> vm = p->vms[i];
  RootCtx* r = vm->root_for(p);
  if (!r) return;
  vm->effective = r->id;
  vm->call(kOnQueueReady, {r->id, queue_id});
}

}  // namespace sywasm
