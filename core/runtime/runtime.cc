// Building runtime snapshots from config.
#include "core/runtime/runtime.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/net/socket.h"

namespace sy::server {
namespace {

ClassCounters class_counters(const std::string& kind, const stats::Labels& labels) {
  ClassCounters c{};
  auto& r = stats::registry();
  for (int i = 1; i <= 5; ++i)
    c[size_t(i)] = r.counter(kind, labels, "rq_" + std::to_string(i) + "xx");
  c[0] = c[5];  // out-of-range statuses count as 5xx
  return c;
}

// Each field named, so a field added to the struct cannot shift the others' counters.
ListenerStats listener_stats(const std::string& name) {
  auto& r = stats::registry();
  stats::Labels l{{"listener", name}};
  auto counter = [&](const char* n) { return r.counter("listener", l, n); };
  auto gauge = [&](const char* n) { return r.gauge("listener", l, n); };
  auto histogram = [&](const char* n) { return r.histogram("listener", l, n); };
  return {
      .cx_total = counter("cx_total"),
      .cx_active = gauge("cx_active"),
      .rq_total = counter("rq_total"),
      .rq_class = class_counters("listener", l),
      .bytes_rx = counter("bytes_rx"),
      .bytes_tx = counter("bytes_tx"),
      .rq_header_timeout = counter("rq_header_timeout"),
      .rq_malformed = counter("rq_malformed"),
      .rq_upgrade_stripped = counter("rq_upgrade_stripped"),
      .rq_trailers_dropped = counter("rq_trailers_dropped"),
      .rq_time = histogram("rq_time_ms"),
      .cx_http1 = counter("cx_http1"),
      .cx_http2 = counter("cx_http2"),
      .rq_http1 = counter("rq_http1"),
      .rq_http2 = counter("rq_http2"),
      .tls_handshake = counter("tls_handshake"),
      .tls_handshake_error = counter("tls_handshake_error"),
      .tls_session_reused = counter("tls_session_reused"),
      .tls_no_client_cert = counter("tls_no_client_cert"),
      .h2_rapid_reset = counter("h2_rapid_reset"),
      .h2_continuation_flood = counter("h2_continuation_flood"),
      .h2_header_list_too_large = counter("h2_header_list_too_large"),
      .h2_control_flood = counter("h2_control_flood"),
      .h2_empty_frame_flood = counter("h2_empty_frame_flood"),
      .h2_stream_error = counter("h2_stream_error"),
      .h2_refused_stream = counter("h2_refused_stream"),
      .h2_protocol_error = counter("h2_protocol_error"),
      .h2_reset_before_dispatch = counter("h2_reset_before_dispatch"),
      .rs_send_timeout = counter("rs_send_timeout"),
      .rq_body_timeout = counter("rq_body_timeout"),
      .cx_client_limit = counter("cx_client_limit"),
      .rq_client_limit = counter("rq_client_limit"),
  };
}

ClusterStats cluster_stats(const std::string& name) {
  auto& r = stats::registry();
  stats::Labels l{{"cluster", name}};
  auto counter = [&](const char* n) { return r.counter("cluster", l, n); };
  auto gauge = [&](const char* n) { return r.gauge("cluster", l, n); };
  auto histogram = [&](const char* n) { return r.histogram("cluster", l, n); };
  return {
      .rq_total = counter("rq_total"),
      .rq_class = class_counters("cluster", l),
      .cx_total = counter("cx_total"),
      .cx_active = gauge("cx_active"),
      .cx_connect_fail = counter("cx_connect_fail"),
      .cx_connect_timeout = counter("cx_connect_timeout"),
      .rq_timeout = counter("rq_timeout"),
      .rq_retry = counter("rq_retry"),
      .rq_overflow = counter("rq_overflow"),
      .rq_reset = counter("rq_reset"),
      .bytes_tx = counter("bytes_tx"),
      .bytes_rx = counter("bytes_rx"),
      .rq_time = histogram("rq_time_ms"),
      .tls_handshake_error = counter("tls_handshake_error"),
      .rq_pending_timeout = counter("rq_pending_timeout"),
  };
}

bool same_cluster(const config::Cluster& a, const config::Cluster& b) {
  if (a.endpoints.size() != b.endpoints.size()) return false;
  for (size_t i = 0; i < a.endpoints.size(); ++i)
    if (a.endpoints[i].str() != b.endpoints[i].str()) return false;
  return a.protocol == b.protocol && a.connect_timeout == b.connect_timeout &&
         a.timeout == b.timeout && a.max_connections == b.max_connections &&
         a.max_pending == b.max_pending && a.pending_timeout == b.pending_timeout &&
         a.connect_retries == b.connect_retries && a.idle_timeout == b.idle_timeout && !a.tls &&
         !b.tls;  // TLS files are re-read
}

}  // namespace

std::shared_ptr<AccessLogSink> AccessLogSink::open(const std::string& path, std::string* error) {
  auto sink = std::make_shared<AccessLogSink>();
  sink->path_ = path;
  if (path == "-" || path == "stdout") {
    sink->fd_ = 1;
    return sink;
  }
  sink->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (sink->fd_ < 0) {
    *error = "cannot open access log '" + path + "': " + std::strerror(errno);
    return nullptr;
  }
  sink->owned_ = true;
  return sink;
}

AccessLogSink::~AccessLogSink() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

void AccessLogSink::write(const std::string& lines) {
  // O_APPEND makes each write land whole at the end, so workers never interleave lines.
  size_t off = 0;
  while (off < lines.size()) {
    ssize_t n = ::write(fd_, lines.data() + off, lines.size() - off);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    off += size_t(n);
  }
}

const ListenerRuntime* Runtime::listener(const std::string& name) const {
  for (const auto& l : listeners)
    if (l.cfg->name == name) return &l;
  return nullptr;
}

std::shared_ptr<const Runtime> Runtime::build(std::shared_ptr<const config::Config> cfg,
                                              const Runtime* previous,
                                              std::vector<config::Error>* errors,
                                              FilterResolver* resolver) {
  auto rt = std::make_shared<Runtime>();
  rt->config = cfg;
  rt->version = previous ? previous->version + 1 : 1;

  for (const auto& c : cfg->clusters) {
    if (previous) {
      auto it = previous->clusters.find(c.name);
      if (it != previous->clusters.end() && same_cluster(it->second->cfg, c)) {
        rt->clusters[c.name] = it->second;
        continue;
      }
    }
    auto cr = std::make_shared<ClusterRuntime>();
    cr->cfg = c;
    for (const auto& ep : c.endpoints) {
      sockaddr_storage ss;
      if (!net::parse_sockaddr(ep.host, ep.port, &ss)) {
        errors->push_back({c.loc, "cluster '" + c.name + "': cannot use endpoint '" + ep.str() +
                                      "': expected a numeric IPv4/IPv6 address or localhost"});
        continue;
      }
      cr->addrs.push_back(ss);
      cr->addr_strs.push_back(ep.str());
    }
    cr->stats = cluster_stats(c.name);
    if (c.tls) {
      std::string err;
      cr->tls = tls::ClientContext::create(*c.tls, c.protocol == "http2", &err);
      if (!cr->tls) errors->push_back({c.tls->loc, "cluster '" + c.name + "' tls: " + err});
    }
    rt->clusters[c.name] = cr;
  }

  for (const auto& l : cfg->listeners) {
    ListenerRuntime lr;
    lr.cfg = &l;
    lr.stats = listener_stats(l.name);
    lr.http1 = std::find(l.protocols.begin(), l.protocols.end(), "http1") != l.protocols.end();
    lr.http2 = std::find(l.protocols.begin(), l.protocols.end(), "http2") != l.protocols.end();
    if (l.tls) {
      // Read on every build, so a reload picks up renewed certificates.
      std::string err;
      lr.tls = tls::ServerContext::create(*l.tls, l.protocols, &err);
      if (!lr.tls) errors->push_back({l.tls->loc, "listener '" + l.name + "' tls: " + err});
    }
    if (!l.tcp_proxy) {
      lr.router = router::Router::build(l, errors);
      for (size_t i = 0; i < l.routes.size(); ++i) {
        const auto& route = l.routes[i];
        stats::Labels labels{{"listener", l.name}, {"route", route.name}};
        lr.route_stats.push_back(
            {.rq_total = stats::registry().counter("route", labels, "rq_total"),
             .rq_class = class_counters("route", labels)});
        std::shared_ptr<ClusterRuntime> cluster;
        if (!route.cluster.empty()) {
          auto it = rt->clusters.find(route.cluster);
          if (it != rt->clusters.end()) cluster = it->second;
        }
        lr.route_cluster.push_back(cluster);
      }
    } else {
      auto it = rt->clusters.find(l.tcp_proxy->cluster);
      if (it != rt->clusters.end()) lr.tcp_cluster = it->second;
    }
    for (const auto& ref : l.filters) {
      if (!resolver) {
        errors->push_back({ref.loc, "module filters are not available here"});
        continue;
      }
      if (auto f = resolver->http(l, ref, errors)) lr.filters.push_back(std::move(f));
    }
    for (const auto& ref : l.network_filters) {
      if (!resolver) {
        errors->push_back({ref.loc, "module filters are not available here"});
        continue;
      }
      if (auto f = resolver->network(l, ref, errors)) lr.network_filters.push_back(std::move(f));
    }
    rt->listeners.push_back(std::move(lr));
  }

  const std::string& log_path = cfg->access_log.path;
  if (!log_path.empty()) {
    if (previous && previous->access_log && previous->access_log->path() == log_path) {
      rt->access_log = previous->access_log;
    } else {
      std::string err;
      rt->access_log = AccessLogSink::open(log_path, &err);
      if (!rt->access_log) errors->push_back(config::Error{config::Location{cfg->file, 0, 0}, err});
    }
  }
  if (!errors->empty()) return nullptr;
  return rt;
}

}  // namespace sy::server
