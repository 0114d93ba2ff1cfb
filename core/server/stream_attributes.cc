// The attributes a filter reads from a stream (sy_host_t attribute_get): one path, one fact.
#include "core/server/stream.h"

namespace sy::server {

bool Stream::attribute(std::string_view path, std::string* out) const {
  auto ms_since = [](auto tp) {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count());
  };
  if (path == "request.path")
    *out = path_;
  else if (path == "request.url_path")
    *out = path_.substr(0, path_.find('?'));
  else if (path == "request.method")
    *out = method_;
  else if (path == "request.host")
    *out = authority_;
  else if (path == "request.scheme")
    *out = lr_->cfg->tls ? "https" : "http";
  else if (path == "request.protocol")
    *out = protocol_;
  else if (path == "request.id")
    *out = request_id_;
  else if (path == "request.time")
    *out = ms_since(start_wall_);
  else if (path == "request.duration")
    *out = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start_)
                              .count());
  else if (path == "request.size")
    *out = std::to_string(bytes_in_);
  else if (path == "source.address")
    *out = conn_->info().peer_ip;
  else if (path == "source.port")
    *out = std::to_string(conn_->info().peer_port);
  else if (path == "connection.id")
    *out = std::to_string(conn_->info().id);
  else if (path == "connection.mtls")
    *out = conn_->info().peer_cert.empty() ? "false" : "true";
  else if (path == "destination.address")
    *out = lr_->cfg->address.str();
  else if (path == "destination.port")
    *out = std::to_string(lr_->cfg->address.port);
  else if (path == "response.code") {
    if (!status_) return false;
    *out = std::to_string(status_);
  } else if (path == "response.flags")
    *out = flags_.empty() ? "-" : flags_;
  else if (path == "response.code_details")
    *out = details_;
  else if (path == "response.size")
    *out = std::to_string(bytes_out_);
  else if (path == "upstream.address") {
    if (upstream_host_.empty()) return false;
    *out = upstream_host_;
  } else if (path == "xds.route_name")
    *out = route_name();
  else if (path == "xds.cluster_name") {
    if (!cluster_) return false;
    *out = cluster_->cfg.name;
  } else if (path == "xds.listener_name")
    *out = lr_->cfg->name;
  else if (path == "connection.tls_version") {
    if (!conn_->info().tls) return false;  // a plain connection has no TLS facts
    *out = conn_->info().tls_version;
  } else if (path == "connection.requested_server_name") {
    if (!conn_->info().tls) return false;
    *out = conn_->info().sni;
  } else if (path == "connection.peer_certificate") {
    if (conn_->info().peer_cert.empty()) return false;
    *out = conn_->info().peer_cert;
  } else if (path == "connection.subject_peer_certificate") {
    if (conn_->info().peer_cert.empty()) return false;
    *out = conn_->info().peer_subject;
  } else
    return false;
  return true;
}

}  // namespace sy::server
