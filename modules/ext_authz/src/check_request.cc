#include "check_request.h"

#include <envoy/service/auth/v3/external_auth.pb.h>

#include <cstdlib>
#include <map>

#include "host.h"
#include "struct_json.h"

namespace ext_authz {

namespace {

using envoy::service::auth::v3::AttributeContext;

// Views into the host's request block: valid while this module call runs and nothing changes
// the block, which holds while a check request is built (copying every header cost two
// allocations each, on every check).
struct RawHeader {
  std::string_view name, value;
};

std::vector<RawHeader> request_headers(sy_stream_t* s) {
  std::vector<RawHeader> out;
  size_t n = g_host->header_count(s, SY_REQUEST_HEADERS, str(""));
  out.reserve(n + 1);
  for (size_t i = 0; i < n; ++i) {
    sy_str_t name{}, value{};
    if (g_host->header_at(s, SY_REQUEST_HEADERS, i, &name, &value) != SY_OK) break;
    out.push_back({view(name), view(value)});
  }
  return out;
}

// Copies the namespaces NAMES of SOURCE (the stream's dynamic metadata, or its route's
// `metadata:` block) into OUT.filter_metadata, as Envoy does for metadata_context_namespaces
// and route_metadata_context_namespaces: a namespace the source lacks is left out.
void add_metadata(sy_stream_t* s, sy_metadata_source_t source,
                  const std::vector<std::string>& names, envoy::config::core::v3::Metadata* out) {
  for (const std::string& ns : names) {
    sy_str_t v{};
    if (g_host->metadata_ns_get(s, source, str(ns), &v) != SY_OK) continue;
    std::string err;
    json::Value parsed;
    if (!json::parse(view(v), &parsed, &err) || !parsed.is_object())
      continue;  // The host hands out objects only.
    google::protobuf::Value st;
    json_to_value(parsed, &st);
    (*out->mutable_filter_metadata())[ns] = std::move(*st.mutable_struct_value());
  }
}

std::string header(const std::vector<RawHeader>& hs, std::string_view name) {
  for (const RawHeader& h : hs)
    if (h.name == name) return std::string(h.value);
  return {};
}

// Envoy replaces each byte that is not part of valid UTF-8 with '!' (proto3 strings must be
// UTF-8, and servers in strict languages refuse the message otherwise).
std::string utf8_or_bang(std::string_view in) {
  // Header values are nearly always ASCII: those are copied as they are, not byte by byte.
  size_t i = 0;
  while (i < in.size() && static_cast<unsigned char>(in[i]) < 0x80) ++i;
  if (i == in.size()) return std::string(in);
  std::string out;
  out.reserve(in.size());
  out.append(in.substr(0, i));
  while (i < in.size()) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    if (!ok) {
      out.push_back('!');
      ++i;
      continue;
    }
    out.append(in.substr(i, len));
    i += len;
  }
  return out;
}

std::string url_encode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

void set_address(sy_stream_t* s, const char* addr_attr, const char* port_attr,
                 AttributeContext::Peer* peer) {
  auto addr = attribute(s, addr_attr);
  auto port = attribute(s, port_attr);
  if (!addr) return;
  std::string ip = *addr;
  // destination.address is the listener's "ip:port"; the port has its own field.
  if (port && ip.size() > port->size() + 1 && ip.ends_with(":" + *port))
    ip.resize(ip.size() - port->size() - 1);
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  auto* sa = peer->mutable_address()->mutable_socket_address();
  sa->set_address(ip);
  if (port) sa->set_port_value(uint32_t(std::strtoul(port->c_str(), nullptr, 10)));
}

}  // namespace

std::string build_check_request(sy_stream_t* s, const CheckInput& in) {
  const Config& cfg = *in.cfg;
  // The message lives on an arena whose first block is on this stack: its strings, map
  // entries and sub-messages cost no malloc and free each (a check without a body fits the
  // block; a bigger one takes further blocks from the heap).
  alignas(16) char block[8192];
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = sizeof block;
  google::protobuf::Arena arena(options);
  auto& req =
      *google::protobuf::Arena::CreateMessage<envoy::service::auth::v3::CheckRequest>(&arena);
  AttributeContext* ac = req.mutable_attributes();
  set_address(s, "source.address", "source.port", ac->mutable_source());
  set_address(s, "destination.address", "destination.port", ac->mutable_destination());
  if (attribute(s, "connection.peer_certificate")) {
    if (auto subject = attribute(s, "connection.subject_peer_certificate"))
      ac->mutable_source()->set_principal(*subject);
    if (cfg.include_peer_certificate)
      ac->mutable_source()->set_certificate(
          url_encode(*attribute(s, "connection.peer_certificate")));
  }

  std::vector<RawHeader> hs = request_headers(s);
  AttributeContext::Request* r = ac->mutable_request();
  if (auto t = attribute(s, "request.time")) {
    uint64_t ms = std::strtoull(t->c_str(), nullptr, 10);
    r->mutable_time()->set_seconds(int64_t(ms / 1000));
    r->mutable_time()->set_nanos(int32_t(ms % 1000) * 1000000);
  }
  AttributeContext::HttpRequest* http = r->mutable_http();
  std::string id = header(hs, "x-request-id");
  if (id.empty()) id = attribute(s, "request.id").value_or("");
  http->set_id(id);
  http->set_method(header(hs, ":method"));
  http->set_path(header(hs, ":path"));
  std::string host = header(hs, ":authority");
  http->set_host(host.empty() ? header(hs, "host") : host);
  http->set_scheme(header(hs, ":scheme").empty() ? attribute(s, "request.scheme").value_or("")
                                                 : header(hs, ":scheme"));
  std::string cl = header(hs, "content-length");
  // Envoy: the Content-Length, 0 for a request without a body, else -1 (unknown).
  http->set_size(!cl.empty() ? std::strtoll(cl.c_str(), nullptr, 10) : in.header_only ? 0 : -1);
  http->set_protocol(attribute(s, "request.protocol").value_or(""));
  // With the body, Envoy always says whether it is whole.
  if (in.has_body) hs.push_back({"x-envoy-auth-partial-body", in.partial ? "true" : "false"});
  if (cfg.encode_raw_headers) {
    auto* map = http->mutable_header_map();
    for (const RawHeader& h : hs) {
      if (!cfg.forwards(h.name)) continue;
      auto* hv = map->add_headers();
      hv->set_key(std::string(h.name));
      hv->set_raw_value(std::string(h.value));
    }
  } else {
    auto* map = http->mutable_headers();
    for (const RawHeader& h : hs) {
      if (!cfg.forwards(h.name)) continue;
      std::string v = utf8_or_bang(h.value);
      auto [it, fresh] = map->try_emplace(std::string(h.name));
      if (fresh)
        it->second = std::move(v);
      else
        it->second.append(",").append(v);
    }
  }
  if (in.has_body) {
    if (cfg.with_request_body.pack_as_bytes)
      http->set_raw_body(in.body);
    else
      http->set_body(utf8_or_bang(in.body));
  }

  if (in.route)
    for (const auto& [k, v] : in.route->context_extensions)
      (*ac->mutable_context_extensions())[k] = v;

  add_metadata(s, SY_METADATA_DYNAMIC, cfg.metadata_context_namespaces,
               ac->mutable_metadata_context());
  add_metadata(s, SY_METADATA_ROUTE, cfg.route_metadata_context_namespaces,
               ac->mutable_route_metadata_context());
  if (cfg.include_tls_session)
    if (auto sni = attribute(s, "connection.requested_server_name"))
      ac->mutable_tls_session()->set_sni(*sni);
  return req.SerializeAsString();
}

std::vector<std::pair<std::string, std::string>> build_http_check_headers(sy_stream_t* s,
                                                                          const CheckInput& in) {
  const Config& cfg = *in.cfg;
  std::vector<RawHeader> hs = request_headers(s);
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back(":method", header(hs, ":method"));
  out.emplace_back(":path", cfg.path_prefix + header(hs, ":path"));
  std::string host = header(hs, ":authority");
  out.emplace_back(":authority", host.empty() ? header(hs, "host") : host);
  for (const RawHeader& h : hs) {
    if (h.name.empty() || h.name[0] == ':' || h.name == "host" || h.name == "content-length" ||
        h.name == "transfer-encoding" || h.name == "connection" || h.name == "te" ||
        h.name == "upgrade" || h.name == "keep-alive")
      continue;
    if (cfg.forwards(h.name)) out.emplace_back(h.name, h.value);
  }
  // A plain loop variable, not a structured binding: clang before 16 cannot capture one.
  for (const auto& add : cfg.headers_to_add) {
    std::erase_if(out, [&](const auto& h) { return h.first == add.first; });
    out.emplace_back(add.first, add.second);
  }
  if (in.has_body) out.emplace_back("x-envoy-auth-partial-body", in.partial ? "true" : "false");
  out.emplace_back("content-length", std::to_string(in.has_body ? in.body.size() : 0));
  return out;
}

}  // namespace ext_authz
