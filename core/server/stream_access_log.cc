// The access-log record of a stream: one JSON object per line.
#include "config/json_text.h"
#include "core/server/stream.h"

namespace sy::server {

std::string Stream::build_log_line() const {
  char when[64];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
           t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  std::string out;
  out.reserve(512);
  out += "{\"time\":\"";
  out += when;
  out += "\",\"listener\":";
  json::append_quoted(out, lr_->cfg->name);
  out += ",\"method\":";
  json::append_quoted(out, method_);
  out += ",\"authority\":";
  json::append_quoted(out, authority_);
  out += ",\"path\":";
  json::append_quoted(out, path_);
  out += ",\"protocol\":";
  json::append_quoted(out, protocol_);
  out += ",\"status\":" + std::to_string(status_);
  out += ",\"bytes_in\":" + std::to_string(bytes_in_);
  out += ",\"bytes_out\":" + std::to_string(bytes_out_);
  char dur[32];
  snprintf(dur, sizeof dur, "%.3f", ms);
  out += ",\"duration_ms\":";
  out += dur;
  out += ",\"route\":";
  json::append_quoted(out, route_ >= 0 ? lr_->cfg->routes[size_t(route_)].name : "");
  out += ",\"cluster\":";
  json::append_quoted(out, cluster_ ? cluster_->cfg.name : "");
  out += ",\"upstream_host\":";
  json::append_quoted(out, upstream_host_);
  out += ",\"request_id\":";
  json::append_quoted(out, request_id_);
  out += ",\"response_flags\":";
  json::append_quoted(out, flags_.empty() ? "-" : flags_);
  out += ",\"details\":";
  json::append_quoted(out, details_);
  out += ",\"client\":";
  json::append_quoted(out, conn_->info().peer_ip);
  out += ",\"tls_version\":";
  json::append_quoted(out, conn_->info().tls_version);
  out += ",\"sni\":";
  json::append_quoted(out, conn_->info().sni);
  out += "}\n";
  return out;
}

}  // namespace sy::server
