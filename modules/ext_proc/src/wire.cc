#include "wire.h"

#include <cstdlib>
#include <cstring>
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

Request::Request()
    : arena_([this] {
        google::protobuf::ArenaOptions options;
        options.initial_block = block_;
        options.initial_block_size = sizeof block_;
        return options;
      }()),
      msg_(google::protobuf::Arena::CreateMessage<pb::ProcessingRequest>(&arena_)) {}

void Request::set_body(sy_direction_t dir, std::string_view body, bool end_of_stream) {
  body_field_ = dir == SY_REQUEST ? pb::ProcessingRequest::kRequestBodyFieldNumber
                                  : pb::ProcessingRequest::kResponseBodyFieldNumber;
  body_ = body;
  end_of_stream_ = end_of_stream;
}

namespace {

size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

uint8_t* put_varint(uint64_t v, uint8_t* p) {
  for (; v >= 0x80; v >>= 7) *p++ = uint8_t(v | 0x80);
  *p++ = uint8_t(v);
  return p;
}

}  // namespace

Frame::Frame(const Request& r) {
  // The body message is written by hand, as protobuf would: HttpBody's body (field 1, bytes)
  // and end_of_stream (field 2, bool), each left out when empty or false; the message itself
  // is written even when empty (a oneof member is present). Its field number (4 or 5) is below
  // every field the message holds (metadata_context 8 and up; no other oneof member is set),
  // so writing it first keeps protobuf's field order.
  size_t inner = 0;
  if (!r.body_.empty()) inner += 1 + varint_size(r.body_.size()) + r.body_.size();
  if (r.end_of_stream_) inner += 2;
  size_t outer = r.body_field_ ? 1 + varint_size(inner) + inner : 0;
  // A protobuf message is under 2 GiB, so its length always fits the prefix's 32 bits.
  const size_t rest = r.msg_->ByteSizeLong();
  const size_t n = outer + rest;
  size_ = sy::sdk::grpc::kPrefixSize + n;
  if (size_ > sizeof small_) {
    big_.reset(new char[size_]);
    data_ = big_.get();
  }
  auto* p = reinterpret_cast<uint8_t*>(data_);
  *p++ = 0;  // not compressed
  *p++ = uint8_t(n >> 24);
  *p++ = uint8_t(n >> 16);
  *p++ = uint8_t(n >> 8);
  *p++ = uint8_t(n);
  if (r.body_field_) {
    p = put_varint(uint64_t(r.body_field_) << 3 | 2, p);  // length-delimited
    p = put_varint(inner, p);
    if (!r.body_.empty()) {
      *p++ = 1 << 3 | 2;  // body: length-delimited
      p = put_varint(r.body_.size(), p);
      std::memcpy(p, r.body_.data(), r.body_.size());
      p += r.body_.size();
    }
    if (r.end_of_stream_) {
      *p++ = 2 << 3;  // end_of_stream: varint
      *p++ = 1;
    }
  }
  r.msg_->SerializeWithCachedSizesToArray(p);
}

void fill_header_map(sy_stream_t* s, sy_header_kind_t kind, const Config& cfg,
                     envoy::config::core::v3::HeaderMap* out) {
  size_t n = g_host->header_count(s, kind, S(""));
  out->mutable_headers()->Reserve(int(n));
  for (size_t i = 0; i < n; ++i) {
    sy_str_t name{}, value{};
    if (g_host->header_at(s, kind, i, &name, &value) != SY_OK) continue;
    if (!forwarded(cfg, V(name))) continue;
    auto* h = out->add_headers();
    // Assigned in place: set_key(ptr, len) would build a temporary string and move it.
    h->mutable_key()->assign(name.ptr, name.len);
    h->mutable_raw_value()->assign(value.ptr, value.len);
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
