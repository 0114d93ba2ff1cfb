// The ext_proc module's shared declarations: the host table, the parsed filter and per-route
// configs, and the counters (named as Envoy's ext_proc stats).
#pragma once

#include <switchyard/module.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <switchyard/json.hpp>
#include <unordered_map>
#include <utility>
#include <vector>

namespace extproc {

// Configs and metadata arrive as JSON text; the SDK's reader reads them.
namespace json = sy::sdk::json;

extern const sy_host_t* g_host;
extern sy_module_t* g_module;

inline sy_str_t S(std::string_view v) { return {v.data(), v.size()}; }
inline std::string_view V(sy_str_t s) { return {s.ptr, s.len}; }

// ProcessingMode's enums, with Envoy's numbers.
enum HeaderMode { kDefault = 0, kSend = 1, kSkip = 2 };
enum BodyMode {
  kNone = 0,
  kStreamed = 1,
  kBuffered = 2,
  kBufferedPartial = 3,
  kFullDuplex = 4,
  kGrpc = 5
};

struct Mode {
  int request_header = kDefault, response_header = kDefault;
  int request_body = kNone, response_body = kNone;
  int request_trailer = kDefault, response_trailer = kDefault;
  bool operator==(const Mode&) const = default;
};

// type.matcher.v3.StringMatcher.
struct StringMatcher {
  enum Kind { kExact, kPrefix, kSuffix, kContains, kRegex } kind = kExact;
  std::string value;
  bool ignore_case = false;
  std::optional<std::regex> re;
  bool matches(std::string_view s) const;
};

// config.common.mutation_rules.v3.HeaderMutationRules.
struct MutationRules {
  bool allow_all_routing = false, allow_envoy = false, disallow_system = false;
  bool disallow_all = false, disallow_is_error = false;
  std::optional<std::regex> allow_expression, disallow_expression;
};

// core.v3.GrpcService with envoy_grpc: the cluster is a Switchyard cluster (http2).
struct GrpcTarget {
  std::string cluster;
  std::string authority;
  std::vector<std::pair<std::string, std::string>> initial_metadata;
  uint64_t timeout_ms = 0;  // the whole side stream's deadline; 0: none
};

struct Config {
  GrpcTarget grpc;
  Mode mode;
  bool failure_mode_allow = false;
  uint64_t message_timeout_ms = 200;
  uint64_t max_message_timeout_ms = 0;
  bool observability_mode = false;
  uint64_t deferred_close_ms = 5000;  // observability_mode: how long a side stream may linger
  std::vector<std::string> request_attributes, response_attributes;
  std::vector<std::string> forwarding_namespaces, receiving_namespaces;
  std::vector<std::string> forwarding_typed;  // metadata_options.forwarding_namespaces.typed
  MutationRules rules;
  bool has_allowed_headers = false;
  std::vector<StringMatcher> allowed_headers, disallowed_headers;
  bool disable_immediate_response = false;
  bool allow_mode_override = false;
  std::vector<Mode> allowed_override_modes;
  bool send_body_without_waiting_for_header_response = false;
  uint32_t status_on_error = 500;
  bool disable_clear_route_cache = false;
  int route_cache_action = 0;  // DEFAULT, CLEAR, RETAIN
  // BUFFERED_PARTIAL's limit (Envoy uses its connection buffer limit; Switchyard names it).
  uint64_t partial_buffer_bytes = 64 * 1024;
  // This config's worker handles by worker index (on_worker_start to on_worker_stop), for the
  // side streams of observability mode, which outlive their HTTP streams (observe.h). A plain
  // map and not a thread_local: a thread_local with a destructor would keep the module from
  // being unloaded after a swap.
  struct Workers {
    std::mutex mu;
    std::unordered_map<int32_t, sy_worker_t*> by_index;
  };
  mutable Workers workers;
  // FULL_DUPLEX_STREAMED has no message timeout: the processor may hold its answers for as long
  // as it wants. This bounds a stream on which neither side moves (Envoy's connection manager
  // stream_idle_timeout, 5 minutes by default): 504 on expiry.
  uint64_t stream_idle_timeout_ms = 300 * 1000;
};

// ExtProcPerRoute.overrides ({disabled: true} alone is the host's business).
struct RouteConfig {
  std::optional<Mode> mode;
  std::optional<GrpcTarget> grpc;
  std::optional<bool> failure_mode_allow;
  std::vector<std::pair<std::string, std::string>> grpc_initial_metadata;
  // metadata_options: a route's forwarding_namespaces (untyped and typed together) and
  // receiving_namespaces replace the filter's, as in Envoy.
  std::optional<std::vector<std::string>> forwarding, forwarding_typed, receiving;
};

Config* parse_config(std::string_view json, std::string* err);
RouteConfig* parse_route_config(std::string_view json, std::string* err);

// Counters, exported as module.ext_proc.<name>.
enum Counter {
  kStreamsStarted,
  kStreamMsgsSent,
  kStreamMsgsReceived,
  kSpuriousMsgsReceived,
  kStreamsClosed,
  kStreamsFailed,
  kFailureModeAllowed,
  kMessageTimeouts,
  kRejectedHeaderMutations,
  kOverrideMessageTimeoutReceived,
  kOverrideMessageTimeoutIgnored,
  kClearRouteCacheIgnored,
  kClearRouteCacheDisabled,
  kHttpNotOkRespReceived,
  kStreamMsgsDropped,  // Switchyard's: observability mode's body messages a full side stream
                       // could not take (observe.h)
  kCounterCount
};
void count(Counter c, int64_t n = 1);
void define_counters();

}  // namespace extproc
