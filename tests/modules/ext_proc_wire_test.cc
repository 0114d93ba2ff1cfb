// The ext_proc module's framing of a ProcessingRequest (modules/ext_proc/src/wire.h): the body
// message it writes by hand, around the rest that protobuf serializes, must be byte for byte
// what protobuf itself writes for the same message, for every shape a body message takes.
#include <gtest/gtest.h>

#include <string>

#include "wire.h"

namespace extproc {
// wire.cc's host calls are not used here.
const sy_host_t* g_host = nullptr;
sy_module_t* g_module = nullptr;
}  // namespace extproc

namespace {

using extproc::Frame;
using extproc::Request;
namespace pb = envoy::service::ext_proc::v3;

// What protobuf writes for REQ's message with the body set in it, framed as gRPC.
std::string expected(const pb::ProcessingRequest& rest, sy_direction_t dir, const std::string& body,
                     bool eos) {
  pb::ProcessingRequest m;
  m.CopyFrom(rest);
  pb::HttpBody* b = dir == SY_REQUEST ? m.mutable_request_body() : m.mutable_response_body();
  b->set_body(body);
  b->set_end_of_stream(eos);
  std::string payload = m.SerializeAsString();
  std::string out(5, '\0');
  for (int i = 0; i < 4; ++i) out[1 + i] = char(payload.size() >> (8 * (3 - i)));
  return out + payload;
}

// The fields besides the body that a body message may carry.
void add_rest(pb::ProcessingRequest* m) {
  m->mutable_protocol_config()->set_request_body_mode(
      envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::BUFFERED);
  (*m->mutable_metadata_context()->mutable_filter_metadata())["ns"]
      .mutable_fields()
      ->
      operator[]("k")
      .set_string_value("v");
  m->set_observability_mode(true);
}

TEST(ExtProcWire, BodyFrameIsProtobufsOwnEncoding) {
  // Sizes around the one- and two-byte varint boundaries and past the frame's stack buffer.
  for (size_t size : {0, 1, 3, 127, 128, 2040, 2048, 16384, 70000})
    for (bool eos : {false, true})
      for (sy_direction_t dir : {SY_REQUEST, SY_RESPONSE})
        for (bool rest : {false, true}) {
          std::string body(size, 'b');
          for (size_t i = 0; i < size; ++i) body[i] = char('a' + i % 26);
          Request r;
          if (rest) add_rest(&r.msg());
          r.set_body(dir, body, eos);
          EXPECT_EQ(std::string(Frame(r).view()), expected(r.msg(), dir, body, eos))
              << "size " << size << " eos " << eos << " dir " << dir << " rest " << rest;
        }
}

TEST(ExtProcWire, MessageWithoutBodyIsSerializedAsIs) {
  Request r;
  auto* h = r.msg().mutable_request_headers();
  auto* kv = h->mutable_headers()->add_headers();
  kv->set_key(":path");
  kv->set_raw_value("/x");
  h->set_end_of_stream(true);
  std::string payload = r.msg().SerializeAsString();
  std::string want(5, '\0');
  want[4] = char(payload.size());
  EXPECT_EQ(std::string(Frame(r).view()), want + payload);
}

}  // namespace
