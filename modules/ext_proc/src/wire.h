// What goes into a ProcessingRequest from the stream (header blocks, attributes) and what
// comes back as dynamic metadata (a Struct, written as JSON through metadata_set).
#pragma once

#include <envoy/service/ext_proc/v3/external_processor.pb.h>

#include <string>

#include "ext_proc.h"

namespace extproc {

namespace pb = envoy::service::ext_proc::v3;

// Every header of block KIND that forward_rules let through, values in raw_value.
void fill_header_map(sy_stream_t* s, sy_header_kind_t kind, const Config& cfg,
                     envoy::config::core::v3::HeaderMap* out);

// The attributes named in NAMES that the stream has now, under envoy.filters.http.ext_proc.
void fill_attributes(sy_stream_t* s, const std::vector<std::string>& names,
                     pb::ProcessingRequest* req);

// M serialized straight after a gRPC frame prefix, as one string: one copy of the message's
// bytes (a body among them) instead of a serialized string and then its framed copy.
std::string framed(const google::protobuf::MessageLite& m);

// A protobuf Value as JSON text.
void to_json(const google::protobuf::Value& v, std::string* out);

// The namespaces NAMES of the stream's dynamic metadata (as the host holds them, with their
// JSON types) into OUT.filter_metadata; a namespace the stream lacks is left out, as Envoy
// does for metadata_options.forwarding_namespaces.untyped. The namespaces TYPED go into
// OUT.typed_filter_metadata, each as a google.protobuf.Struct packed in an Any: Switchyard's
// dynamic metadata is JSON, which is what a Struct holds (docs/ext_proc.md).
void fill_metadata(sy_stream_t* s, const std::vector<std::string>& names,
                   const std::vector<std::string>& typed, envoy::config::core::v3::Metadata* out);

}  // namespace extproc
