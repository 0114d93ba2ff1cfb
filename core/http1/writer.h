// HTTP/1.1 serialization: start lines, headers, chunk framing, and hop-by-hop header rules.
#pragma once

#include <string>
#include <string_view>

#include "core/http/headers.h"

namespace sy::http1 {

std::string_view reason_phrase(int status);

// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus every header
// the Connection header names. Removed before a message crosses the proxy.
void strip_hop_by_hop(http::HeaderMap& headers);

// Removes the trailer fields a proxy must not pass on: message framing, hop-by-hop fields,
// routing, authentication, request modifiers and content metadata (RFC 9110 §6.5.1), and the
// fields the proxy sets itself (x-forwarded-*, x-request-id). Returns how many were removed.
size_t strip_forbidden_trailers(http::HeaderMap& trailers);

void append_request_line(std::string& out, std::string_view method, std::string_view target);
void append_status_line(std::string& out, int status);
void append_headers(std::string& out, const http::HeaderMap& headers);
// "<hex>\r\n" for a chunk of LEN bytes; returns the count written into BUF (at least 20 bytes).
size_t chunk_header(char* buf, size_t len);

}  // namespace sy::http1
