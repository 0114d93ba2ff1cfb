#include "struct_json.h"

#include <cmath>
#include <cstdio>

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
    case K::kNumberValue: {
      json::Value n;
      n.type = json::Value::kNumber;
      n.number = std::isfinite(v.number_value()) ? v.number_value() : 0;
      json::write(n, out);
      break;
    }
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
  switch (j.type) {
    case json::Value::kNull:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case json::Value::kBool:
      out->set_bool_value(j.boolean);
      break;
    case json::Value::kNumber:
      out->set_number_value(j.number);
      break;
    case json::Value::kString:
      out->set_string_value(j.string);
      break;
    case json::Value::kArray: {
      auto* list = out->mutable_list_value();
      for (const json::Value& e : j.array) json_to_value(e, list->add_values());
      break;
    }
    case json::Value::kObject: {
      auto* fields = out->mutable_struct_value()->mutable_fields();
      for (const auto& [k, e] : j.object) json_to_value(e, &(*fields)[k]);
      break;
    }
  }
}

}  // namespace ext_authz
