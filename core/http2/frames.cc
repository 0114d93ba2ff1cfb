// HTTP/2 helpers.
#include "core/http2/frames.h"

namespace sy::http2 {

bool connection_specific(std::string_view n) {
  return n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
         n == "transfer-encoding" || n == "upgrade" || n == "host";
}

void NvList::add(std::string_view name, std::string_view value) {
  // nghttp2 copies nothing when told not to; the strings live in the caller's header maps,
  // which outlive the submit call (nghttp2 deflates the block inside it).
  nv_.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                 reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                 value.size(), NGHTTP2_NV_FLAG_NONE});
}

void NvList::add_regular(const http::HeaderMap& h) {
  for (const auto& x : h) {
    if (x.name.empty() || x.name[0] == ':' || connection_specific(x.name)) continue;
    if (x.name == "te" && !http::iequals(x.value, "trailers")) continue;
    add(x.name, x.value);
  }
}

const char* error_name(uint32_t code) {
  switch (code) {
    case NGHTTP2_NO_ERROR:
      return "NO_ERROR";
    case NGHTTP2_PROTOCOL_ERROR:
      return "PROTOCOL_ERROR";
    case NGHTTP2_INTERNAL_ERROR:
      return "INTERNAL_ERROR";
    case NGHTTP2_FLOW_CONTROL_ERROR:
      return "FLOW_CONTROL_ERROR";
    case NGHTTP2_SETTINGS_TIMEOUT:
      return "SETTINGS_TIMEOUT";
    case NGHTTP2_STREAM_CLOSED:
      return "STREAM_CLOSED";
    case NGHTTP2_FRAME_SIZE_ERROR:
      return "FRAME_SIZE_ERROR";
    case NGHTTP2_REFUSED_STREAM:
      return "REFUSED_STREAM";
    case NGHTTP2_CANCEL:
      return "CANCEL";
    case NGHTTP2_COMPRESSION_ERROR:
      return "COMPRESSION_ERROR";
    case NGHTTP2_CONNECT_ERROR:
      return "CONNECT_ERROR";
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return "ENHANCE_YOUR_CALM";
    case NGHTTP2_INADEQUATE_SECURITY:
      return "INADEQUATE_SECURITY";
    case NGHTTP2_HTTP_1_1_REQUIRED:
      return "HTTP_1_1_REQUIRED";
  }
  return "UNKNOWN";
}

}  // namespace sy::http2
