// The attribute table: what a filter reads from a stream (sy_host_t attribute_get), one path
// to one fact. A table rather than a chain of string compares, so a lookup is one hash and the
// list of attributes is in one place (docs/abi.md lists the same paths).
#include <chrono>
#include <unordered_map>

#include "core/server/stream_info.h"

namespace sy::server {
namespace {

using Reader = bool (*)(const AttributeSource&, std::string*);

template <typename Clock>
std::string ms_of(std::chrono::time_point<Clock> tp) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count());
}

bool set(std::string* out, std::string_view v) {
  out->assign(v);
  return true;
}

// TLS facts exist only on a TLS connection, and certificate facts only with a client
// certificate: without them the attribute is absent, not empty.
const std::unordered_map<std::string_view, Reader>& table() {
  static const std::unordered_map<std::string_view, Reader> t = {
      {"request.path",
       [](const AttributeSource& s, std::string* o) { return set(o, s.info.path); }},
      {"request.url_path",
       [](const AttributeSource& s, std::string* o) {
         return set(o, std::string_view(s.info.path).substr(0, s.info.path.find('?')));
       }},
      {"request.method",
       [](const AttributeSource& s, std::string* o) { return set(o, s.info.method); }},
      {"request.host",
       [](const AttributeSource& s, std::string* o) { return set(o, s.info.authority); }},
      {"request.scheme", [](const AttributeSource& s,
                            std::string* o) { return set(o, s.listener.tls ? "https" : "http"); }},
      {"request.protocol",
       [](const AttributeSource& s, std::string* o) { return set(o, s.info.protocol); }},
      {"request.id",
       [](const AttributeSource& s, std::string* o) { return set(o, s.info.request_id); }},
      {"request.time",
       [](const AttributeSource& s, std::string* o) { return set(o, ms_of(s.info.start_wall)); }},
      {"request.duration",
       [](const AttributeSource& s, std::string* o) {
         return set(o, std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - s.info.start)
                                          .count()));
       }},
      {"request.size", [](const AttributeSource& s,
                          std::string* o) { return set(o, std::to_string(s.info.bytes_in)); }},
      {"source.address",
       [](const AttributeSource& s, std::string* o) { return set(o, s.conn.peer_ip); }},
      {"source.port", [](const AttributeSource& s,
                         std::string* o) { return set(o, std::to_string(s.conn.peer_port)); }},
      {"connection.id",
       [](const AttributeSource& s, std::string* o) { return set(o, std::to_string(s.conn.id)); }},
      {"connection.mtls",
       [](const AttributeSource& s, std::string* o) {
         return set(o, s.conn.peer_cert.empty() ? "false" : "true");
       }},
      {"destination.address",
       [](const AttributeSource& s, std::string* o) { return set(o, s.listener.address.str()); }},
      {"destination.port",
       [](const AttributeSource& s, std::string* o) {
         return set(o, std::to_string(s.listener.address.port));
       }},
      {"response.code",
       [](const AttributeSource& s, std::string* o) {
         return s.info.status != 0 && set(o, std::to_string(s.info.status));
       }},
      {"response.flags", [](const AttributeSource& s,
                            std::string* o) { return set(o, log::flag_text(s.info.flag)); }},
      {"response.code_details",
       [](const AttributeSource& s, std::string* o) { return set(o, s.info.details); }},
      {"response.size", [](const AttributeSource& s,
                           std::string* o) { return set(o, std::to_string(s.info.bytes_out)); }},
      {"upstream.address",
       [](const AttributeSource& s, std::string* o) {
         return !s.info.upstream_host.empty() && set(o, s.info.upstream_host);
       }},
      {"xds.route_name",
       [](const AttributeSource& s, std::string* o) { return set(o, s.route_name); }},
      {"xds.cluster_name",
       [](const AttributeSource& s, std::string* o) {
         return s.cluster_name && set(o, *s.cluster_name);
       }},
      {"xds.listener_name",
       [](const AttributeSource& s, std::string* o) { return set(o, s.listener.name); }},
      // The listener's limits.headers: the most header lines a block may have. ext_proc refuses
      // a mutation with more entries than this before applying it, as Envoy does with its
      // connection manager's header count limit.
      {"listener.limits.headers",
       [](const AttributeSource& s, std::string* o) {
         return set(o, std::to_string(s.listener.limits.headers));
       }},
      {"connection.tls_version",
       [](const AttributeSource& s, std::string* o) {
         return s.conn.tls && set(o, s.conn.tls_version);
       }},
      {"connection.requested_server_name",
       [](const AttributeSource& s, std::string* o) { return s.conn.tls && set(o, s.conn.sni); }},
      {"connection.peer_certificate",
       [](const AttributeSource& s, std::string* o) {
         return !s.conn.peer_cert.empty() && set(o, s.conn.peer_cert);
       }},
      {"connection.subject_peer_certificate",
       [](const AttributeSource& s, std::string* o) {
         return !s.conn.peer_cert.empty() && set(o, s.conn.peer_subject);
       }},
  };
  return t;
}

}  // namespace

bool node_attribute(const config::Node& node, std::string_view path, std::string* out) {
  const std::string* v = path == "node.id"        ? &node.id
                         : path == "node.cluster" ? &node.cluster
                                                  : nullptr;
  return v && !v->empty() && set(out, *v);
}

bool read_attribute(const AttributeSource& src, std::string_view path, std::string* out) {
  auto it = table().find(path);
  return it != table().end() && it->second(src, out);
}

}  // namespace sy::server
