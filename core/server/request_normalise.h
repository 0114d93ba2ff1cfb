// Request normalisation helpers of the stream: request ids, absolute-form request targets
// (RFC 9112 §3.2.2), and whether a protocol upgrade is allowed on a route.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sy::server {

// A new request id, a UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx").
std::string new_request_id();

// RFC 9112 §3.2.2: an absolute-form target, "http://authority[/path][?query]", split into
// the authority and an origin-form target. The authority ends at the first '/', '?' or '#'; an
// empty path becomes "/", so "http://h?x" is authority "h" and target "/?x". A fragment is not
// part of a request target and is dropped. False when the authority is empty or carries
// userinfo, which RFC 9110 §4.2.4 says to treat as an error (it hides the real host).
// SCHEME_LEN is what absolute_form_scheme() returned.
bool split_absolute_form(std::string_view target, size_t scheme_len, std::string* authority,
                         std::string* path);

// Length of an "http://" or "https://" prefix (the scheme is case-insensitive), or 0.
size_t absolute_form_scheme(std::string_view target);

// Envoy's rule for upgrade_configs: the route's entry for the protocol decides; without one,
// the listener's list does. The Upgrade value is compared whole and case-insensitively. R is
// null when the request matched no route.
bool upgrade_allowed(const config::Listener& l, const config::Route* r, std::string_view value);

}  // namespace sy::server
