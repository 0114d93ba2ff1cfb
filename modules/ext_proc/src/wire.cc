#include "wire.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "json.h"

namespace extproc {

namespace {

bool forwarded(const Config& cfg, std::string_view name) {
  for (const auto& m : cfg.disallowed_headers)
    if (m.matches(name)) return false;
  if (!cfg.has_allowed_headers) return true;
  for (const auto& m : cfg.allowed_headers)
    if (m.matches(name)) return true;
  return false;
}

// Attributes whose ABI text is a decimal number and whose Envoy type is an integer.
bool numeric(std::string_view path) {
  static const char* const kNumbers[] = {"request.size",     "request.duration", "request.time",
                                         "response.code",    "response.size",    "source.port",
                                         "destination.port", "connection.id"};
  for (const char* n : kNumbers)
    if (path == n) return true;
  return false;
}

}  // namespace

void fill_header_map(sy_stream_t* s, sy_header_kind_t kind, const Config& cfg,
                     envoy::config::core::v3::HeaderMap* out) {
  size_t n = g_host->header_count(s, kind, S(""));
  for (size_t i = 0; i < n; ++i) {
    sy_str_t name{}, value{};
    if (g_host->header_at(s, kind, i, &name, &value) != SY_OK) continue;
    if (!forwarded(cfg, V(name))) continue;
    auto* h = out->add_headers();
    h->set_key(std::string(V(name)));
    h->set_raw_value(std::string(V(value)));
  }
}

void fill_attributes(sy_stream_t* s, const std::vector<std::string>& names,
                     pb::ProcessingRequest* req) {
  if (names.empty()) return;
  google::protobuf::Struct& st = (*req->mutable_attributes())["envoy.filters.http.ext_proc"];
  for (const auto& name : names) {
    sy_str_t v{};
    if (g_host->attribute_get(s, S(name), &v) != SY_OK) continue;  // not available (yet)
    google::protobuf::Value& out = (*st.mutable_fields())[name];
    std::string text(V(v));
    char* end = nullptr;
    double d = numeric(name) ? std::strtod(text.c_str(), &end) : 0;
    if (numeric(name) && !text.empty() && end == text.c_str() + text.size())
      out.set_number_value(d);
    else
      out.set_string_value(text);
  }
}

void to_json(const google::protobuf::Value& v, std::string* out) {
  using K = google::protobuf::Value;
  switch (v.kind_case()) {
    case K::kNullValue:
    case K::KIND_NOT_SET:
      *out += "null";
      return;
    case K::kNumberValue: {
      double d = v.number_value();
      if (!std::isfinite(d)) {
        *out += "null";
        return;
      }
      char buf[32];
      if (d == std::floor(d) && std::fabs(d) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", d);
      else
        std::snprintf(buf, sizeof buf, "%.17g", d);
      *out += buf;
      return;
    }
    case K::kStringValue:
      json::encode_string(v.string_value(), out);
      return;
    case K::kBoolValue:
      *out += v.bool_value() ? "true" : "false";
      return;
    case K::kStructValue: {
      *out += '{';
      bool first = true;
      for (const auto& [k, x] : v.struct_value().fields()) {
        if (!first) *out += ',';
        first = false;
        json::encode_string(k, out);
        *out += ':';
        to_json(x, out);
      }
      *out += '}';
      return;
    }
    case K::kListValue: {
      *out += '[';
      bool first = true;
      for (const auto& x : v.list_value().values()) {
        if (!first) *out += ',';
        first = false;
        to_json(x, out);
      }
      *out += ']';
      return;
    }
  }
}

}  // namespace extproc
