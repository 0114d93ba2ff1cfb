// A module's streaming callout (ABI 1.2 stream_callout_*): one request stream to a cluster on
// a worker, through that worker's pool for the cluster, with flow control both ways.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/filter_chain/callout_host.h"
#include "core/net/socket.h"
#include "core/upstream/pool.h"

namespace sy::server {

class Worker;

class StreamCallout final : public upstream::Client, public filters::CalloutTransport {
 public:
  // Starts one on worker W (its thread); nullptr when CLUSTER is not configured there. No
  // event reaches EVENTS before this returns.
  static StreamCallout* start(Worker* w, const std::string& cluster, http::HeaderMap headers,
                              uint64_t timeout_ms, filters::CalloutEvents* events);
  // Worker stop: every open callout of this thread fails with SY_CALLOUT_SHUTDOWN.
  static void shutdown_all();

  // filters::CalloutTransport
  bool send_data(std::string_view data, bool end_stream) override;
  bool send_trailers(const http::HeaderMap& trailers) override;
  void pause_reading(bool paused) override;
  void reset() override;

  // upstream::Client
  void on_upstream_ready(upstream::Exchange* ex) override;
  void on_upstream_failure(Failure f, const std::string& details) override;
  int on_response_head(http1::MessageHead& head) override;
  void on_response_body(const char* data, size_t len) override;
  void on_response_trailers(http::HeaderMap& trailers) override;
  void on_response_complete() override;
  void on_upstream_reset(const std::string& details) override;
  void on_upstream_drained() override;

 private:
  StreamCallout(Worker* w, upstream::Pool* pool, const std::string& cluster, bool tls,
                http::HeaderMap headers, filters::CalloutEvents* events);
  ~StreamCallout() override;
  // The request bytes waiting here or in the exchange are over the high watermark.
  bool above_high() const;
  void maybe_writable();
  void fail(sy_callout_failure_t reason, const std::string& details);
  // The module's body does not match its content-length: stop sending and fail the callout
  // (SY_CALLOUT_RESET) on the next loop turn. Returns false, for the send call.
  bool refuse(const std::string& details);
  // Sends the head with what the module queued (body, end, trailers) to the exchange.
  void send_request();
  // The module's first send after a held head: sends it all, deferring a failure.
  void send_held();
  // Lets go of the pool and schedules our deletion; no event after it.
  void close(bool reusable);
  net::Timer& timer(std::optional<net::Timer>& t);

  Worker* worker_;
  upstream::Pool* pool_;
  filters::CalloutEvents* events_;  // null once closed
  upstream::Exchange* ex_ = nullptr;
  std::string method_, path_, authority_;
  http::HeaderMap headers_;
  bool tls_;
  // The request side before a connection is ready.
  std::string queued_;
  bool end_queued_ = false;
  std::optional<http::HeaderMap> trailers_;
  std::optional<uint64_t> length_;  // the module's content-length
  uint64_t sent_ = 0;               // request body bytes the module has given
  bool broken_ = false;             // refused: nothing more is sent
  bool request_sent_ = false;       // the end of the request went to the exchange
  bool acquiring_ = false;
  bool paused_ = false;
  bool want_writable_ = false;  // a send reported "above high": on_writable is owed
  bool response_end_seen_ = false;
  bool keep_alive_ = false;
  bool starting_ = false;  // inside start(): failures wait for the next loop turn
  bool closed_ = false;
  bool head_held_ = false;  // ex_ is bound but the head waits for the module's first send
  // Made when first needed (timer()): most callouts have no deadline and never fail, and each
  // timer costs an allocation and a libuv handle to close.
  std::optional<net::Timer> timeout_;
  std::optional<net::Timer> defer_;
  net::Timer hold_;  // sends a held head on the next loop turn if the module sent nothing
};

}  // namespace sy::server
