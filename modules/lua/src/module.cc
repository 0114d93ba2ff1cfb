// The module's descriptor and entry: one HTTP filter, "lua".
#include <switchyard/module.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "dict_store.h"
#include "filter.h"
#include "lua_module.h"

SY_MODULE_STAMP("lua", "1.0.0");

namespace sylua {

const sy_host_t* g_host = nullptr;
sy_module_t* g_module = nullptr;

namespace {

uint32_t g_vm_gauge = 0, g_memory_gauge = 0;

void fill_error(sy_error_t* err, const std::string& msg) {
  std::snprintf(err->message, sizeof(err->message), "%s", msg.c_str());
}

void* config_create(void*, sy_str_t json, sy_error_t* err) {
  std::string why;
  FilterConfig* cfg = parse_filter_config(V(json), &why);
  if (!cfg) fill_error(err, why);
  return cfg;
}

void config_destroy(void* c) { delete static_cast<FilterConfig*>(c); }

void* route_config_create(void*, sy_str_t json, sy_error_t* err) {
  std::string why;
  RouteConfig* rc = parse_route_config(V(json), &why);
  if (!rc) fill_error(err, why);
  return rc;
}

void route_config_destroy(void* c) { delete static_cast<RouteConfig*>(c); }

// Watched script files are checked on each worker twice a second, with or without traffic, so
// an edit (or a broken one, with its error in the log) shows up promptly.
struct WorkerWatch {
  FilterConfig* cfg;
  sy_worker_t* worker;
  sy_timer_t* timer = nullptr;
};

constexpr uint64_t kWatchMs = 500;

void watch_tick(sy_worker_t* w, void* arg) {
  auto* ww = static_cast<WorkerWatch*>(arg);
  int index = g_host->worker_index(w);
  std::vector<VmSet*> sets;
  if (ww->cfg->default_script && ww->cfg->default_script->watch)
    sets.push_back(ww->cfg->default_script.get());
  for (auto& [name, set] : ww->cfg->named)
    if (set->watch) sets.push_back(set.get());
  for (VmSet* set : sets) set->get(index, ww->cfg->stats);
  ww->timer = g_host->worker_timer(w, kWatchMs, watch_tick, ww);
}

void* worker_start(void* config, sy_worker_t* w) {
  auto* cfg = static_cast<FilterConfig*>(config);
  if (!cfg->watch) return nullptr;
  auto* ww = new WorkerWatch{cfg, w};
  ww->timer = g_host->worker_timer(w, kWatchMs, watch_tick, ww);
  return ww;
}

void worker_stop(void*, void* data) {
  auto* ww = static_cast<WorkerWatch*>(data);
  if (!ww) return;
  if (ww->timer) g_host->timer_cancel(ww->timer);
  delete ww;
}

bool on_load(sy_module_t*, void** data, sy_error_t*) {
  *data = nullptr;
  g_host->metric_define(g_module, SY_GAUGE, S("vm_count"), nullptr, 0, &g_vm_gauge);
  g_host->metric_define(g_module, SY_GAUGE, S("memory_bytes"), nullptr, 0, &g_memory_gauge);
  dict_store_load();
  return true;
}

void on_unload(void*) { dict_store_unload(); }

// Hot swap hands the sharedDict store to the next generation (dict_store.h says why).
sy_str_t handover_export(void*) { return dict_store_export(); }
void handover_import(void*, sy_str_t state) { dict_store_import(state); }

const sy_http_filter_t kFilter = {
    sizeof(sy_http_filter_t),
    "lua",
    config_create,
    config_destroy,
    route_config_create,
    route_config_destroy,
    worker_start,
    worker_stop,
    on_stream_create,
    on_request_headers,
    on_request_body,
    on_request_trailers,
    on_response_headers,
    on_response_body,
    on_response_trailers,
    nullptr,
    on_stream_destroy,
    nullptr,
    nullptr,  // on_watermark: scripts have no watermark callback in Envoy's Lua API
};

const sy_http_filter_t* const kFilters[] = {&kFilter, nullptr};

const sy_module_descriptor_t kDescriptor = {
    sizeof(sy_module_descriptor_t),
    SY_ABI_MAJOR,
    SY_ABI_MINOR,
    "lua",
    "1.0.0",
    on_load,
    on_unload,
    handover_export,
    handover_import,
    kFilters,
    nullptr,
    nullptr,  // on_queue_ready: scripts register no queues with a worker's own handle
};

}  // namespace

void log(sy_log_level_t level, std::string_view msg) {
  if (g_host->log_enabled(level)) g_host->log(g_module, level, S(msg));
}

void vm_count_add(int64_t delta) { g_host->metric_add(g_module, g_vm_gauge, delta); }
void memory_gauge_add(int64_t delta) { g_host->metric_add(g_module, g_memory_gauge, delta); }

}  // namespace sylua

SY_MODULE_ENTRY(host, module) {
  sylua::g_host = host;
  sylua::g_module = module;
  return &sylua::kDescriptor;
}
