// Parses `listeners:` entries: address, protocols, TLS, filter chains, routes or tcp_proxy.
#include "config/schema.h"
#include "config/yaml_json.h"

namespace sy::config {
namespace {

FilterRef parse_filter(Diagnostics& d, const YAML::Node& n, const std::string& what) {
  FilterRef ref;
  ref.loc = d.at(n);
  ref.config_json = "{}";
  Fields f(d, n, ref.loc, what, {"module", "filter", "config"});
  if (!f.is_map()) return ref;
  f.string("module", &ref.module, /*required=*/true);
  f.string("filter", &ref.filter);
  // An empty `config:` is the same as none: the module gets an empty object either way.
  const MapEntry* c = f.find("config");
  if (c != nullptr && !c->value.IsNull()) {
    std::string json;
    if (yaml_to_json(d, c->value, "config in " + what, &json)) ref.config_json = std::move(json);
  }
  return ref;
}

std::vector<FilterRef> parse_filters(Fields& f, std::string_view key, const std::string& what) {
  std::vector<FilterRef> out;
  if (const MapEntry* e = f.list(key))
    for (const YAML::Node& item : e->value) out.push_back(parse_filter(f.diag(), item, what));
  return out;
}

void parse_protocols(Fields& f, std::vector<std::string>* out) {
  Diagnostics& d = f.diag();
  const MapEntry* e = f.find("protocols");
  std::vector<std::string> protocols;
  if (e == nullptr || !f.string_list("protocols", &protocols)) return;
  if (protocols.empty()) {
    d.error(value_loc(d, *e), "protocols in listener: must list http1, http2 or both");
    return;
  }
  bool ok = true;
  for (size_t i = 0; i < protocols.size(); ++i) {
    Location at = d.at(e->value[i]);
    const std::string& p = protocols[i];
    if (p != "http1" && p != "http2") {
      d.error(at, "protocols in listener: expected http1 or http2, got '" + p + "'");
      ok = false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (protocols[j] == p) {
        d.error(at, "protocols in listener: '" + p + "' is listed twice");
        ok = false;
      }
    }
  }
  if (ok) *out = std::move(protocols);
}

void parse_limits(Diagnostics& d, const MapEntry& e, ListenerLimits* limits) {
  Fields f(d, e.value, value_loc(d, e), "listener limits",
           {"header_bytes", "headers", "request_body", "buffered_body", "connections_per_client",
            "streams_per_client"});
  // Zero headers or header bytes would refuse every request; zero bodies mean "no limit".
  f.size32("header_bytes", &limits->header_bytes, /*min=*/1);
  f.uint32("headers", &limits->headers, /*min=*/1);
  f.size64("request_body", &limits->request_body);
  f.size64("buffered_body", &limits->buffered_body);
  f.uint32("connections_per_client", &limits->connections_per_client);
  f.uint32("streams_per_client", &limits->streams_per_client);
}

void parse_timeouts(Diagnostics& d, const MapEntry& e, ListenerTimeouts* timeouts) {
  Fields f(d, e.value, value_loc(d, e), "listener timeouts",
           {"request_headers", "idle", "request_body_idle", "response_send_idle", "drain"});
  f.duration("request_headers", &timeouts->request_headers);
  f.duration("idle", &timeouts->idle);
  f.duration("request_body_idle", &timeouts->request_body_idle);
  f.duration("response_send_idle", &timeouts->response_send_idle);
  f.duration("drain", &timeouts->drain);
}

Rate parse_rate(Fields& parent, std::string_view key, Rate def) {
  const MapEntry* e = parent.find(key);
  if (!e) return def;
  Diagnostics& d = parent.diag();
  Fields f(d, e->value, value_loc(d, *e), std::string(key) + " in listener http2",
           {"count", "window"});
  f.uint32("count", &def.count, /*min=*/1);
  f.duration("window", &def.window);
  return def;
}

void parse_http2(Diagnostics& d, const MapEntry& e, Http2Settings* h) {
  Fields f(d, e.value, value_loc(d, e), "listener http2",
           {"max_concurrent_streams", "initial_stream_window", "initial_connection_window",
            "max_header_list_size", "max_continuation_frames", "max_resets", "max_control_frames",
            "max_empty_frames"});
  if (!f.is_map()) return;
  f.uint32("max_concurrent_streams", &h->max_concurrent_streams, /*min=*/1);
  // RFC 9113 §6.9.2: windows are at most 2^31-1; below 64 KiB the default, streams crawl.
  f.size32("initial_stream_window", &h->initial_stream_window, /*min=*/65535);
  f.size32("initial_connection_window", &h->initial_connection_window, /*min=*/65535);
  for (auto [key, v] : {std::pair{"initial_stream_window", h->initial_stream_window},
                        {"initial_connection_window", h->initial_connection_window}})
    if (v > 0x7fffffffu)
      d.error(value_loc(d, *f.find(key)), std::string(key) + " in listener http2: at most 2GiB-1");
  f.size32("max_header_list_size", &h->max_header_list_size, /*min=*/1);
  f.uint32("max_continuation_frames", &h->max_continuation_frames);
  h->max_resets = parse_rate(f, "max_resets", h->max_resets);
  h->max_control_frames = parse_rate(f, "max_control_frames", h->max_control_frames);
  f.uint32("max_empty_frames", &h->max_empty_frames);
}

}  // namespace

Listener parse_listener(ParseContext& ctx, const YAML::Node& n, const Location& loc, NameAt* name) {
  Diagnostics& d = ctx.d;
  Listener l;
  l.loc = loc;
  Fields f(d, n, loc, "listener",
           {"name", "address", "protocols", "tls", "http2", "filters", "routes", "tcp_proxy",
            "network_filters", "limits", "timeouts", "upgrade_configs", "metadata"});
  if (!f.is_map()) return l;

  if (f.string("name", &l.name, /*required=*/true)) *name = {l.name, value_loc(d, *f.find("name"))};
  f.address("address", &l.address, /*required=*/true, /*allow_port_zero=*/true);
  parse_protocols(f, &l.protocols);
  if (const MapEntry* e = f.find("tls")) l.tls = parse_tls(d, *e, "listener tls", true);
  l.filters = parse_filters(f, "filters", "filter");
  l.network_filters = parse_filters(f, "network_filters", "network filter");
  if (const MapEntry* e = f.find("limits")) parse_limits(d, *e, &l.limits);
  if (const MapEntry* e = f.find("timeouts")) parse_timeouts(d, *e, &l.timeouts);
  if (const MapEntry* e = f.find("http2")) parse_http2(d, *e, &l.http2);
  if (const MapEntry* e = f.list("upgrade_configs"))
    l.upgrade_configs = parse_upgrade_configs(d, *e, "listener");
  if (const MapEntry* m = f.find("metadata")) parse_metadata(d, *m, "listener", &l.metadata);

  // A listener speaks HTTP (routes, with HTTP filters) or proxies TCP, never both.
  if (const MapEntry* tcp = f.find("tcp_proxy")) {
    if (f.has("routes"))
      d.error(d.at(tcp->key_node),
              "listener has both routes and tcp_proxy; a listener either routes HTTP or "
              "proxies TCP");
    if (const MapEntry* filters = f.find("filters"))
      d.error(d.at(filters->key_node),
              "filters in listener: HTTP filters do not run on a tcp_proxy listener; use "
              "network_filters");
    Fields tf(d, tcp->value, value_loc(d, *tcp), "tcp_proxy", {"cluster"});
    TcpProxy proxy;
    if (tf.string("cluster", &proxy.cluster, /*required=*/true))
      ctx.cluster_refs.push_back({proxy.cluster, value_loc(d, *tf.find("cluster"))});
    l.tcp_proxy = std::move(proxy);
  }

  if (const MapEntry* routes = f.list("routes")) {
    // per_filter may name a filter by its module or by its factory name.
    std::set<std::string> filter_names;
    for (const FilterRef& ref : l.filters) {
      if (!ref.module.empty()) filter_names.insert(ref.module);
      if (!ref.filter.empty()) filter_names.insert(ref.filter);
    }
    std::vector<NameAt> names;
    for (const YAML::Node& item : routes->value) {
      NameAt route_name;
      l.routes.push_back(
          parse_route(ctx, item, d.at(item), l.routes.size(), filter_names, &route_name));
      names.push_back(std::move(route_name));
    }
    check_unique(d, names, "route");
  }
  return l;
}

}  // namespace sy::config
