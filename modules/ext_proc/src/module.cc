// The ext_proc module: descriptor, C callbacks and counters.
#include <cstdio>
#include <cstring>
#include <string>

#include "ext_proc.h"
#include "filter.h"
#include "observe.h"

SY_MODULE_STAMP("ext_proc", "0.1.0");

namespace extproc {

const sy_host_t* g_host = nullptr;
sy_module_t* g_module = nullptr;

namespace {

uint32_t g_counters[kCounterCount];
bool g_counters_defined = false;

const char* const kCounterNames[kCounterCount] = {
    "streams_started",
    "stream_msgs_sent",
    "stream_msgs_received",
    "spurious_msgs_received",
    "streams_closed",
    "streams_failed",
    "failure_mode_allowed",
    "message_timeouts",
    "rejected_header_mutations",
    "override_message_timeout_received",
    "override_message_timeout_ignored",
    "clear_route_cache_ignored",
    "clear_route_cache_disabled",
    "http_not_ok_resp_received",
    "stream_msgs_dropped",
};

void set_error(sy_error_t* err, const std::string& msg) {
  std::snprintf(err->message, sizeof err->message, "%s", msg.c_str());
}

Filter* F(void* f) { return static_cast<Filter*>(f); }

bool on_load(sy_module_t*, void** module_data, sy_error_t*) {
  *module_data = nullptr;
  define_counters();
  return true;
}

void* config_create(void*, sy_str_t json, sy_error_t* err) {
  std::string why;
  Config* c = parse_config(V(json), &why);
  if (!c) set_error(err, why);
  return c;
}
void config_destroy(void* c) { delete static_cast<Config*>(c); }
void* route_config_create(void*, sy_str_t json, sy_error_t* err) {
  std::string why;
  RouteConfig* r = parse_route_config(V(json), &why);
  if (!r) set_error(err, why);
  return r;
}
void route_config_destroy(void* r) { delete static_cast<RouteConfig*>(r); }

// Every ext_proc config notes its worker handle, for observability mode's side streams, which
// outlive their HTTP streams (observe.h). The handle is the worker data.
void* worker_start(void* config, sy_worker_t* w) {
  worker_started(static_cast<const Config*>(config), w);
  return w;
}
void worker_stop(void* config, void* w) {
  worker_stopped(static_cast<const Config*>(config), static_cast<sy_worker_t*>(w));
}

void* stream_create(void* config, sy_stream_t* s) {
  return new Filter(static_cast<const Config*>(config), s);
}
sy_filter_status_t req_headers(void* f, sy_stream_t*, bool end) {
  return F(f)->on_headers(SY_REQUEST, end);
}
sy_filter_status_t req_body(void* f, sy_stream_t*, bool end) {
  return F(f)->on_body(SY_REQUEST, end);
}
sy_filter_status_t req_trailers(void* f, sy_stream_t*) { return F(f)->on_trailers(SY_REQUEST); }
sy_filter_status_t resp_headers(void* f, sy_stream_t*, bool end) {
  return F(f)->on_headers(SY_RESPONSE, end);
}
sy_filter_status_t resp_body(void* f, sy_stream_t*, bool end) {
  return F(f)->on_body(SY_RESPONSE, end);
}
sy_filter_status_t resp_trailers(void* f, sy_stream_t*) { return F(f)->on_trailers(SY_RESPONSE); }
void stream_complete(void* f, sy_stream_t*) { F(f)->on_complete(); }
void watermark(void* f, sy_stream_t*, sy_direction_t dir, bool above) {
  F(f)->on_watermark(dir, above);
}
void stream_destroy(void* f) { delete F(f); }

const sy_http_filter_t kFilter = {
    sizeof(sy_http_filter_t),
    "ext_proc",
    config_create,
    config_destroy,
    route_config_create,
    route_config_destroy,
    worker_start,
    worker_stop,
    stream_create,
    req_headers,
    req_body,
    req_trailers,
    resp_headers,
    resp_body,
    resp_trailers,
    stream_complete,
    stream_destroy,
    nullptr,
    // FULL_DUPLEX_STREAMED pauses the side stream while a peer's buffer is full.
    watermark,
};
const sy_http_filter_t* const kFilters[] = {&kFilter, nullptr};

const sy_module_descriptor_t kDescriptor = {
    sizeof(sy_module_descriptor_t),
    SY_ABI_MAJOR,
    SY_ABI_MINOR,
    "ext_proc",
    "0.1.0",
    on_load,
    nullptr,
    nullptr,
    nullptr,
    kFilters,
    nullptr,
    nullptr,  // on_queue_ready: ext_proc uses no queues
};

}  // namespace

void define_counters() {
  for (int i = 0; i < kCounterCount; ++i)
    g_counters_defined = g_host->metric_define(g_module, SY_COUNTER, S(kCounterNames[i]), nullptr,
                                               0, &g_counters[i]) == SY_OK;
}

void count(Counter c, int64_t n) {
  if (g_counters_defined) g_host->metric_add(g_module, g_counters[c], n);
}

}  // namespace extproc

SY_MODULE_ENTRY(host, module) {
  // The streaming callouts and stream_reset this module needs came in ABI 1.2.
  if (!SY_HAS_SLOT(host, sy_host_t, stream_reset)) return nullptr;
  extproc::g_host = host;
  extproc::g_module = module;
  return &extproc::kDescriptor;
}
