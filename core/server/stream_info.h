// What is known about one stream as it runs: the request as routed, the response's outcome and
// the byte counts. The attribute table and the access log read it; the Stream writes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/log/response_flag.h"
#include "core/server/stream_owner.h"

namespace sy::server {

struct StreamInfo {
  // The request, as filters last left its pseudo-headers.
  std::string method, path, authority, request_id;
  std::string_view protocol;  // "HTTP/1.0", "HTTP/1.1" or "HTTP/2"
  // The response: its status (0 before one), why it ended so, and in more words.
  int status = 0;
  log::ResponseFlag flag = log::ResponseFlag::kNone;
  std::string details;
  uint64_t bytes_in = 0, bytes_out = 0;  // body bytes from the client, to the client
  std::string upstream_host;             // the endpoint that served it; empty when none did
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::chrono::system_clock::time_point start_wall = std::chrono::system_clock::now();

  // Sets FLAG unless the stream already has one: the first cause is the one reported.
  void flag_once(log::ResponseFlag f) {
    if (flag == log::ResponseFlag::kNone) flag = f;
  }
};

// Where an attribute is read from: the stream, its connection and listener, and what it was
// routed to.
struct AttributeSource {
  const StreamInfo& info;
  const ConnInfo& conn;
  const config::Listener& listener;
  const std::string& route_name;    // empty when no route matched
  const std::string* cluster_name;  // null when the stream has no cluster
};

// The attribute at PATH (sy_host_t attribute_get, e.g. "request.path"), in *OUT. False when
// PATH names no attribute or this stream has no value for it (a plain connection's TLS facts).
bool read_attribute(const AttributeSource& src, std::string_view path, std::string* out);
// node.id and node.cluster from the config's `node:` (since ABI 1.2), for streams and TCP
// proxy connections alike. False for other paths, and for a field the config leaves empty.
bool node_attribute(const config::Node& node, std::string_view path, std::string* out);

}  // namespace sy::server
