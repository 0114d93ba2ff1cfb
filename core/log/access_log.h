// The access-log record: one JSON object per line, with the fields docs/operations.md lists.
// The stream fills an AccessRecord at its end; this file only writes it.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "core/log/response_flag.h"

namespace sy::log {

struct AccessRecord {
  timespec time{};  // when the stream ended, wall clock
  std::string_view listener, method, authority, path, protocol;
  int status = 0;  // 0: no response
  uint64_t bytes_in = 0, bytes_out = 0;
  double duration_ms = 0;
  std::string_view route, cluster, upstream_host, request_id;
  ResponseFlag flag = ResponseFlag::kNone;
  std::string_view details, client, tls_version, sni;
  // The configured access_log.fields, already written as JSON members (","name":value ...),
  // appended last.
  std::string_view fields;
};

// The record as one line of JSON, ending in "\n".
std::string format_access_json(const AccessRecord& r);

}  // namespace sy::log
