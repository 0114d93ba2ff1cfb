// What the authorization server decided, in one form for both transports: the gRPC
// CheckResponse and the HTTP server's answer are both turned into a Decision, which the
// filter then applies to the stream.
#pragma once

#include <switchyard/module.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.h"

namespace ext_authz {

// One header mutation. The actions are HeaderValueOption's: `append` (when given) wins over
// append_action, and neither given means overwrite (reference §1.7).
struct HeaderOp {
  enum Action {
    kSet,                // replace every value (append=false, OVERWRITE_IF_EXISTS_OR_ADD)
    kAppend,             // comma-join onto an existing value, else add (gRPC append=true)
    kAdd,                // another entry (HTTP mode's _to_append, response headers append=true)
    kAddIfAbsent,        // ADD_IF_ABSENT
    kOverwriteIfExists,  // OVERWRITE_IF_EXISTS
  };
  std::string name, value;
  Action action = kSet;
};

struct Decision {
  enum Kind { kOk, kDenied, kError } kind = kError;
  // kDenied / kError: the local reply (status 0 means the default: 403 / status_on_error).
  uint32_t status = 0;
  std::vector<std::pair<std::string, std::string>> reply_headers;
  std::string body;
  // kOk: changes to the upstream request and, later, to the downstream response.
  std::vector<HeaderOp> request_headers;
  std::vector<std::string> headers_to_remove;
  std::vector<HeaderOp> response_headers;
  std::vector<std::pair<std::string, std::string>> query_set;
  std::vector<std::string> query_remove;
  // Dynamic metadata for envoy.filters.http.ext_authz: one JSON object, empty when the answer
  // has none.
  std::string metadata;
  // validate_mutations found a header or query parameter it refuses.
  bool invalid = false;
  // Why, for the debug log (transport failures, malformed answers).
  std::string why;
};

// A decision for a transport failure (connect, reset, timeout, malformed answer).
Decision error_decision(std::string why);
// The CheckResponse in MESSAGE (serialized), as Envoy's gRPC client reads it.
Decision from_check_response(const Config& cfg, std::string_view message);
// An HTTP server's answer, as Envoy's HTTP client reads it.
Decision from_http_response(const Config& cfg, uint32_t status, const sy_header_t* headers,
                            size_t count, std::string body);

// RFC 7230 token (header name) and field-value checks for validate_mutations.
bool valid_header_name(std::string_view name);
bool valid_header_value(std::string_view value);

}  // namespace ext_authz
