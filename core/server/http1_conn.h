// A downstream HTTP/1.1 connection: parsing, pipelining in order, keep-alive, timeouts, tunnels.
#pragma once

#include <memory>
#include <string>

#include "core/http1/parser.h"
#include "core/net/socket.h"
#include "core/server/stream_owner.h"
#include "core/server/worker.h"

namespace sy::server {

class Stream;

class Http1Connection : public DownstreamConn,
                        public StreamOwner,
                        public net::SocketEvents,
                        public http1::ParserHandler {
 public:
  // SOCKET is connected (and, under TLS, past its handshake); INFO describes it.
  Http1Connection(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* socket,
                  ConnInfo info);
  ~Http1Connection() override;

  // Starts reading; PRELUDE: bytes already read from the socket (protocol detection).
  void start(std::string_view prelude = {});

  // --- StreamOwner ---
  Worker* worker() const override { return worker_; }
  const ConnInfo& info() const override { return info_; }
  void send_continue() override;
  void send_response_head(const ResponseHead& head) override;
  void send_response_body(const char* data, size_t len) override;
  void send_response_end(const http::HeaderMap* trailers) override;
  // The response is fully written (or queued).
  void on_response_done() override;
  // HTTP/1 cannot reset one exchange: the connection closes without more bytes.
  void reset_stream() override { abort(); }
  bool above_high() const override {
    return socket_ && (socket_->above_high() || out_.size() > net::Socket::kHighWatermark);
  }
  bool admit_stream() override {
    stream_lease_ = slot_->clients->take(info_.peer_ip, ClientLease::kStream,
                                         lr_->cfg->limits.streams_per_client);
    return stream_lease_ != nullptr;
  }
  // Request-body back-pressure: stop / start reading from the client.
  void pause_reading() override;
  void resume_reading() override;
  // The stream in flight's response timeout runs on the connection's one timer, so a request
  // does not allocate one.
  void start_stream_timer(uint64_t ms, std::function<void()> fn) override {
    timer_use_ = TimerUse::kStream;
    timer_.start(ms, std::move(fn));
  }
  void stop_stream_timer() override {
    if (timer_use_ == TimerUse::kStream) stop_timer();
  }
  // Between cork() and uncork(), writes collect into one buffer and leave in one write(2): a
  // response head and its first body bytes become one TCP segment instead of two.
  void cork() override { ++cork_; }
  void uncork() override;
  // After a 101: bytes flow raw both ways.
  void enter_tunnel() override;
  void end_tunnel() override;
  void tunnel_write(const char* data, size_t len) override {
    uv_buf_t b = uv_buf_init(const_cast<char*>(data), unsigned(len));
    write(&b, 1);
  }

  // Close now.
  void abort() override;
  // Close once idle (drain / reload of a removed listener).
  void drain() override;
  const std::string& listener() const override { return slot_->name; }

  // net::SocketEvents
  void on_read(const char* data, size_t len) override;
  void on_eof() override;
  void on_error(int err) override;
  void on_drained() override;
  // http1::ParserHandler
  int on_head(http1::MessageHead& head) override;
  void on_body(const char* data, size_t len) override;
  void on_trailers(http::HeaderMap& trailers) override;
  void on_complete() override;

 private:
  int write(const uv_buf_t* bufs, unsigned n);
  int write(const std::string& s) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(s.data()), unsigned(s.size()));
    return write(&b, 1);
  }
  void parse(const char* data, size_t len);
  void next();
  void finish_stream();
  void reject(int status, const std::string& reason);
  void close_now();
  void update_reading();
  void arm_idle();
  void on_header_timeout();
  void arm_body_timer();

  Worker* worker_;
  std::shared_ptr<ListenerSlot> slot_;
  // The listener as it was when the connection was accepted (not the snapshot: see
  // ListenerView), while each stream routes with the slot's latest snapshot.
  ListenerView view_;
  const ListenerView* lr_ = &view_;
  net::Socket* socket_;
  http1::Parser parser_;
  net::Timer timer_;
  std::unique_ptr<Stream> stream_;
  std::shared_ptr<ClientLease> stream_lease_;  // the stream's place under streams_per_client
  std::string pending_;  // bytes read while a response is still being produced
  std::string out_;      // corked writes
  int cork_ = 0;
  ConnInfo info_;
  bool resp_chunked_ = false;   // the current response body goes chunked
  bool awaiting_ = false;       // a request was parsed completely; waiting for its response
  bool response_done_ = false;  // the current stream's response is out
  bool close_after_ = false;
  bool closed_ = false;
  bool in_next_ = false;
  bool stream_paused_ = false;  // the stream asked us to stop reading
  bool body_pending_ = false;   // the current request's body has not all arrived
  bool tunnel_ = false;
  bool upgrade_pending_ = false;
  bool header_timer_ = false;
  // What the one connection timer is timing right now.
  enum class TimerUse { kNone, kIdle, kHeaders, kBody, kStream };
  TimerUse timer_use_ = TimerUse::kNone;
  void stop_timer() {
    timer_.stop();
    timer_use_ = TimerUse::kNone;
  }
};

}  // namespace sy::server
