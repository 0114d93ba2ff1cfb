// google.protobuf.Struct <-> JSON text, by hand: lite protobuf has no JSON support, and the
// ABI carries structured metadata as JSON text.
#pragma once

#include <google/protobuf/struct.pb.h>

#include <string>

#include "host.h"

namespace ext_authz {

void value_to_json(const google::protobuf::Value& v, std::string* out);
void json_to_value(const json::Value& j, google::protobuf::Value* out);

}  // namespace ext_authz
