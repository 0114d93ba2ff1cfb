// A downstream HTTP/1.1 connection: parsing, pipelining in order, keep-alive, timeouts, tunnels.
#pragma once

#include <memory>
#include <string>

#include "core/http1/parser.h"
#include "core/net/socket.h"
#include "core/server/worker.h"

namespace sy::server {

class Stream;

class Http1Connection : public DownstreamConn,
                        public net::SocketEvents,
                        public http1::ParserHandler {
 public:
  Http1Connection(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* socket);
  ~Http1Connection() override;

  void start();

  // --- for the stream ---
  int write(const uv_buf_t* bufs, unsigned n);
  int write(const std::string& s) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(s.data()), unsigned(s.size()));
    return write(&b, 1);
  }
  bool above_high() const {
    return socket_ && (socket_->above_high() || out_.size() > net::Socket::kHighWatermark);
  }
  // Between cork() and uncork(), writes collect into one buffer and leave in one write(2): a
  // response head and its first body bytes become one TCP segment instead of two.
  void cork() { ++cork_; }
  void uncork();
  // A timer for the stream in flight (its response timeout), so a request does not allocate one.
  void start_stream_timer(uint64_t ms, std::function<void()> fn) {
    timer_use_ = TimerUse::kStream;
    timer_.start(ms, std::move(fn));
  }
  void stop_stream_timer() {
    if (timer_use_ == TimerUse::kStream) stop_timer();
  }
  // Request-body back-pressure: stop / start reading from the client.
  void pause_reading();
  void resume_reading();
  // The response is fully written (or queued). CLOSE: the connection must not be reused.
  void on_response_done(bool close);
  // The stream cannot go on (reset after the response started): close without more bytes.
  void abort() override;
  // After a 101: bytes flow raw both ways.
  void enter_tunnel();
  void end_tunnel();
  const std::string& peer_ip() const { return peer_ip_; }
  const ListenerSlot& slot() const { return *slot_; }
  Worker* worker() const { return worker_; }

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
  // The snapshot the connection was accepted under: its limits, timeouts and stats stay fixed
  // for the connection's life, while each stream routes with the slot's latest snapshot.
  std::shared_ptr<const Runtime> rt_;
  const ListenerRuntime* lr_;
  net::Socket* socket_;
  http1::Parser parser_;
  net::Timer timer_;
  std::unique_ptr<Stream> stream_;
  std::string pending_;  // bytes read while a response is still being produced
  std::string out_;      // corked writes
  int cork_ = 0;
  std::string peer_ip_;
  bool awaiting_ = false;       // a request was parsed completely; waiting for its response
  bool response_done_ = false;  // the current stream's response is out
  bool close_after_ = false;
  bool closed_ = false;
  bool in_next_ = false;
  bool stream_paused_ = false;  // the stream asked us to stop reading
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
