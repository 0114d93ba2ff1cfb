// Header and query-string changes an OK answer asks for.
#pragma once

#include <switchyard/module.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decision.h"

namespace ext_authz {

// Applies OP to the header block KIND of S; true when the block changed.
bool apply_header(sy_stream_t* s, sy_header_kind_t kind, const HeaderOp& op);

// PATH with the query parameters in SET set (replacing every earlier value of the key, else
// appended) and the keys in REMOVE removed. Keys are compared as written (not decoded).
std::string rewrite_query(std::string_view path,
                          const std::vector<std::pair<std::string, std::string>>& set,
                          const std::vector<std::string>& remove);

}  // namespace ext_authz
