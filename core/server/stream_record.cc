// What a Stream hands to the attribute table and the access log: its StreamInfo with the
// connection, listener, route and cluster it ran under.
#include <ctime>

#include "core/log/access_log.h"
#include "core/server/stream.h"

namespace sy::server {

AttributeSource Stream::attribute_source() const {
  return {info_, conn_->info(), *lr_->cfg, route_name(), cluster_ ? &cluster_->cfg.name : nullptr};
}

bool Stream::attribute(std::string_view path, std::string* out) const {
  return read_attribute(attribute_source(), path, out) || attribute_since_1_2(path, out);
}

std::string Stream::build_log_line() const {
  log::AccessRecord r;
  clock_gettime(CLOCK_REALTIME, &r.time);
  r.listener = lr_->cfg->name;
  r.method = info_.method;
  r.authority = info_.authority;
  r.path = info_.path;
  r.protocol = info_.protocol;
  r.status = info_.status;
  r.bytes_in = info_.bytes_in;
  r.bytes_out = info_.bytes_out;
  r.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - info_.start)
          .count();
  r.route = route_name();
  r.cluster = cluster_ ? std::string_view(cluster_->cfg.name) : std::string_view();
  r.upstream_host = info_.upstream_host;
  r.request_id = info_.request_id;
  r.flag = info_.flag;
  r.details = info_.details;
  const ConnInfo& c = conn_->info();
  r.client = c.peer_ip;
  r.tls_version = c.tls_version;
  r.sni = c.sni;
  std::string fields;
  append_log_fields(fields);
  r.fields = fields;
  return log::format_access_json(r);
}

}  // namespace sy::server
