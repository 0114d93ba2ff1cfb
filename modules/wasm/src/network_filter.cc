// The network filter `wasm_network`: a Proxy-Wasm context per TCP proxy connection. The ABI
// has no per-worker hook for network filters, so each worker thread gets its VM on first use.
#include <mutex>
#include <thread>
#include <unordered_map>

#include "vm.h"

namespace sywasm {
namespace {

struct NetConn {
  Plugin* plugin = nullptr;
  std::shared_ptr<Vm> vm;
  StreamCtx ctx;
  bool bypass = false;
};

struct NetPlugin : Plugin {
  ~NetPlugin() {
    if (cfg.watch) mod->unwatch(this);  // before this object's members go
  }
  std::mutex mu;
  // Each worker thread's VM (no thread_local: its destructor would keep glibc from unloading
  // an old generation of the module).
  std::unordered_map<std::thread::id, std::shared_ptr<Vm>> by_thread;
};

std::shared_ptr<Vm> thread_vm(NetPlugin* p) {
  std::shared_ptr<Vm> vm;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    auto it = p->by_thread.find(std::this_thread::get_id());
    if (it != p->by_thread.end()) vm = it->second;
  }
  bool reload = vm && vm->failed && p->cfg.failure_policy == FailurePolicy::kFailReload;
  if (vm && !reload && vm->code == p->current_code()) return vm;
  vm = std::make_shared<Vm>(p, nullptr);
  std::string err;
  if (!vm->start(&err) && !vm->failed) vm->fail(err);
  std::lock_guard<std::mutex> lock(p->mu);
  p->by_thread[std::this_thread::get_id()] = vm;  // the old VM lives on in its connections
  return vm;
}

void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  // plugin_create builds a Plugin; the network filter needs its own fields beside it.
  auto* base = static_cast<Plugin*>(plugin_create(module_data, json, err, true));
  if (!base) return nullptr;
  auto* p = new NetPlugin();
  p->mod = base->mod;
  p->network = true;
  p->cfg = std::move(base->cfg);
  p->code = base->current_code();
  p->m_traps = base->m_traps;
  p->m_deadline = base->m_deadline;
  p->m_failed = base->m_failed;
  p->m_reloads = base->m_reloads;
  p->metrics_ok = base->metrics_ok;
  p->seen_size = base->seen_size;
  p->seen_mtime_ns = base->seen_mtime_ns;
  p->seen_ino = base->seen_ino;
  delete base;
  if (p->cfg.watch) p->mod->watch(p);
  return p;
}

void on_config_destroy(void* config) { delete static_cast<NetPlugin*>(config); }

void* on_connection_create(void* config, sy_conn_t* c) {
  auto* p = static_cast<NetPlugin*>(config);
  auto* n = new NetConn();
  n->plugin = p;
  n->vm = thread_vm(p);
  Vm& vm = *n->vm;
  n->ctx.id = vm.next_id++;
  n->ctx.conn = c;
  n->ctx.net_filter = n;
  vm.ctxs[n->ctx.id] = &n->ctx;
  vm.effective = n->ctx.id;
  uint64_t action = 0;
  if (vm.failed || !vm.call(kOnContextCreate, {n->ctx.id, vm.root_id}) ||
      !vm.call(kOnNewConnection, {n->ctx.id}, &action)) {
    n->bypass = true;
    p->count(p->m_failed);
    if (p->cfg.failure_policy != FailurePolicy::kFailOpen) g_host->conn_close(c);
  }
  return n;
}

sy_filter_status_t on_data(void* filter, sy_conn_t* c, sy_direction_t dir, bool eos) {
  auto* n = static_cast<NetConn*>(filter);
  if (n->bypass) return SY_CONTINUE;
  Vm& vm = *n->vm;
  sy_str_t data{nullptr, 0};
  g_host->conn_data_get(c, dir, &data);
  vm.effective = n->ctx.id;
  uint64_t action = 0;
  bool ok = !vm.failed && vm.call(dir == SY_REQUEST ? kOnDownstreamData : kOnUpstreamData,
                                  {n->ctx.id, data.len, eos}, &action);
  if (!ok) {
    n->bypass = true;
    n->plugin->count(n->plugin->m_failed);
    if (n->plugin->cfg.failure_policy == FailurePolicy::kFailOpen) return SY_CONTINUE;
    g_host->conn_close(c);
    return SY_STOP;
  }
  // Pause holds the bytes, as Envoy leaves them in the connection's buffer: the next bytes in
  // this direction join them (the plugin is called with all of it), the peer is paused at the
  // watermark, and proxy_continue_stream (or a later Continue) passes them on.
  return action == 0 ? SY_CONTINUE : SY_STOP_AND_WATERMARK;
}

void on_connection_close(void* filter, sy_conn_t* c) {
  auto* n = static_cast<NetConn*>(filter);
  Vm& vm = *n->vm;
  if (vm.failed) return;
  vm.effective = n->ctx.id;
  // Peer type 2: the remote side (Envoy's PeerType::Remote).
  vm.call(kOnDownstreamClose, {n->ctx.id, 2});
  vm.call(kOnUpstreamClose, {n->ctx.id, 2});
  vm.call(kOnDone, {n->ctx.id});
  vm.call(kOnLog, {n->ctx.id});
}

void on_connection_destroy(void* filter) {
  auto* n = static_cast<NetConn*>(filter);
  Vm& vm = *n->vm;
  if (!vm.failed) {
    vm.effective = n->ctx.id;
    vm.call(kOnDelete, {n->ctx.id});
  }
  n->ctx.conn = nullptr;
  vm.ctxs.erase(n->ctx.id);
  delete n;
}

}  // namespace

// No on_worker_start, on_worker_stop or on_queue_ready (ABI 1.2): VMs start per thread on
// first use instead.
const sy_network_filter_t kNetworkFilter = {
    sizeof(sy_network_filter_t),
    "wasm_network",
    on_config_create,
    on_config_destroy,
    on_connection_create,
    on_data,
    on_connection_close,
    on_connection_destroy,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace sywasm
