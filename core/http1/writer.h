// HTTP/1.1 serialization: start lines, headers, chunk framing, and hop-by-hop header rules.
#pragma once

#include <uv.h>

#include <cstdint>
#include <cstring>
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
// "NAME: VALUE\r\n", with one size check and two copies (appending the four pieces checked
// the capacity four times and copied ": " and "\r\n" with calls of their own): every header
// of every message the proxy writes goes through it.
void append_field(std::string& out, std::string_view name, std::string_view value);
// Copies N bytes of S to P, where sizeof(Word) <= N <= 2 * sizeof(Word): two overlapping
// loads and stores of a Word, with no call.
template <typename Word>
inline void put_overlapping(char* p, const char* s, size_t n) {
  Word head, tail;
  std::memcpy(&head, s, sizeof head);
  std::memcpy(&tail, s + n - sizeof tail, sizeof tail);
  std::memcpy(p, &head, sizeof head);
  std::memcpy(p + n - sizeof tail, &tail, sizeof tail);
}
// Copies N bytes of S to P, the short ones (most header names and many values) without a call
// to memcpy.
inline char* put_bytes(char* p, const char* s, size_t n) {
  if (n > 16)
    std::memcpy(p, s, n);
  else if (n >= 8)
    put_overlapping<uint64_t>(p, s, n);
  else if (n >= 4)
    put_overlapping<uint32_t>(p, s, n);
  else
    for (size_t i = 0; i < n; ++i) p[i] = s[i];
  return p + n;
}
// "NAME: VALUE\r\n" written at P, which has room for it (name, value and 4 bytes); returns
// the end. For a writer that makes room for a whole header block at once: no size check, no
// zero-fill per field.
inline char* put_field(char* p, std::string_view name, std::string_view value) {
  p = put_bytes(p, name.data(), name.size());
  *p++ = ':';
  *p++ = ' ';
  p = put_bytes(p, value.data(), value.size());
  *p++ = '\r';
  *p++ = '\n';
  return p;
}
// One piece of a body as it goes on the wire: as it is, or framed as a chunk. The sender
// writes bufs[0..count) in one write; they point into DATA and into the piece itself.
struct BodyPiece {
  uv_buf_t bufs[3];
  unsigned count = 0;
  char head[24];
};
void frame_body(BodyPiece& out, const char* data, size_t len, bool chunked);

// The end of a chunked body: the last chunk, TRAILERS (may be null) and the blank line.
std::string last_chunk(const http::HeaderMap* trailers);

}  // namespace sy::http1
