// What goes into a ProcessingRequest from the stream (header blocks, attributes) and what
// comes back as dynamic metadata (a Struct, written as JSON through metadata_set).
#pragma once

#include <envoy/service/ext_proc/v3/external_processor.pb.h>

#include <memory>
#include <string>
#include <string_view>

#include "ext_proc.h"

namespace extproc {

namespace pb = envoy::service::ext_proc::v3;

// Every header of block KIND that forward_rules let through, values in raw_value.
void fill_header_map(sy_stream_t* s, sy_header_kind_t kind, const Config& cfg,
                     envoy::config::core::v3::HeaderMap* out);

// The attributes named in NAMES that the stream has now, under envoy.filters.http.ext_proc.
void fill_attributes(sy_stream_t* s, const std::vector<std::string>& names,
                     pb::ProcessingRequest* req);

// A ProcessingRequest being built. It lives on an arena whose first block is part of this
// object, on the sender's stack: its strings, header entries and sub-messages cost no malloc
// and free each (a headers message fits the block; a bigger one takes heap blocks). A body is
// not copied into the message: it stays a view of the caller's bytes (which must outlive the
// Request) until Frame writes it into the gRPC frame.
class Request {
 public:
  Request();
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  pb::ProcessingRequest& msg() { return *msg_; }
  const pb::ProcessingRequest& msg() const { return *msg_; }
  // The request_body (DIR SY_REQUEST) or response_body message: BODY and END_OF_STREAM.
  void set_body(sy_direction_t dir, std::string_view body, bool end_of_stream);

 private:
  friend class Frame;
  alignas(16) char block_[4096];
  google::protobuf::Arena arena_;
  pb::ProcessingRequest* msg_;
  int body_field_ = 0;  // 4 (request_body), 5 (response_body), or 0: no body message
  std::string_view body_;
  bool end_of_stream_ = false;
};

// R serialized straight after a gRPC frame prefix, into one buffer (on the stack when small):
// the body bytes are copied once, from the caller's view into the frame.
class Frame {
 public:
  explicit Frame(const Request& r);
  std::string_view view() const { return {data_, size_}; }

 private:
  char small_[2048];
  std::unique_ptr<char[]> big_;
  char* data_ = small_;
  size_t size_ = 0;
};

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
