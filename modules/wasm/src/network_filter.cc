// The network filter `wasm_network`: a Proxy-Wasm context per TCP proxy connection, on the
// worker's VM of the plugin (ABI 1.2's per-worker hooks for network filter configs, as for HTTP
// filters: the root context ticks, calls out and hears of its queues).
#include "vm.h"

namespace sywasm {
namespace {

struct NetConn {
  Plugin* plugin = nullptr;
  std::shared_ptr<Vm> vm;
  StreamCtx ctx;
  bool bypass = false;
};

void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  return plugin_create(module_data, json, err, true);
}

void* on_connection_create(void* config, sy_conn_t* c) {
  auto* p = static_cast<Plugin*>(config);
  auto* n = new NetConn();
  n->plugin = p;
  n->vm = p->vm_for(g_host->conn_worker(c));
  if (!n->vm) {
    // The config is not on this worker: the failure policy decides, as for a failed VM.
    n->vm = std::make_shared<Vm>(p->group, -1);
    n->vm->failed = true;
  }
  Vm& vm = *n->vm;
  RootCtx* root = vm.root_for(p);
  n->ctx.id = vm.next_id++;
  n->ctx.root = root ? root->id : 0;
  n->ctx.plugin = p;
  n->ctx.conn = c;
  n->ctx.net_filter = n;
  vm.ctxs[n->ctx.id] = &n->ctx;
  vm.effective = n->ctx.id;
  uint64_t action = 0;
  if (vm.failed || !root || !vm.call(kOnContextCreate, {n->ctx.id, root->id}) ||
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

const sy_network_filter_t kNetworkFilter = {
    sizeof(sy_network_filter_t),
    "wasm_network",
    on_config_create,
    plugin_destroy,
    on_connection_create,
    on_data,
    on_connection_close,
    on_connection_destroy,
    plugin_worker_start,
    plugin_worker_stop,
    plugin_queue_ready,
};

}  // namespace sywasm
