// The filter's config, with the field names of Envoy's
// envoy.extensions.filters.http.ext_authz.v3.ExtAuthz, so the typed_config body of an Envoy
// config can be pasted under `config:` ("@type" keys are accepted and ignored). Also the
// per-route config (ExtAuthzPerRoute).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host.h"

namespace ext_authz {

// Envoy's type.matcher.v3.StringMatcher (exact, prefix, suffix, contains, safe_regex;
// ignore_case). safe_regex is ECMAScript here, not RE2: the common subset behaves alike.
struct StringMatcher {
  enum Kind { kExact, kPrefix, kSuffix, kContains, kRegex } kind = kExact;
  std::string value;
  bool ignore_case = false;
  std::regex regex;
  bool match(std::string_view s) const;
};

// Envoy's ListStringMatcher. SET says whether the config gave one at all (an absent list and
// an empty one differ for allowed_client_headers).
struct ListMatcher {
  bool set = false;
  std::vector<StringMatcher> patterns;
  bool match(std::string_view s) const;
};

struct BufferSettings {
  bool enabled = false;
  uint32_t max_request_bytes = 0;
  bool allow_partial_message = false;
  bool pack_as_bytes = false;
};

// Envoy's FractionalPercent: NUMERATOR in DENOMINATOR (100, 10 000 or 1 000 000). A numerator
// over the denominator means every stream.
struct Fraction {
  uint32_t numerator = 100;
  uint32_t denominator = 100;
};

// The metric ids of one stat_prefix (Envoy: ext_authz.<stat_prefix>.<name>).
struct Metrics {
  uint32_t ok = 0, denied = 0, error = 0, failure_mode_allowed = 0, disabled = 0, invalid = 0;
};

struct Config {
  enum Mode { kGrpc, kHttp } mode = kGrpc;
  // The Switchyard cluster the check goes to: grpc_service.envoy_grpc.cluster_name or
  // http_service.server_uri.cluster.
  std::string cluster;
  // gRPC: envoy_grpc.authority (default: the cluster name). HTTP: the host of server_uri.uri.
  std::string authority;
  uint64_t timeout_ms = 200;

  // HTTP mode.
  std::string path_prefix;
  std::vector<std::pair<std::string, std::string>> headers_to_add;
  ListMatcher allowed_upstream_headers, allowed_upstream_headers_to_append;
  ListMatcher allowed_client_headers, allowed_client_headers_on_success;

  bool failure_mode_allow = false;
  bool failure_mode_allow_header_add = false;
  uint32_t status_on_error = 403;
  BufferSettings with_request_body;
  bool clear_route_cache = false;
  bool validate_mutations = false;
  bool include_peer_certificate = false;
  bool include_tls_session = false;
  bool encode_raw_headers = false;
  ListMatcher allowed_headers, disallowed_headers;
  // Namespaces of the stream's dynamic metadata, and of its route's `metadata:` block, sent in
  // metadata_context and route_metadata_context.
  std::vector<std::string> metadata_context_namespaces;
  std::vector<std::string> route_metadata_context_namespaces;
  std::string stat_prefix;
  uint32_t max_denied_response_body_bytes = 0;
  bool enable_dynamic_metadata_ingestion = true;
  // filter_enabled's default_value (its runtime_key is ignored: there is no runtime layer) and
  // deny_at_disable's: the share of streams that are checked, and whether the others are
  // refused (status_on_error) instead of let through.
  Fraction filter_enabled;
  bool deny_at_disable = false;
  Metrics metrics;

  // Whether a request header goes to the server (allowed_headers / disallowed_headers; in HTTP
  // mode also the headers Envoy always sends).
  bool forwards(std::string_view name) const;
};

struct RouteConfig {
  bool disabled = false;
  std::map<std::string, std::string> context_extensions;
  bool disable_request_body_buffering = false;
};

// Both return nullopt and set ERR (a message naming the field) on a bad config.
std::optional<Config> parse_config(std::string_view json, std::string* err);
std::optional<RouteConfig> parse_route_config(std::string_view json, std::string* err);

// A google.protobuf.Duration in JSON ("0.25s", "1.5s", or {seconds, nanos}), in milliseconds.
std::optional<uint64_t> parse_duration_ms(const json::Value& v);

}  // namespace ext_authz
