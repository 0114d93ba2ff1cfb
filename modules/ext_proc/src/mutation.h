// Header mutations from the processor (HeaderMutation), checked against Envoy's mutation rules.
#pragma once

#include <envoy/service/ext_proc/v3/external_processor.pb.h>

#include <string>

#include "ext_proc.h"

namespace extproc {

namespace pb = envoy::service::ext_proc::v3;

struct MutationOutcome {
  bool error = false;    // the call fails (500, or a reset once the response started)
  std::string why;       // for the log and the access log's details
  int rejected = 0;      // mutations the rules refused (rejected_header_mutations)
  bool changed = false;  // something was set or removed (clear_route_cache needs it)
};

// Applies M to the block KIND of stream S. REPLACING: a CONTINUE_AND_REPLACE response, which
// may also change :method.
MutationOutcome apply_mutation(sy_stream_t* s, sy_header_kind_t kind, const pb::HeaderMutation& m,
                               const MutationRules& rules, bool replacing);

// The headers of an immediate response: disallowed or invalid ones are dropped, never fatal.
void immediate_headers(const pb::HeaderMutation& m, const MutationRules& rules,
                       std::vector<std::pair<std::string, std::string>>* out, int* rejected);

}  // namespace extproc
