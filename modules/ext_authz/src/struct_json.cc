#include "struct_json.h"

#include <cmath>

namespace ext_authz {

namespace {

void struct_to_json(const google::protobuf::Struct& s, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const auto& [k, v] : s.fields()) {
    if (!first) out->push_back(',');
    first = false;
    json::write_string(k, out);
    out->push_back(':');
    value_to_json(v, out);
  }
  out->push_back('}');
}

}  // namespace

void value_to_json(const google::protobuf::Value& v, std::string* out) {
  using K = google::protobuf::Value;
  switch (v.kind_case()) {
    case K::kNumberValue:
      // JSON has no NaN or infinity; a server sending one gets 0, not a metadata write refused.
      json::write_number(std::isfinite(v.number_value()) ? v.number_value() : 0, out);
      break;
    case K::kStringValue:
      json::write_string(v.string_value(), out);
      break;
    case K::kBoolValue:
      out->append(v.bool_value() ? "true" : "false");
      break;
    case K::kStructValue:
      struct_to_json(v.struct_value(), out);
      break;
    case K::kListValue: {
      out->push_back('[');
      for (int i = 0; i < v.list_value().values_size(); ++i) {
        if (i) out->push_back(',');
        value_to_json(v.list_value().values(i), out);
      }
      out->push_back(']');
      break;
    }
    default:
      out->append("null");
      break;
  }
}

void json_to_value(const json::Value& j, google::protobuf::Value* out) {
  switch (j.kind) {
    case json::Value::Null:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case json::Value::Bool:
      out->set_bool_value(j.b);
      break;
    case json::Value::Number:
      out->set_number_value(j.num);
      break;
    case json::Value::String:
      out->set_string_value(j.str);
      break;
    case json::Value::Array: {
      auto* list = out->mutable_list_value();
      for (const json::Value& e : j.arr) json_to_value(e, list->add_values());
      break;
    }
    case json::Value::Object: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const auto& [k, e] : j.obj) json_to_value(e, &(*fields)[k]);
      break;
    }
  }
}

}  // namespace ext_authz
