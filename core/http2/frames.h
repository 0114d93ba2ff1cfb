// Helpers shared by the HTTP/2 client and server codecs (both on nghttp2).
#pragma once

#include <nghttp2/nghttp2.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/http/headers.h"

namespace sy::http2 {

// Header fields that describe one HTTP/1 connection and must not appear in HTTP/2
// (RFC 9113 §8.2.2); `te` is allowed only as "trailers" and is handled by the caller.
bool connection_specific(std::string_view name);

// Name/value pairs for nghttp2, pointing into strings that outlive the submit call.
class NvList {
 public:
  void add(std::string_view name, std::string_view value);
  // Every regular header of H (pseudo-headers and connection-specific ones skipped).
  void add_regular(const http::HeaderMap& h);
  const nghttp2_nv* data() const { return nv_.data(); }
  size_t size() const { return nv_.size(); }

 private:
  std::vector<nghttp2_nv> nv_;
};

// The HTTP/2 error code's name, for logs ("PROTOCOL_ERROR").
const char* error_name(uint32_t code);

}  // namespace sy::http2
