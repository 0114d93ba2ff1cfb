// Fuzz target: the ext_proc module (modules/ext_proc) as the proxy runs it, on the fake host of
// fake_host.h: its filter table, one HTTP stream, and the processor's side of the gRPC stream
// written by the fuzzer. The processor's bytes go through the module's own gRPC deframer and
// ProcessingResponse decoding, and each answer is applied to the stream's state machine
// (header, body and trailer mutations, immediate responses, mode overrides, dynamic metadata,
// message timeouts) as the stream moves on.
//
// Input: byte 0 picks one of kConfigs, byte 1 the stream's shape, then the operations of
// fuzzhost::run_ops (module_stream.h): stream phases, the processor's bytes, the side stream's
// head, trailers, end or failure, timers. At the end the stream completes and is destroyed,
// with whatever is still open.
#include <google/protobuf/stubs/logging.h>
#include <switchyard/module.h>

#include <cstdint>

#include "tests/fuzz/module_stream.h"

extern "C" const sy_module_descriptor_t* sy_module_entry_v1(const sy_host_t*, sy_module_t*);

namespace {

#define GRPC R"("grpc_service": {"envoy_grpc": {"cluster_name": "proc"}, "timeout": "5s"})"

// Configurations that reach the module's different paths: each header, body and trailer mode,
// failure_mode_allow, mode overrides, mutation rules, immediate responses refused, metadata.
const char* const kConfigs[] = {
    "{" GRPC "}",
    "{" GRPC R"(, "processing_mode": {"request_body_mode": "BUFFERED",
       "response_body_mode": "BUFFERED", "request_trailer_mode": "SEND",
       "response_trailer_mode": "SEND"}})",
    "{" GRPC R"(, "processing_mode": {"request_body_mode": "STREAMED",
       "response_body_mode": "STREAMED"}, "allow_mode_override": true})",
    "{" GRPC R"(, "processing_mode": {"request_body_mode": "BUFFERED_PARTIAL",
       "response_body_mode": "BUFFERED_PARTIAL"}, "partial_buffer_bytes": 16})",
    "{" GRPC R"(, "failure_mode_allow": true, "processing_mode": {"request_header_mode": "SKIP",
       "response_body_mode": "STREAMED", "response_trailer_mode": "SEND"},
       "send_body_without_waiting_for_header_response": true})",
    "{" GRPC R"(, "allow_mode_override": true, "max_message_timeout": "2s",
       "mutation_rules": {"disallow_system": true, "disallow_is_error": true,
       "disallow_expression": {"regex": "x-no.*"}},
       "processing_mode": {"request_body_mode": "STREAMED", "request_trailer_mode": "SEND"},
       "send_body_without_waiting_for_header_response": true})",
    "{" GRPC R"(, "disable_immediate_response": true, "status_on_error": {"code": 503},
       "forward_rules": {"allowed_headers": {"patterns": [{"prefix": "x-"}]}},
       "metadata_options": {"forwarding_namespaces": {"untyped": ["ns"]},
       "receiving_namespaces": {"untyped": ["ns", "envoy.filters.http.ext_proc"]}},
       "request_attributes": ["request.path", "source.address"],
       "processing_mode": {"response_body_mode": "BUFFERED"}})",
    "{" GRPC R"(, "mutation_rules": {"allow_all_routing": true, "allow_envoy": true},
       "route_cache_action": "CLEAR", "failure_mode_allow": true,
       "processing_mode": {"request_body_mode": "STREAMED", "response_header_mode": "SKIP",
       "response_body_mode": "BUFFERED_PARTIAL"}})",
};
constexpr size_t kConfigCount = sizeof kConfigs / sizeof kConfigs[0];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // On the heap and never freed, so the configs are still reachable when LeakSanitizer looks.
  static const fuzzhost::Loaded* m = [] {
    // Invalid UTF-8 in a string field is a refused message, not worth a log line per input.
    google::protobuf::SetLogHandler(nullptr);
    return new fuzzhost::Loaded(
        fuzzhost::load_with_configs(sy_module_entry_v1, kConfigs, kConfigCount));
  }();
  fuzzhost::fuzz_one_stream(*m, data, size);
  return 0;
}
