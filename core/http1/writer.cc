// HTTP/1.1 serialization helpers.
#include "core/http1/writer.h"

#include <cstdio>
#include <cstring>
#include <string_view>

namespace sy::http1 {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 412:
      return "Precondition Failed";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 418:
      return "I'm a teapot";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 425:
      return "Too Early";
    case 428:
      return "Precondition Required";
    case 451:
      return "Unavailable For Legal Reasons";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 507:
      return "Insufficient Storage";
    case 511:
      return "Network Authentication Required";
    default:
      return "Unknown";
  }
}

void strip_hop_by_hop(http::HeaderMap& headers) {
  // Names listed in Connection go first, while the Connection header still exists.
  std::vector<std::string> named;
  for (const auto& h : headers) {
    if (h.name != "connection") continue;
    http::for_each_token(h.value, [&](std::string_view item) {
      named.push_back(http::to_lower(item));
      return false;
    });
  }
  // Views, not C strings: a name of another length is passed over without a strlen or a
  // compare, and this runs on every request and every response.
  static constexpr std::string_view kHopByHop[] = {
      "connection", "keep-alive", "proxy-connection", "transfer-encoding",
      "te",         "upgrade",    "trailer",          "http2-settings"};
  headers.erase_if([&](const http::Header& h) {
    for (std::string_view n : kHopByHop)
      if (h.name == n) return true;
    for (const auto& n : named)
      if (h.name == n) return true;
    return false;
  });
}

size_t strip_forbidden_trailers(http::HeaderMap& trailers) {
  // RFC 9110 §6.5.1: fields needed before the content is read cannot be acted on in a trailer
  // section, and a recipient that merged them into the header section would let a client
  // rewrite a request after it was routed. Grouped as the RFC groups them.
  static const char* kForbidden[] = {
      // Message framing and connection management (hop-by-hop).
      "content-length", "transfer-encoding", "trailer", "te", "connection", "keep-alive",
      "proxy-connection", "upgrade", "http2-settings",
      // Routing.
      "host",
      // Authentication, and the cookie that usually stands in for it.
      "authorization", "proxy-authorization", "cookie",
      // Request modifiers: controls, conditionals, range and content negotiation.
      "expect", "max-forwards", "cache-control", "pragma", "if-match", "if-none-match",
      "if-modified-since", "if-unmodified-since", "if-range", "range", "accept", "accept-charset",
      "accept-encoding", "accept-language",
      // How the content is to be processed.
      "content-type", "content-encoding", "content-language", "content-location", "content-range",
      // Fields the proxy itself writes into the request head.
      "x-forwarded-for", "x-forwarded-proto", "x-request-id", "forwarded"};
  return trailers.erase_if([](const http::Header& h) {
    if (!h.name.empty() && h.name[0] == ':') return true;  // pseudo-headers: never in trailers
    for (const char* n : kForbidden)
      if (h.name == n) return true;
    return false;
  });
}

void append_request_line(std::string& out, std::string_view method, std::string_view target) {
  out.append(method).push_back(' ');
  out.append(target).append(" HTTP/1.1\r\n");
}

void append_status_line(std::string& out, int status) {
  char buf[16];
  snprintf(buf, sizeof buf, "%03d ", status);
  out.append("HTTP/1.1 ").append(buf).append(reason_phrase(status)).append("\r\n");
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  put_field(out.data() + at, name, value);
}

void append_headers(std::string& out, const http::HeaderMap& headers) {
  for (const auto& h : headers) append_field(out, h.name, h.value);
}

void frame_body(BodyPiece& out, const char* data, size_t len, bool chunked) {
  char* body = const_cast<char*>(data);  // uv_buf_t is not const; nothing writes through it
  if (!chunked) {
    out.bufs[0] = uv_buf_init(body, unsigned(len));
    out.count = 1;
    return;
  }
  size_t n = size_t(snprintf(out.head, sizeof out.head, "%zx\r\n", len));
  out.bufs[0] = uv_buf_init(out.head, unsigned(n));
  out.bufs[1] = uv_buf_init(body, unsigned(len));
  out.bufs[2] = uv_buf_init(const_cast<char*>("\r\n"), 2);
  out.count = 3;
}

std::string last_chunk(const http::HeaderMap* trailers) {
  std::string last = "0\r\n";
  if (trailers) append_headers(last, *trailers);
  last += "\r\n";
  return last;
}

}  // namespace sy::http1
