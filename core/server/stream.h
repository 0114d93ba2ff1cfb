// One proxied request/response exchange: routing, module filters, the upstream request,
// response relay, local replies, back-pressure in both directions, and the access-log record.
// Its jobs are in files of their own: stream.cc (the request and the response),
// stream_upstream.cc (the upstream request), stream_record.cc (what the attribute table and
// the access log read, from its StreamInfo), request_normalise.cc (target and id helpers).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/filter_chain/chain.h"
#include "core/http1/parser.h"
#include "core/net/socket.h"
#include "core/runtime/runtime.h"
#include "core/server/stream_info.h"
#include "core/server/stream_owner.h"
#include "core/upstream/pool.h"

namespace sy::server {

class Stream : public upstream::Client, public filters::ChainSink {
 public:
  Stream(StreamOwner* conn, std::shared_ptr<const Runtime> rt, const ListenerRuntime* lr);
  ~Stream() override;

  // --- from the downstream connection ---
  void on_request_head(http1::MessageHead& head);
  void on_request_body(const char* data, size_t len);
  void on_request_trailers(http::HeaderMap& trailers);
  void on_request_complete();
  void on_downstream_drained();
  void on_downstream_reset();
  void on_tunnel_downstream(const char* data, size_t len);
  void on_tunnel_downstream_eof();
  // Writes a complete local response (when no response has started yet).
  void local_reply(int status, std::string_view body, std::string details, log::ResponseFlag flag,
                   const http::HeaderMap* extra = nullptr);
  bool response_started() const override { return response_ != ResponseState::kNone; }
  // Called once, when the stream ends for whatever reason: stats and the access log.
  void finalize();

  // --- upstream::Client ---
  void on_upstream_ready(upstream::Exchange* ex) override;
  void on_upstream_failure(Failure f, const std::string& details) override;
  int on_response_head(http1::MessageHead& head) override;
  void on_response_body(const char* data, size_t len) override;
  void on_response_trailers(http::HeaderMap& trailers) override;
  void on_response_complete() override;
  void on_upstream_reset(const std::string& details) override;
  void on_upstream_drained() override;
  void on_read_begin() override;
  void on_read_end() override;
  void on_tunnel_data(const char* data, size_t len) override;
  void on_tunnel_eof() override;

  // --- filters::ChainSink ---
  void request_headers_out(bool end_stream, int64_t body_length) override;
  void request_data_out(std::string& data, bool end_stream) override;
  void request_trailers_out() override;
  void response_headers_out(bool end_stream, int64_t body_length) override;
  void response_data_out(std::string& data, bool end_stream) override;
  void response_trailers_out() override;
  void pause_source(sy_direction_t dir) override;
  void resume_source(sy_direction_t dir) override;
  // A source is paused for any of several reasons (the filter chain's holds, the write buffer
  // on the other side, the body waiting for an upstream); it reads again only when none is left,
  // or one releasing its pause would let the bytes another holds back pile up without bound.
  void resume_client_if_free();
  void resume_upstream_if_free();
  bool local_reply_from_filter(int status, const http::HeaderMap& headers, std::string_view body,
                               std::string details) override;
  bool reset_from_filter(std::string details) override;
  bool set_response_flag(log::ResponseFlag flag) override;
  void clear_route_cache() override { route_dirty_ = true; }
  bool set_upstream_override(std::string_view host) override;
  bool attribute(std::string_view path, std::string* out) const override;
  const std::string& route_name() const override;
  uv_loop_t* loop() const override;
  int worker_index() const override;
  uint64_t buffer_limit() const override { return lr_->cfg->limits.buffered_body; }
  HeaderLimits header_limits() const override {
    return {lr_->cfg->limits.headers, lr_->cfg->limits.header_bytes};
  }
  const std::map<std::string, std::string>* config_metadata(
      sy_metadata_source_t source) const override;  // stream_metadata.cc
  // The runtime snapshot holds the listener's filter factories and, through them, the module
  // generations: one reference keeps all of them alive for posts and callouts.
  std::shared_ptr<const void> generations() const override { return rt_; }
  void pseudo_headers(sy_direction_t dir, std::vector<http::Header>& out) const override;

 private:
  void route_request(const http::HeaderMap& h);
  // Stops waiting for, timing and using the upstream (the stream answers without it).
  void drop_upstream();
  void send_direct_response();
  // A reply made by the proxy (direct response, no route) that the response filters see.
  void reply_through_filters(int status, http::HeaderMap headers, const std::string& body,
                             const char* details, log::ResponseFlag flag);
  void start_upstream(const http::HeaderMap& h, bool end_stream, int64_t body_length);
  void send_upstream_head();
  void send_response(int status, const http::HeaderMap& h, std::string_view body);
  void write_request_body(const char* data, size_t len);
  void finish_request_upstream();
  void on_response_timeout();
  void release_upstream(bool reusable);
  void stop_timer();
  void write_response_body(const char* data, size_t len);
  void write_response_end(const http::HeaderMap* trailers);
  void response_done();
  void count_response(int status);
  std::string build_log_line() const;
  AttributeSource attribute_source() const;
  // stream_metadata.cc: the attributes ABI 1.2 added, and the access log's `fields:`.
  bool attribute_since_1_2(std::string_view path, std::string* out) const;
  void append_log_fields(std::string& out) const;
  // The write buffer toward DIR's destination crossed a watermark: the filters hear of it.
  void write_watermark(sy_direction_t dir, bool above);

  StreamOwner* conn_;
  std::shared_ptr<const Runtime> rt_;
  const ListenerRuntime* lr_;
  int route_ = -1;
  bool route_dirty_ = false;
  std::shared_ptr<ClusterRuntime> cluster_;
  upstream::Pool* pool_ = nullptr;
  upstream::Exchange* upstream_ = nullptr;
  bool timer_armed_ = false;   // the response timeout runs on the connection's timer
  bool waiting_pool_ = false;  // acquire() was called and has not answered yet
  bool corked_ = false;
  std::string override_host_;
  StreamInfo info_;  // what the attributes and the access log read
  // The stream's filters (none is an empty chain): every phase of the request and the
  // response passes through it. After rt_, which holds the filter factories.
  filters::FilterChain chain_{this};

  // Request.
  std::optional<uint64_t> up_length_;      // the request body's length upstream, when known
  std::string body_buf_;                   // request body received before the upstream was ready
  bool chain_paused_[2] = {false, false};  // the filter chain paused this direction's source
  http::HeaderMap req_trailers_;
  std::optional<uint64_t> req_in_length_;
  bool req_in_chunked_ = false;
  bool req_end_at_head_ = false;
  bool up_chunked_ = false;  // the body goes upstream with no known length
  bool req_complete_ = false;
  // How far the request has gone towards the upstream. Sent implies ended: a retry goes back
  // from kSent to kEnded.
  enum class RequestOut : uint8_t {
    kOpen,   // more of the request may leave the filters
    kEnded,  // the last request phase left the filters
    kSent,   // the whole request is written upstream
  };
  RequestOut request_out_ = RequestOut::kOpen;
  void end_request_out() {
    if (request_out_ == RequestOut::kOpen) request_out_ = RequestOut::kEnded;
  }
  bool is_head_ = false;
  bool upgrade_ = false;
  bool http10_ = false;
  bool h2_ = false;  // the client speaks HTTP/2
  bool client_keep_alive_ = true;
  bool retried_ = false;
  uint64_t request_body_limit_ = 0;

  // Response.
  std::optional<uint64_t> resp_in_length_;
  bool filter_reply_pending_ = false;  // a filter's local reply waits to go through the chain
  // How far the response to the client has gone.
  enum class ResponseState : uint8_t {
    kNone,     // nothing sent to the client yet
    kStarted,  // the head went out; body and end follow
    kTunnel,   // a 101 went out: bytes flow raw until either side closes
    kDone,     // all of it is handed to the connection
  };
  ResponseState response_ = ResponseState::kNone;
  bool resp_close_ = false;  // the downstream connection closes after this response
  bool upstream_keep_alive_ = false;
  bool resp_end_at_head_ = false;
  bool finalized_ = false;
};

}  // namespace sy::server
