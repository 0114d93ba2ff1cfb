// The ext_authz module: Envoy's envoy.filters.http.ext_authz as a Switchyard module, one HTTP
// filter factory named "ext_authz". The server is reached through the host's callouts (gRPC
// over a streaming callout to an HTTP/2 cluster, or plain HTTP to any cluster); the module has
// no thread and no network code of its own.
#include <google/protobuf/stubs/common.h>

#include <cstring>
#include <new>
#include <string>

#include "config.h"
#include "filter.h"
#include "host.h"

SY_MODULE_STAMP("ext_authz", "1.0.0");

namespace ext_authz {

const sy_host_t* g_host = nullptr;
sy_module_t* g_module = nullptr;

void log(sy_log_level_t level, std::string_view message) {
  g_host->log(g_module, level, str(message));
}

namespace {

void set_error(sy_error_t* err, const std::string& why) {
  std::snprintf(err->message, sizeof err->message, "%s", why.c_str());
}

// Envoy's counter names (ext_authz.<stat_prefix>.<name>); exported as
// module.ext_authz[.<stat_prefix>].<name>.
bool define_metrics(Config* c, std::string* err) {
  sy_label_t label{str("stat_prefix"), str(c->stat_prefix)};
  size_t labels = c->stat_prefix.empty() ? 0 : 1;
  struct {
    const char* name;
    uint32_t* id;
  } all[] = {{"ok", &c->metrics.ok},
             {"denied", &c->metrics.denied},
             {"error", &c->metrics.error},
             {"failure_mode_allowed", &c->metrics.failure_mode_allowed},
             {"disabled", &c->metrics.disabled},
             {"invalid", &c->metrics.invalid}};
  for (auto& m : all) {
    if (g_host->metric_define(g_module, SY_COUNTER, str(m.name), labels ? &label : nullptr, labels,
                              m.id) != SY_OK) {
      *err = "stat_prefix: '" + c->stat_prefix +
             "' cannot name a metric (visible ASCII without spaces, at most 200 bytes)";
      return false;
    }
  }
  return true;
}

void* config_create(void*, sy_str_t json, sy_error_t* err) noexcept {
  try {
    std::string why;
    auto c = parse_config(view(json), &why);
    if (!c || !define_metrics(&*c, &why)) {
      set_error(err, why);
      return nullptr;
    }
    return new Config(std::move(*c));
  } catch (const std::exception& e) {
    set_error(err, std::string("ext_authz config: ") + e.what());
    return nullptr;
  }
}

void config_destroy(void* c) { delete static_cast<Config*>(c); }

void* route_config_create(void*, sy_str_t json, sy_error_t* err) noexcept {
  try {
    std::string why;
    auto rc = parse_route_config(view(json), &why);
    if (!rc) {
      set_error(err, why);
      return nullptr;
    }
    return new RouteConfig(std::move(*rc));
  } catch (const std::exception& e) {
    set_error(err, std::string("ext_authz per-route config: ") + e.what());
    return nullptr;
  }
}

void route_config_destroy(void* rc) { delete static_cast<RouteConfig*>(rc); }

// What a stream gets when its filter cannot be made (out of memory): returning NULL would let
// the request through unchecked, so it is answered 500 instead.
char g_no_filter = 0;

void* stream_create(void* config, sy_stream_t* s) noexcept {
  Filter* f = new (std::nothrow) Filter(static_cast<const Config*>(config),
                                        static_cast<const RouteConfig*>(g_host->route_config(s)));
  return f != nullptr ? static_cast<void*>(f) : &g_no_filter;
}

// A failure inside the filter (out of memory, mostly) must not take the process down: the
// stream is answered 500 when it still can be.
template <class Fn>
sy_filter_status_t guarded(void* f, sy_stream_t* s, Fn&& fn) noexcept {
  if (f == &g_no_filter) {
    g_host->send_local_reply(s, 500, nullptr, 0, str(""), str("ext_authz_out_of_memory"));
    return SY_STOP;
  }
  try {
    return fn();
  } catch (const std::exception& e) {
    log(SY_LOG_ERROR, std::string("ext_authz filter failed: ") + e.what());
    g_host->send_local_reply(s, 500, nullptr, 0, str(""), str("ext_authz_exception"));
    return SY_STOP;
  }
}

sy_filter_status_t request_headers(void* f, sy_stream_t* s, bool end) noexcept {
  return guarded(f, s, [&] { return static_cast<Filter*>(f)->on_request_headers(s, end); });
}
sy_filter_status_t request_body(void* f, sy_stream_t* s, bool end) noexcept {
  return guarded(f, s, [&] { return static_cast<Filter*>(f)->on_request_body(s, end); });
}
sy_filter_status_t request_trailers(void* f, sy_stream_t* s) noexcept {
  return guarded(f, s, [&] { return static_cast<Filter*>(f)->on_request_trailers(s); });
}
sy_filter_status_t response_headers(void* f, sy_stream_t* s, bool) noexcept {
  return guarded(f, s, [&] { return static_cast<Filter*>(f)->on_response_headers(s); });
}
void stream_destroy(void* f) noexcept {
  if (f == &g_no_filter) return;
  auto* filter = static_cast<Filter*>(f);
  filter->on_destroy();
  delete filter;
}

bool on_load(sy_module_t* m, void** data, sy_error_t*) {
  g_module = m;
  *data = nullptr;
  return true;
}

const sy_http_filter_t kFilter = [] {
  sy_http_filter_t f{};
  f.size = sizeof f;
  f.name = "ext_authz";
  f.on_config_create = config_create;
  f.on_config_destroy = config_destroy;
  f.on_route_config_create = route_config_create;
  f.on_route_config_destroy = route_config_destroy;
  f.on_stream_create = stream_create;
  f.on_request_headers = request_headers;
  f.on_request_body = request_body;
  f.on_request_trailers = request_trailers;
  f.on_response_headers = response_headers;
  f.on_stream_destroy = stream_destroy;
  return f;
}();

const sy_http_filter_t* const kFilters[] = {&kFilter, nullptr};

const sy_module_descriptor_t kDescriptor = [] {
  sy_module_descriptor_t d{};
  d.size = sizeof d;
  d.abi_major = SY_ABI_MAJOR;
  d.abi_minor = SY_ABI_MINOR;
  d.name = "ext_authz";
  d.version = "1.0.0";
  d.on_load = on_load;
  d.http_filters = kFilters;
  return d;
}();

}  // namespace

}  // namespace ext_authz

SY_MODULE_ENTRY(host, module) {
  // Streaming callouts and typed metadata are ABI 1.2: refuse an older host cleanly.
  if (!SY_HAS_SLOT(host, sy_host_t, stream_callout_start) ||
      !SY_HAS_SLOT(host, sy_host_t, attribute_get_typed))
    return nullptr;
  ext_authz::g_host = host;
  ext_authz::g_module = module;
  return &ext_authz::kDescriptor;
}
