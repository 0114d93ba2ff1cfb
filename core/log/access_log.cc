// Writes the access-log record (see access_log.h).
#include "core/log/access_log.h"

#include <cstdio>

#include "config/json_text.h"

namespace sy::log {

const char* flag_text(ResponseFlag f) {
  switch (f) {
    case ResponseFlag::kNone:
      return "-";
    case ResponseFlag::kDownstreamReset:
      return "DC";
    case ResponseFlag::kLocalReply:
      return "LR";
    case ResponseFlag::kNoRoute:
      return "NR";
    case ResponseFlag::kUpstreamTimeout:
      return "UT";
    case ResponseFlag::kUpstreamConnectFailure:
      return "UF";
    case ResponseFlag::kUpstreamOverflow:
      return "UO";
    case ResponseFlag::kUpstreamReset:
      return "UR";
    case ResponseFlag::kFilterReset:
      return "FR";
    case ResponseFlag::kOverload:
      return "OL";
    case ResponseFlag::kRateLimited:
      return "RL";
    case ResponseFlag::kUnauthorizedExternal:
      return "UAEX";
    case ResponseFlag::kRateLimitServiceError:
      return "RLSE";
    case ResponseFlag::kFaultAbort:
      return "FI";
    case ResponseFlag::kFaultDelay:
      return "DI";
  }
  return "-";
}

ResponseFlag filter_flag(std::string_view text) {
  for (ResponseFlag f :
       {ResponseFlag::kUnauthorizedExternal, ResponseFlag::kRateLimitServiceError,
        ResponseFlag::kRateLimited, ResponseFlag::kFaultAbort, ResponseFlag::kFaultDelay})
    if (text == flag_text(f)) return f;
  return ResponseFlag::kNone;
}

std::string format_access_json(const AccessRecord& r) {
  char when[64];
  tm t;
  gmtime_r(&r.time.tv_sec, &t);
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
           t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, r.time.tv_nsec / 1000000);
  std::string out;
  out.reserve(512);
  auto field = [&out](const char* name, std::string_view value) {
    out += name;
    json::append_quoted(out, value);
  };
  out += "{\"time\":\"";
  out += when;
  out += '"';
  field(",\"listener\":", r.listener);
  field(",\"method\":", r.method);
  field(",\"authority\":", r.authority);
  field(",\"path\":", r.path);
  field(",\"protocol\":", r.protocol);
  out += ",\"status\":" + std::to_string(r.status);
  out += ",\"bytes_in\":" + std::to_string(r.bytes_in);
  out += ",\"bytes_out\":" + std::to_string(r.bytes_out);
  char dur[32];
  snprintf(dur, sizeof dur, "%.3f", r.duration_ms);
  out += ",\"duration_ms\":";
  out += dur;
  field(",\"route\":", r.route);
  field(",\"cluster\":", r.cluster);
  field(",\"upstream_host\":", r.upstream_host);
  field(",\"request_id\":", r.request_id);
  field(",\"response_flags\":", flag_text(r.flag));
  field(",\"details\":", r.details);
  field(",\"client\":", r.client);
  field(",\"tls_version\":", r.tls_version);
  field(",\"sni\":", r.sni);
  out += r.fields;
  out += "}\n";
  return out;
}

}  // namespace sy::log
