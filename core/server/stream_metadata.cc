// What ABI 1.2 added to a stream's info: config metadata for filters (route, listener,
// cluster), the attributes added in 1.2, the access log's `fields:` (dynamic metadata and
// filter state the filters left), and the write-buffer watermarks filters hear of.
#include "config/json_text.h"
#include "core/filter_chain/metadata.h"
#include "core/server/stream.h"

namespace sy::server {
namespace {

// A header block's size as HTTP/1.1 text: "name: value" and CRLF per header. Pseudo-headers
// are left out: they are the request or status line, which is not counted.
uint64_t header_block_bytes(const http::HeaderMap& h) {
  uint64_t n = 0;
  for (const auto& x : h)
    if (x.name.empty() || x.name[0] != ':') n += x.name.size() + x.value.size() + 4;
  return n;
}

}  // namespace

const std::map<std::string, std::string>* Stream::config_metadata(
    sy_metadata_source_t source) const {
  switch (source) {
    case SY_METADATA_ROUTE:
      return route_ >= 0 ? &lr_->cfg->routes[size_t(route_)].metadata : nullptr;
    case SY_METADATA_VIRTUAL_HOST:
      return &lr_->cfg->metadata;
    case SY_METADATA_CLUSTER:
      return cluster_ ? &cluster_->cfg.metadata : nullptr;
    default:
      return nullptr;
  }
}

bool Stream::attribute_since_1_2(std::string_view path, std::string* out) const {
  const ConnInfo& info = conn_->info();
  if (path == "upstream.port") {
    size_t colon = info_.upstream_host.rfind(':');
    if (colon == std::string::npos) return false;  // no upstream host chosen yet
    *out = info_.upstream_host.substr(colon + 1);
  } else if (path == "request.total_size") {
    const http::HeaderMap& h = chain_.request_headers;
    *out = std::to_string(info_.bytes_in + header_block_bytes(h));
  } else if (path == "response.total_size") {
    if (!info_.status) return false;
    const http::HeaderMap& h = chain_.response_headers;
    *out = std::to_string(info_.bytes_out + header_block_bytes(h));
  } else if (path == "connection.uri_san_peer_certificate") {
    if (info.peer_uri_san.empty()) return false;
    *out = info.peer_uri_san;
  } else if (path == "connection.dns_san_peer_certificate") {
    if (info.peer_dns_san.empty()) return false;
    *out = info.peer_dns_san;
  } else if (path.starts_with("node.")) {
    return node_attribute(rt_->config->node, path, out);
  } else {
    return false;
  }
  return true;
}

void Stream::write_watermark(sy_direction_t dir, bool above) { chain_.watermark(dir, above); }

void Stream::append_log_fields(std::string& out) const {
  std::string value;
  for (const config::AccessLogField& f : rt_->config->access_log.fields) {
    bool found = false;
    if (f.source == config::AccessLogField::Source::kDynamicMetadata) {
      found = filters::dynamic_metadata_json(chain_, f.key, &value);  // JSON already
    } else if (filters::filter_state_text(chain_, f.key, &value)) {
      value = json::quoted(value);
      found = true;
    }
    out += ',';
    json::append_quoted(out, f.name);
    out += ':';
    // Absent is null, so a reader can tell it from an empty string.
    out += found ? value : "null";
  }
}

}  // namespace sy::server
