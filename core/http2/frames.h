// Helpers shared by the HTTP/2 client and server codecs (both on nghttp2).
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstring>
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
  // Room for N pairs, made once instead of the list growing pair by pair.
  void reserve(size_t n) { nv_.reserve(n); }
  // Every regular header of H (pseudo-headers and connection-specific ones skipped).
  void add_regular(const http::HeaderMap& h);
  const nghttp2_nv* data() const { return nv_.data(); }
  size_t size() const { return nv_.size(); }

 private:
  std::vector<nghttp2_nv> nv_;
};

// Follows frame boundaries in the bytes a peer sends, ahead of nghttp2, so limits can see every
// frame header: nghttp2 skips its callbacks for frames it ignores (DATA on a closed stream, for
// one), and a flood of exactly those must still be seen.
class FrameScanner {
 public:
  struct Header {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    int32_t stream_id;
  };
  // SKIP: bytes before the first frame (the 24-byte client preface on a server).
  explicit FrameScanner(size_t skip) : skip_(skip) {}
  // Calls FN for each frame header completed in DATA; stops early when FN returns false.
  template <typename Fn>
  bool scan(const uint8_t* p, size_t n, Fn&& fn) {
    while (n > 0) {
      if (skip_ > 0) {
        size_t k = skip_ < n ? skip_ : n;
        skip_ -= k;
        p += k;
        n -= k;
        continue;
      }
      size_t k = 9 - have_ < n ? 9 - have_ : n;
      std::memcpy(hdr_ + have_, p, k);
      have_ += k;
      p += k;
      n -= k;
      if (have_ < 9) break;
      have_ = 0;
      Header h{uint32_t(hdr_[0]) << 16 | uint32_t(hdr_[1]) << 8 | hdr_[2], hdr_[3], hdr_[4],
               int32_t((uint32_t(hdr_[5]) << 24 | uint32_t(hdr_[6]) << 16 | uint32_t(hdr_[7]) << 8 |
                        hdr_[8]) &
                       0x7fffffff)};
      skip_ = h.length;
      if (!fn(h)) return false;
    }
    return true;
  }

 private:
  size_t skip_;
  uint8_t hdr_[9];
  size_t have_ = 0;
};

// The HTTP/2 error code's name, for logs ("PROTOCOL_ERROR").
const char* error_name(uint32_t code);

}  // namespace sy::http2
