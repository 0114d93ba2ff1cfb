// What the filter sends its server: the gRPC CheckRequest, or the HTTP mode's check request.
#pragma once

#include <switchyard/module.h>

#include <string>
#include <utility>
#include <vector>

#include "config.h"

namespace ext_authz {

struct CheckInput {
  const Config* cfg = nullptr;
  const RouteConfig* route = nullptr;  // may be null
  // The buffered request body (with_request_body), already cut to max_request_bytes.
  std::string body;
  bool has_body = false;
  bool partial = false;      // the body was cut (x-envoy-auth-partial-body: true, else false)
  bool header_only = false;  // the request ended with its headers
};

// The serialized envoy.service.auth.v3.CheckRequest for the stream S.
std::string build_check_request(sy_stream_t* s, const CheckInput& in);

// The HTTP mode's request head (pseudo-headers first) for S; the body is IN.body.
std::vector<std::pair<std::string, std::string>> build_http_check_headers(sy_stream_t* s,
                                                                          const CheckInput& in);

}  // namespace ext_authz
