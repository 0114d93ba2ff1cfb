// Validated, immutable configuration objects built from the YAML file.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sy::config {

// The most worker threads a proxy runs: the config refuses more, and the stream registry
// (core/filter_chain) has one slot per worker up to this.
inline constexpr uint32_t kMaxWorkers = 1024;

using Duration = std::chrono::milliseconds;

// Where a value came from, so every error and every later complaint about a value can name it.
struct Location {
  std::string file;
  int line = 0;             // 1-based
  int col = 0;              // 1-based
  std::string str() const;  // "file:line:col"
};

// host:port as written; resolved (numeric IPv4/IPv6 only, or "localhost") at parse time.
struct Address {
  std::string host;  // "0.0.0.0", "127.0.0.1", "::1"
  uint16_t port = 0;
  std::string str() const;  // "host:port" ("[::1]:80" for IPv6)
};

struct HeaderMatcher {
  std::string name;  // lower-cased
  std::optional<std::string> exact;
  std::optional<std::string> prefix;
  std::optional<std::string> regex;  // RE2 syntax, full match
  bool present = false;              // true when only presence is required
  bool invert = false;
};

struct RouteMatch {
  // Exactly one of prefix / path / regex, matched against the path without its query string.
  std::optional<std::string> prefix;
  std::optional<std::string> path;
  std::optional<std::string> regex;  // RE2 syntax, full match
  // Host (the :authority / Host header without port); "*.example.com" matches any subdomain.
  std::vector<std::string> hosts;
  std::vector<HeaderMatcher> headers;
};

struct HeaderValue {
  std::string name;
  std::string value;
};

struct DirectResponse {
  int status = 200;
  std::string body;
  std::vector<HeaderValue> headers;
};

// One entry of `upgrade_configs` (Envoy's name): may a request switch to UPGRADE_TYPE (the
// Upgrade header's value, such as websocket) on this listener or route?
struct UpgradeConfig {
  std::string upgrade_type;  // lower-cased
  bool enabled = true;
  Location loc;
};

struct Route {
  std::string name;  // for stats; defaults to "route<N>" (0-based index in its listener)
  RouteMatch match;
  std::string cluster;                   // set unless direct_response
  std::optional<DirectResponse> direct;  // set unless cluster
  std::optional<Duration> timeout;       // overrides the cluster's timeout
  // per_filter: filter name -> its per-route config: the JSON text for the module's
  // on_route_config_create, or disabled (`{disabled: true}`, which the host applies itself).
  struct PerFilter {
    std::string json;
    bool disabled = false;
  };
  std::map<std::string, PerFilter> per_filter;
  // Overrides the listener's upgrade_configs type by type (an entry here decides for its type).
  std::vector<UpgradeConfig> upgrade_configs;
  // metadata: namespace -> a JSON object (Envoy's filter_metadata), for modules to read.
  std::map<std::string, std::string> metadata;
  Location loc;
};

struct FilterRef {
  std::string module;
  std::string filter;       // factory name inside the module; empty = the module's default
  std::string config_json;  // the `config:` block converted to JSON ("{}" when absent)
  Location loc;
};

struct TlsCertificate {
  std::string certificate;  // PEM chain, leaf first
  std::string private_key;
  Location loc;
};

struct Tls {
  // Listeners: one or more certificates; the first is the default, the others are chosen by the
  // client's SNI against their names. Clusters: an optional client certificate (mTLS).
  std::vector<TlsCertificate> certificates;
  std::string ca;  // verify peers against this bundle (clusters; listeners when set = mTLS)
  bool client_certificate_required = true;  // listeners with ca: required or optional
  std::string min_version = "1.2";          // "1.2" or "1.3"
  std::string ciphers;                      // TLS 1.2 cipher list; empty = our default
  std::string sni;                          // clusters: SNI to send
  bool verify = true;                       // clusters: verify the server's certificate
  Location loc;
};

// HTTP/2 settings and the limits that protect a listener against abusive peers.
struct Rate {
  uint32_t count;
  Duration window;
};
struct Http2Settings {
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_stream_window = 256 * 1024;
  uint32_t initial_connection_window = 1024 * 1024;
  uint32_t max_header_list_size = 0;  // 0: the listener's limits.header_bytes
  uint32_t max_continuation_frames = 8;
  Rate max_resets{200, Duration{10'000}};           // client RST_STREAMs (Rapid Reset)
  Rate max_control_frames{1000, Duration{10'000}};  // PING, SETTINGS, PRIORITY received
  uint32_t max_empty_frames = 10;  // consecutive DATA/HEADERS frames carrying nothing
};

struct ListenerLimits {
  uint32_t header_bytes = 64 * 1024;  // request line + headers; over -> 431 (414 for the URL)
  uint32_t headers = 100;             // header count; over -> 431
  uint64_t request_body = 0;          // 0 = unlimited; over -> 413
  uint64_t buffered_body = 1 << 20;   // what filters may buffer; over -> 413 / 500
  // Per client address and per worker (the unit the cluster pools are counted in), so that one
  // address cannot take a whole pool. 0 = no cap. Over: the connection is closed at accept, the
  // request answered 429.
  uint32_t connections_per_client = 1024;
  uint32_t streams_per_client = 512;
};

struct ListenerTimeouts {
  Duration request_headers{10'000};  // first byte of a request to end of its headers
  Duration idle{60'000};             // a connection with no stream in flight
  // The longest pause in a request body while the proxy is reading it; over -> 408 (or a
  // reset once the response started).
  Duration request_body_idle{10'000};
  // The longest an HTTP/2 response waits with bytes to send while the client takes none of
  // them (its flow-control window stays closed, or it stops reading); over -> the stream is
  // reset. Envoy's stream_idle_timeout covers the same wait.
  Duration response_send_idle{60'000};
  Duration drain{30'000};  // how long SIGTERM / POST /drain waits for streams
};

struct TcpProxy {
  std::string cluster;
};

struct Listener {
  std::string name;
  Address address;
  std::vector<std::string> protocols{"http1"};
  std::optional<Tls> tls;
  Http2Settings http2;
  std::vector<FilterRef> filters;
  std::vector<Route> routes;
  std::optional<TcpProxy> tcp_proxy;
  std::vector<FilterRef> network_filters;
  ListenerLimits limits;
  ListenerTimeouts timeouts;
  // Upgrades the listener lets through; any other Upgrade is stripped and the request served
  // as plain HTTP/1.1. WebSocket by default; h2c never (it is hop-by-hop).
  std::vector<UpgradeConfig> upgrade_configs{{"websocket", true, {}}};
  // metadata: namespace -> a JSON object (Envoy's filter_metadata), for modules to read.
  std::map<std::string, std::string> metadata;
  Location loc;
};

struct Cluster {
  std::string name;
  std::vector<Address> endpoints;
  std::string protocol = "http1";
  std::optional<Tls> tls;
  Duration connect_timeout{5'000};  // above TCP's 1 s SYN retransmit: one lost SYN is not a 502
  Duration timeout{15'000};         // request sent -> response headers received; over -> 504
  uint32_t max_connections = 1024;  // per worker; requests beyond wait in a queue
  uint32_t max_pending = 1024;      // per worker; beyond -> 503
  Duration pending_timeout{5'000};  // a request waiting in that queue; over -> 503 (UO)
  uint32_t connect_retries = 1;     // another endpoint after a connect failure
  Duration idle_timeout{60'000};    // pooled keep-alive connection
  // metadata: namespace -> a JSON object (Envoy's filter_metadata), for modules to read.
  std::map<std::string, std::string> metadata;
  Location loc;
};

struct Module {
  std::string name;
  std::string path;
  std::string sha256;
  bool watch = false;
  std::string config_json = "{}";  // its `config:` block, for the module (ABI 1.2 module_config)
  Location loc;
};

struct Admin {
  Address address{"127.0.0.1", 9901};
};

// An extra member of every access-log line, from what the stream's filters left behind.
struct AccessLogField {
  enum class Source { kDynamicMetadata, kFilterState };
  std::string name;  // the member's name in the line
  Source source;
  std::string key;  // "ns:key" or "ns" (dynamic metadata), or the filter-state key
  Location loc;
};

struct AccessLog {
  std::string path;  // "" = off, "-" or "stdout" = standard output, else a file (appended)
  std::vector<AccessLogField> fields;
};

// What a start (or a reload) does with a module file whose sha256 has a crash record.
enum class OnModuleCrash {
  kPrevious,  // load the previous good generation of the module instead, and say so loudly
  kRefuse,    // fail the config, naming the module, the sha256, the callback and the fix
};

// Process-wide caps that turn overload into refusals instead of an OOM kill. 0 = derived at
// start: connections from the open-file limit, bytes from the machine's memory (see
// docs/config.md).
struct Overload {
  uint32_t max_downstream_connections = 0;
  uint64_t max_buffered_bytes = 0;
};

// Who this proxy is, as Envoy's bootstrap `node:` says it: modules read it as the attributes
// node.id and node.cluster (Proxy-Wasm's `node` property). Empty: not configured.
struct Node {
  std::string id;
  std::string cluster;
};

struct Config {
  std::string file;  // the file it was read from
  Admin admin;
  uint32_t workers = 0;  // 0 = number of cores, at most kMaxWorkers
  std::vector<std::string> module_path;
  std::vector<Module> modules;
  // Run each module's entry and on_load in a child process before loading it at start, as is
  // always done before loading one into the running proxy (swap, watch, reload).
  bool module_preflight_at_start = true;
  // Where the loader keeps what outlives a process: crash records, copies of good module
  // generations, and the private copies it loads ("" = the default, see docs/config.md).
  std::string state_dir;
  OnModuleCrash on_module_crash = OnModuleCrash::kPrevious;
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters;
  AccessLog access_log;
  Overload overload;
  Node node;
  std::string yaml;  // the text it was parsed from, for /config_dump

  const Cluster* find_cluster(std::string_view name) const;
};

// One problem with the file, always with a location.
struct Error {
  Location loc;
  std::string message;      // what was wrong and what was expected
  std::string str() const;  // "file:line:col: message"
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // set iff errors is empty
  std::vector<Error> errors;             // every error found, in file order
};

// Reads and validates FILE. Never throws. Relative paths inside the config (certificates,
// module paths, access log) are kept as written; main resolves them against the cwd.
LoadResult load_file(const std::string& file);
// Same, from text (FILE is only used for locations).
LoadResult load_string(const std::string& text, const std::string& file);

}  // namespace sy::config
