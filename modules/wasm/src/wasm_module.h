// Shared declarations of the wasm module: the host table, the module-wide engine, the VM groups
// (plugins that share VMs by key) and a filter config (a plugin) with its per-worker VMs.
#pragma once

#include <switchyard/module.h>
#include <wasmtime.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.h"

namespace sywasm {

extern const sy_host_t* g_host;

class Vm;
struct VmGroup;

// Module-wide state of one generation: the engine (compiled code is per engine) and the epoch
// ticker that bounds every callback.
struct WasmModule {
  sy_module_t* self = nullptr;
  wasm_engine_t* engine = nullptr;
  std::thread ticker;
  std::atomic<bool> stop{false};
  std::mutex ticker_mu;
  void start_ticker();

  // Plugins whose .wasm file is watched (`watch: true`), checked by one thread twice a second.
  std::thread watcher;
  std::mutex watch_mu;
  std::vector<struct Plugin*> watched;
  void watch(struct Plugin* p);
  void unwatch(struct Plugin* p);

  // The VM groups of this generation by key (main thread only: configs are built there). An
  // entry expires with the group's last plugin and VM.
  std::map<std::string, std::weak_ptr<VmGroup>> groups;
};

// The epoch advances every kTickMs; a callback's deadline is counted in ticks.
constexpr uint64_t kTickMs = 5;

enum class AbiVersion { k0_1_0, k0_2_0, k0_2_1 };

// One version of a plugin's code: compiled, with its linker. VMs hold the version they run,
// so a watched file's new version serves new streams while streams in flight finish on the old.
struct Code {
  wasmtime_module_t* module = nullptr;
  wasmtime_linker_t* linker = nullptr;
  AbiVersion abi = AbiVersion::k0_2_1;
  std::string sha256;
  bool from_cache = false;
  ~Code();
};

// The plugins (HTTP and network filter configs, on any listener or route) whose VM key matches
// share one VM per worker, each with its own root context, as in Envoy. Envoy's key is the
// vm_id, the VM configuration and the code; here it also holds the VM-wide settings one
// instance can have only once (environment variables, memory limit, callback deadline, watch),
// so a plugin never silently runs with another plugin's. The code is the group's: a watched
// file's new version replaces it for every plugin of the group.
struct VmGroup : std::enable_shared_from_this<VmGroup> {
  WasmModule* mod = nullptr;
  std::string key;
  PluginConfig cfg;            // the first plugin's, read for the VM-wide fields only
  std::shared_ptr<Code> code;  // guarded by code_mu (the watcher thread replaces it)
  std::mutex code_mu;
  std::shared_ptr<Code> current_code();
  // Indexed by worker index, each slot touched only by its worker: the VM a plugin arriving
  // there joins. Weak: the plugins and streams using a VM keep it.
  std::vector<std::weak_ptr<Vm>> vms;
  // P's VM on worker I (W is P's handle there): the group's VM on I when it runs the current
  // code and has not failed, else a new one; P gets its own root context in it. Never null: a
  // VM that could not start is returned failed.
  std::shared_ptr<Vm> join(struct Plugin* p, int32_t i, sy_worker_t* w);
  std::string log_prefix() const;
};

// The group key of CFG (a hex sha256; CFG.code must hold the bytes).
std::string vm_key(const PluginConfig& cfg);

// One wasm filter config: its VM group and, per worker, the VM holding its root context.
struct Plugin {
  WasmModule* mod = nullptr;
  PluginConfig cfg;
  bool network = false;
  std::shared_ptr<VmGroup> group;
  // The watched file as last seen (size, mtime, inode).
  int64_t seen_size = -1, seen_mtime_ns = -1;
  uint64_t seen_ino = 0;
  std::shared_ptr<Code> current_code() { return group->current_code(); }
  // Indexed by worker index; each slot is touched only by its worker.
  std::vector<std::shared_ptr<Vm>> vms;
  std::vector<sy_worker_t*> workers;
  // VMs this plugin left for a newer one (FAIL_RELOAD, new code) that its streams may still
  // use: its root context there is let go when it leaves the worker.
  std::vector<std::vector<std::weak_ptr<Vm>>> left;
  // Counters (module.wasm.<name>{plugin=...}).
  uint32_t m_traps = 0, m_deadline = 0, m_failed = 0, m_reloads = 0, m_oom = 0;
  bool metrics_ok = false;

  ~Plugin();
  std::string log_prefix() const;
  void count(uint32_t id);
  // The worker's VM, re-created under FAIL_RELOAD when it failed. May be null.
  std::shared_ptr<Vm> vm_for(sy_worker_t* w);
};

// Compiles BYTES (or loads them from the cache by sha256), checks the ABI version and links
// the imports. Null (ERR set) when any of it fails.
std::shared_ptr<Code> build_code(WasmModule* mod, const PluginConfig& cfg, const std::string& bytes,
                                 std::string* err);
// Defines every host function (proxy_*, WASI) and stubs for other imports in CODE's linker.
bool define_imports(WasmModule* mod, Code* code, std::string* err);
// Re-reads a watched plugin's file; a new version that compiles and starts is published.
void check_watched(Plugin* p);

void* plugin_create(void* module_data, sy_str_t json, sy_error_t* err, bool network);
void plugin_destroy(void* config);
void* plugin_worker_start(void* config, sy_worker_t* w);
void plugin_worker_stop(void* config, void* worker_data);
void plugin_queue_ready(void* config, void* worker_data, uint32_t queue_id);

extern const sy_http_filter_t kHttpFilter;
extern const sy_network_filter_t kNetworkFilter;

inline sy_str_t str(std::string_view v) { return {v.data(), v.size()}; }
inline std::string_view view(sy_str_t s) { return {s.ptr, s.len}; }

}  // namespace sywasm
