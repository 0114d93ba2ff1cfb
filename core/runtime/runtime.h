// One immutable snapshot of what the proxy runs: config, compiled routers, clusters, stats.
#pragma once

#include <sys/socket.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/filter_chain/factory.h"
#include "core/router/router.h"
#include "core/runtime/module_host.h"
#include "core/stats/stats.h"
#include "core/tls/context.h"

namespace sy::server {

// Counters by status class: index 1..5 for 1xx..5xx.
using ClassCounters = std::array<stats::Counter*, 6>;

struct ListenerStats {
  stats::Counter* cx_total;
  stats::Gauge* cx_active;
  stats::Counter* rq_total;
  ClassCounters rq_class;
  stats::Counter* bytes_rx;
  stats::Counter* bytes_tx;
  stats::Counter* rq_header_timeout;
  stats::Counter* rq_malformed;
  stats::Counter* rq_upgrade_stripped;  // Upgrade requests served as plain HTTP (not allowed)
  stats::Counter* rq_trailers_dropped;  // request trailer fields dropped (framing, routing, ...)
  stats::Histogram* rq_time;
  // Per protocol.
  stats::Counter* cx_http1;
  stats::Counter* cx_http2;
  stats::Counter* rq_http1;
  stats::Counter* rq_http2;
  // TLS.
  stats::Counter* tls_handshake;
  stats::Counter* tls_handshake_error;
  stats::Counter* tls_session_reused;
  stats::Counter* tls_no_client_cert;
  // HTTP/2 protection: each counts connections closed (or streams reset) for that reason.
  stats::Counter* h2_rapid_reset;
  stats::Counter* h2_continuation_flood;
  stats::Counter* h2_header_list_too_large;
  stats::Counter* h2_control_flood;
  stats::Counter* h2_empty_frame_flood;
  stats::Counter* h2_stream_error;
  stats::Counter* h2_refused_stream;
  stats::Counter* h2_protocol_error;
  // Streams the client reset before the proxy had dispatched them: they never reached a filter
  // or the upstream (Rapid Reset costs this connection's parsing only).
  stats::Counter* h2_reset_before_dispatch;
  // Streams reset because the client took none of the response for timeouts.response_send_idle
  // (a flow-control window left closed).
  stats::Counter* rs_send_timeout;
  // Slow and greedy clients: bodies that stopped (408), connections and requests over the
  // per-client caps (closed, 429).
  stats::Counter* rq_body_timeout;
  stats::Counter* cx_client_limit;
  stats::Counter* rq_client_limit;
};

struct RouteStats {
  stats::Counter* rq_total;
  ClassCounters rq_class;
};

struct ClusterStats {
  stats::Counter* rq_total;
  ClassCounters rq_class;
  stats::Counter* cx_total;
  stats::Gauge* cx_active;
  stats::Counter* cx_connect_fail;
  stats::Counter* cx_connect_timeout;
  stats::Counter* rq_timeout;
  stats::Counter* rq_retry;
  stats::Counter* rq_overflow;
  stats::Counter* rq_reset;
  stats::Counter* bytes_tx;
  stats::Counter* bytes_rx;
  stats::Histogram* rq_time;
  stats::Counter* tls_handshake_error;
  stats::Counter* rq_pending_timeout;  // 503s after pending_timeout in the queue
};

// Shared by every worker; a cluster whose config is unchanged keeps its object across reloads
// so workers keep its connection pools.
struct ClusterRuntime {
  config::Cluster cfg;
  std::vector<sockaddr_storage> addrs;
  std::vector<std::string> addr_strs;  // "ip:port" for logs
  ClusterStats stats;
  std::shared_ptr<tls::ClientContext> tls;  // null: plain TCP
};

struct ListenerRuntime {
  const config::Listener* cfg = nullptr;
  std::unique_ptr<router::Router> router;
  ListenerStats stats;
  std::vector<RouteStats> route_stats;                         // by route index
  std::vector<std::shared_ptr<ClusterRuntime>> route_cluster;  // by route index; null = direct
  std::shared_ptr<ClusterRuntime> tcp_cluster;
  std::shared_ptr<tls::ServerContext> tls;  // null: plain TCP
  bool http1 = true, http2 = false;         // the protocols the listener speaks
  // Module filters in request order (responses run them in reverse).
  std::vector<std::shared_ptr<filters::HttpFilterFactory>> filters;
  std::vector<std::shared_ptr<filters::NetworkFilterFactory>> network_filters;
};

// Where access log lines go: a file or stdout, closed when the last snapshot using it goes.
class AccessLogSink {
 public:
  static std::shared_ptr<AccessLogSink> open(const std::string& path, std::string* error);
  ~AccessLogSink();
  void write(const std::string& lines);
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  bool owned_ = false;
  std::string path_;
};

struct Runtime {
  std::shared_ptr<const config::Config> config;
  uint64_t version = 0;
  std::vector<ListenerRuntime> listeners;
  std::map<std::string, std::shared_ptr<ClusterRuntime>> clusters;
  std::shared_ptr<AccessLogSink> access_log;  // null when off

  const ListenerRuntime* listener(const std::string& name) const;

  // Builds a snapshot; reuses PREVIOUS's unchanged clusters and access log. Returns nullptr
  // and fills ERRORS when something the config parser could not see fails (a regex, a file).
  static std::shared_ptr<const Runtime> build(std::shared_ptr<const config::Config> cfg,
                                              const Runtime* previous,
                                              std::vector<config::Error>* errors,
                                              FilterResolver* resolver = nullptr);
};

}  // namespace sy::server
