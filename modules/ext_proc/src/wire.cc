#include "wire.h"

#include <cstdlib>
#include <switchyard/grpc_framing.hpp>

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

std::string framed(const google::protobuf::MessageLite& m) {
  // A protobuf message is under 2 GiB, so its length always fits the prefix's 32 bits.
  const size_t n = m.ByteSizeLong();
  std::string out(sy::sdk::grpc::kPrefixSize + n, '\0');
  out[1] = char(n >> 24);
  out[2] = char(n >> 16);
  out[3] = char(n >> 8);
  out[4] = char(n);
  m.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(out.data() + sy::sdk::grpc::kPrefixSize));
  return out;
}

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
    case K::kNumberValue:
      json::write_number(v.number_value(), out);
      return;
    case K::kStringValue:
      json::write_string(v.string_value(), out);
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
        json::write_string(k, out);
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

namespace {

void from_json(const json::Value& in, google::protobuf::Value* out) {
  switch (in.kind) {
    case json::Value::Null:
      out->set_null_value(google::protobuf::NULL_VALUE);
      return;
    case json::Value::Bool:
      out->set_bool_value(in.b);
      return;
    case json::Value::Number:
      out->set_number_value(in.num);
      return;
    case json::Value::String:
      out->set_string_value(in.str);
      return;
    case json::Value::Array: {
      auto* list = out->mutable_list_value();
      for (const json::Value& x : in.arr) from_json(x, list->add_values());
      return;
    }
    case json::Value::Object: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const auto& [k, x] : in.obj) from_json(x, &(*fields)[k]);
      return;
    }
  }
}

// The dynamic-metadata namespace NS as a Struct; false when the stream lacks it.
bool namespace_struct(sy_stream_t* s, const std::string& ns, google::protobuf::Value* st) {
  sy_str_t text{};
  if (g_host->metadata_ns_get(s, SY_METADATA_DYNAMIC, S(ns), &text) != SY_OK) return false;
  json::Value v;
  std::string err;
  if (!json::parse(V(text), &v, &err) || !v.is_object()) return false;  // objects only
  from_json(v, st);
  return true;
}

}  // namespace

void fill_metadata(sy_stream_t* s, const std::vector<std::string>& names,
                   const std::vector<std::string>& typed, envoy::config::core::v3::Metadata* out) {
  if (!SY_HAS_SLOT(g_host, sy_host_t, metadata_ns_get)) return;
  for (const std::string& ns : names) {
    google::protobuf::Value st;
    if (namespace_struct(s, ns, &st))
      (*out->mutable_filter_metadata())[ns] = std::move(*st.mutable_struct_value());
  }
  for (const std::string& ns : typed) {
    google::protobuf::Value st;
    if (!namespace_struct(s, ns, &st)) continue;
    google::protobuf::Any& any = (*out->mutable_typed_filter_metadata())[ns];
    any.set_type_url("type.googleapis.com/google.protobuf.Struct");
    st.struct_value().SerializeToString(any.mutable_value());
  }
}

}  // namespace extproc
