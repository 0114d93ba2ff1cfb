// Fuzz target: the ext_authz module (modules/ext_authz) as the proxy runs it, on the fake host
// of fake_host.h. In gRPC mode the authorization server's bytes go through the module's gRPC
// deframer and CheckResponse decoding (from_check_response); in HTTP mode its answer (status,
// headers, body) through from_http_response; either decision is then applied to the stream:
// header and query mutations, denials with their headers and body, dynamic metadata, errors
// under failure_mode_allow.
//
// Input: byte 0 picks one of kConfigs, byte 1 the stream's shape, then the operations of
// fuzzhost::run_ops (module_stream.h): stream phases, the server's bytes or HTTP answer, the
// callout's head, trailers, end or failure, posted tasks. At the end the stream completes and
// is destroyed, with whatever is still open.
#include <google/protobuf/stubs/logging.h>
#include <switchyard/module.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/module_stream.h"

extern "C" const sy_module_descriptor_t* sy_module_entry_v1(const sy_host_t*, sy_module_t*);

namespace {

const std::string kGrpc =
    R"("grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "timeout": "2s"})";
const std::string kHttp = R"("http_service": {
  "server_uri": {"uri": "http://authz.local", "cluster": "authz", "timeout": "2s"},
  "path_prefix": "/auth",
  "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-a"}]},
                            "headers_to_add": [{"key": "x-add", "value": "1"}]},
  "authorization_response": {
    "allowed_upstream_headers": {"patterns": [{"prefix": "x-"}]},
    "allowed_upstream_headers_to_append": {"patterns": [{"exact": "x-tag"}]},
    "allowed_client_headers": {"patterns": [{"prefix": "x-"}, {"exact": "www-authenticate"}]},
    "allowed_client_headers_on_success": {"patterns": [{"exact": "x-ok"}]}}})";

// gRPC and HTTP modes, each plain and with the options that change how an answer is applied.
const std::string kConfigs[] = {
    "{" + kGrpc + "}",
    "{" + kGrpc + R"(, "with_request_body": {"max_request_bytes": 100,
       "allow_partial_message": true}, "validate_mutations": true, "clear_route_cache": true,
       "enable_dynamic_metadata_ingestion": true})",
    "{" + kGrpc + R"(, "failure_mode_allow": true, "failure_mode_allow_header_add": true,
       "status_on_error": {"code": 503}, "max_denied_response_body_bytes": 8})",
    "{" + kHttp + "}",
    "{" + kHttp + R"(, "with_request_body": {"max_request_bytes": 10, "pack_as_bytes": true},
       "validate_mutations": true})",
    "{" + kHttp + R"(, "failure_mode_allow": true, "status_on_error": {"code": 502}})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // On the heap and never freed, so the configs are still reachable when LeakSanitizer looks.
  static const fuzzhost::Loaded* m = [] {
    // Invalid UTF-8 in a string field is a refused message, not worth a log line per input.
    google::protobuf::SetLogHandler(nullptr);
    std::vector<const char*> texts;
    for (const auto& c : kConfigs) texts.push_back(c.c_str());
    return new fuzzhost::Loaded(
        fuzzhost::load_with_configs(sy_module_entry_v1, texts.data(), texts.size()));
  }();
  fuzzhost::fuzz_one_stream(*m, data, size);
  return 0;
}
