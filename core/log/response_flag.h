// Why a stream ended as it did, beyond its status: Envoy's response flags, one per stream.
// Code decides on the enum; the two-letter text exists only for the access log and the
// response.flags attribute.
#pragma once

#include <cstdint>
#include <string_view>

namespace sy::log {

enum class ResponseFlag : uint8_t {
  kNone,                    // "-"
  kDownstreamReset,         // "DC": the client went away before the response ended
  kLocalReply,              // "LR": the proxy or a filter answered
  kNoRoute,                 // "NR": no route matched
  kUpstreamTimeout,         // "UT": the upstream did not answer in time
  kUpstreamConnectFailure,  // "UF": no connection to the upstream could be made
  kUpstreamOverflow,        // "UO": the pool's circuit breaking refused the request
  kUpstreamReset,           // "UR": the upstream reset the exchange
  kFilterReset,             // "FR": a filter reset the stream
  kOverload,                // "OL": the process-wide overload cap refused the stream
  kRateLimited,             // "RL": the client's streams_per_client limit (or a filter) refused it
  // Set by filters only (host set_response_flag, ABI 1.2).
  kUnauthorizedExternal,   // "UAEX": an external authorization service refused the request
  kRateLimitServiceError,  // "RLSE": a rate-limit service could not be asked
  kFaultAbort,             // "FI": a fault filter answered instead of the upstream
  kFaultDelay,             // "DI": a fault filter delayed the request
};

// The flag as the access log writes it: "-" for none.
const char* flag_text(ResponseFlag f);

// The flag a filter names with set_response_flag ("UAEX", "RLSE", "RL", "FI", "DI"), or kNone
// for any other text: a filter may not claim the proxy's own causes (no route, upstream
// timeout, ...).
ResponseFlag filter_flag(std::string_view text);

}  // namespace sy::log
