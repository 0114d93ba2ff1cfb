// What a header name and value may hold: one rule for the config checker (matchers, direct
// responses) and for the host table (headers a module sets), so a name accepted in one place is
// never refused in the other. Here because config/ is the lowest room both reach.
#pragma once

#include <string_view>

namespace sy::config {

// An RFC 9110 token, optionally behind one ':' (a pseudo-header such as ":authority").
bool is_header_name(std::string_view name);

// No CR, LF or NUL: they would split or truncate a message on the wire.
bool is_safe_header_value(std::string_view value);

}  // namespace sy::config
