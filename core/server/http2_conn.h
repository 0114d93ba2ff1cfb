// A downstream HTTP/2 connection (h2c with prior knowledge, or h2 after ALPN): nghttp2 server
// session, one Stream per HTTP/2 stream, flow control tied to back-pressure, and the limits that
// close abusive connections (Rapid Reset, CONTINUATION and control-frame floods, HPACK bombs).
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <deque>
#include <memory>
#include <set>
#include <string>

#include "core/http2/frames.h"
#include "core/http2/out_body.h"
#include "core/net/socket.h"
#include "core/server/stream_owner.h"
#include "core/server/worker.h"

namespace sy::stats {
class Counter;
}

namespace sy::server {

class H2ServerStream;

class Http2Connection : public DownstreamConn, public net::SocketEvents {
 public:
  Http2Connection(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* socket,
                  ConnInfo info);
  ~Http2Connection() override;

  // Starts the session; PRELUDE: bytes already read (the client preface, when sniffed).
  void start(std::string_view prelude = {});

  // DownstreamConn
  void drain() override;
  void abort() override;
  const std::string& listener() const override { return slot_->name; }

  // net::SocketEvents
  void on_read(const char* data, size_t len) override;
  void on_eof() override;
  void on_error(int err) override;
  void on_drained() override;

  // Sends what nghttp2 has queued (not from inside nghttp2 callbacks: then it runs after).
  void flush();
  // Sends on the next loop turn: frames of several streams leave in one write, and a stream
  // that completes is closed only after the code that completed it has returned.
  void schedule_flush();
  Worker* worker() const { return worker_; }
  nghttp2_session* session() const { return session_; }
  http2::SendBatch& send_batch() { return batch_; }
  const ConnInfo& info() const { return info_; }
  const ListenerView* lr() const { return lr_; }
  void stream_closed(H2ServerStream* s);
  // GOAWAY with CODE, then close (streams in flight are reset).
  void terminate(uint32_t code);

 private:
  friend class H2ServerStream;
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                       void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int on_data_chunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                           size_t len, void* self);
  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* self);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame* f, int lib_error, void* self);

  // Counts a sliding-window event; true when the limit is exceeded.
  struct RateWindow {
    std::deque<std::chrono::steady_clock::time_point> events;
    bool exceeded(uint32_t count, std::chrono::milliseconds window);
  };
  // Closes an abusive connection: GOAWAY with CODE, counted in COUNTER. Safe in callbacks.
  int abuse(stats::Counter* counter, uint32_t code, const char* what);
  // The frame limits, checked on each frame header before nghttp2 sees the frame.
  bool check_frame(const http2::FrameScanner::Header& h);
  // RFC 9113 §5.1.1: a HEADERS frame on a stream id the client skipped (lower than one it
  // already opened, and never opened itself) is a connection error. True when H is one.
  bool skipped_stream(const http2::FrameScanner::Header& h);
  void close_now();
  void arm_idle();
  // Streams whose request head is complete start (filters, routing, the upstream) only once
  // everything the client has sent so far is processed: a stream it resets in the meantime
  // (Rapid Reset, CVE-2023-44487) is dropped before it costs anything beyond parsing.
  void schedule_dispatch();
  void dispatch_pending();
  void maybe_finish();

  Worker* worker_;
  std::shared_ptr<ListenerSlot> slot_;
  // The listener as it was when the connection was accepted (not the snapshot: see
  // ListenerView), while each stream routes with the slot's latest snapshot.
  ListenerView view_;
  const ListenerView* lr_ = &view_;
  net::Socket* socket_;
  ConnInfo info_;
  nghttp2_session* session_ = nullptr;
  http2::SendBatch batch_;
  net::Timer timer_;  // idle (no open stream)
  net::Timer flush_timer_;
  bool flush_scheduled_ = false;
  // Runs dispatch_pending on the next loop turn, after every read this turn (libuv reads a
  // socket several times per turn, and TLS hands records over one by one).
  net::Timer dispatch_timer_;
  std::deque<H2ServerStream*> pending_;  // complete heads waiting for dispatch, in order
  http2::FrameScanner scanner_{24};
  std::set<H2ServerStream*> streams_;  // open ones; each freed after it closes
  size_t open_streams_ = 0;
  bool in_recv_ = false;
  bool want_flush_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool send_blocked_ = false;  // the socket is above its high watermark
  // Abuse detection.
  uint32_t continuations_ = 0;
  uint32_t empty_frames_ = 0;
  RateWindow resets_, control_;
  uint32_t max_header_list_ = 0;
  bool abusive_ = false;
  // The highest stream id a client HEADERS frame named, and the latest ranges of ids it
  // skipped (kept bounded: an older skipped id is ignored by nghttp2 instead, as a closed one).
  static constexpr size_t kSkippedRanges = 16;
  int32_t max_stream_seen_ = 0;
  std::deque<std::pair<int32_t, int32_t>> skipped_;
};

}  // namespace sy::server
