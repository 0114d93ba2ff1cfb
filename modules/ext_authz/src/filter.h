// One stream's ext_authz filter: holds the request at its headers (or once its body is
// buffered, with_request_body), asks the server over a callout stream on the stream's own
// worker, and applies the answer. The callout belongs to the stream, so a stream that ends
// first takes its callout with it (the host resets it; nothing is left behind).
#pragma once

#include <switchyard/module.h>

#include <string>
#include <switchyard/grpc_framing.hpp>
#include <utility>
#include <vector>

#include "config.h"
#include "decision.h"

namespace ext_authz {

class Filter {
 public:
  Filter(const Config* cfg, const RouteConfig* route) : cfg_(cfg), route_(route) {}
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;

  sy_filter_status_t on_request_headers(sy_stream_t* s, bool end_stream);
  sy_filter_status_t on_request_body(sy_stream_t* s, bool end_stream);
  sy_filter_status_t on_request_trailers(sy_stream_t* s);
  sy_filter_status_t on_response_headers(sy_stream_t* s);
  // The stream is gone: a callout still open is reset (a no-op if the host already did).
  void on_destroy();
  // Gives up on the check (after a failure inside the filter): the callout is reset.
  void abandon();

  // The callout's events (sy_stream_callout_callbacks_t); ARG is the Filter.
  static void cb_headers(void* arg, sy_callout_stream_t*, const sy_header_t* h, size_t n, bool end);
  static void cb_data(void* arg, sy_callout_stream_t*, sy_str_t data, bool end);
  static void cb_trailers(void* arg, sy_callout_stream_t*, const sy_header_t* t, size_t n);
  static void cb_complete(void* arg, sy_callout_stream_t*);
  static void cb_failure(void* arg, sy_callout_stream_t*, sy_callout_failure_t r, sy_str_t d);
  // HTTP mode's unary callout: the reply (no stream context), then the task that brings it
  // back into the stream.
  static void http_reply(void* arg, const sy_callout_response_t* r);
  static void http_reply_task(sy_stream_t* s, void* arg);

 private:
  enum class State { kIdle, kBuffering, kChecking, kAllowed, kDone };

  // Starts the check. Returns what the calling callback returns: WAITING while the answer is
  // out, or the outcome when it is known at once (the cluster is unknown).
  sy_filter_status_t start_check(sy_stream_t* s, sy_filter_status_t waiting, bool partial);
  // Applies D to the stream. SYNC: inside the callback that started the check (no resume then;
  // the return value says whether the request goes on).
  bool finish(sy_stream_t* s, const Decision& d, bool sync);
  bool apply_ok(sy_stream_t* s, const Decision& d);
  void reply(sy_stream_t* s, uint32_t status, const Decision& d, const char* details);
  void count(uint32_t metric);
  Decision decide();
  void take_headers(const sy_header_t* h, size_t n);
  void take_data(sy_str_t data);

  const Config* cfg_;
  const RouteConfig* route_;
  State state_ = State::kIdle;
  bool header_only_ = false;
  // The stream, as given to stream_callout_start: valid inside the callout's callbacks.
  sy_stream_t* stream_ = nullptr;
  sy_callout_stream_t* cs_ = nullptr;
  // HTTP mode: the unary callout (a whole request, so it goes with Content-Length, as Envoy's
  // does; simple servers do not all read a chunked request), and the way back to the stream.
  sy_callout_t* unary_ = nullptr;
  sy_stream_id_t id_ = 0;
  uint32_t index_ = SY_NO_FILTER;
  std::string failure_;

  // The server's answer as it arrives.
  uint32_t http_status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string grpc_status_, grpc_message_;
  sy::sdk::grpc::Deframer deframer_;
  std::string message_;
  int messages_ = 0;
  std::string body_;
  bool oversize_ = false;

  // OK's response_headers_to_add / allowed_client_headers_on_success, for the response.
  std::vector<HeaderOp> response_headers_;
};

}  // namespace ext_authz
