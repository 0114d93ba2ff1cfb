// Downstream HTTP/2 on nghttp2.
//
// Why this file is over 600 lines: it is one nghttp2 server session and the streams on it, and
// the two halves work on each other's private state. The session's callbacks (the connection's
// half) build each stream's request head, arm its timers and dispatch it; the stream's half
// (H2ServerStream) submits to the session and reads the connection's limits, client table and
// state. Split at that line, each file would need the other's internals in a header, which is
// more coupling, not less. What stands alone already lives elsewhere: frame checks, header
// lists and the DATA source in core/http2/, the proxying in Stream.
#include "core/server/http2_conn.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/http2/frames.h"
#include "core/log/log.h"
#include "core/server/stream.h"

namespace sy::server {

// One HTTP/2 stream: the request as it arrives, the Stream proxying it, and the response bytes
// waiting for flow-control credit.
class H2ServerStream final : public StreamOwner {
 public:
  H2ServerStream(Http2Connection* c, int32_t id) : conn_(c), id_(id) {}

  StreamWorker* worker() const override { return conn_->worker(); }
  const ConnInfo& info() const override { return conn_->info(); }

  void send_continue() override {
    if (dead()) return;
    http2::NvList nv;
    nv.add(":status", "100");
    nghttp2_submit_headers(conn_->session(), NGHTTP2_FLAG_NONE, id_, nullptr, nv.data(), nv.size(),
                           nullptr);
    conn_->schedule_flush();
  }

  void send_response_head(const ResponseHead& h) override {
    if (dead()) return;
    status_ = std::to_string(h.status);
    http2::NvList nv;
    nv.add(":status", status_);
    for (const auto& x : *h.headers) {
      if (x.name.empty() || x.name[0] == ':' || x.name == "content-length" ||
          http2::connection_specific(x.name) || x.name == "te")
        continue;
      nv.add(x.name, x.value);
    }
    bool bodyless = h.status == 204 || h.status == 304;
    // A response that ends with its HEADERS needs no length (a gRPC trailers-only response
    // must look exactly like that).
    if (h.content_length && !bodyless && !(h.end_stream && *h.content_length == 0)) {
      length_ = std::to_string(*h.content_length);
      nv.add("content-length", length_);
    }
    if (h.end_stream) {
      nghttp2_submit_response(conn_->session(), id_, nv.data(), nv.size(), nullptr);
    } else {
      nghttp2_data_provider dp = body_.provider();
      nghttp2_submit_response(conn_->session(), id_, nv.data(), nv.size(), &dp);
    }
    conn_->schedule_flush();
  }

  void send_response_body(const char* data, size_t len) override {
    if (dead()) return;
    wake(body_.append(data, len));
  }

  void send_response_end(const http::HeaderMap* trailers) override {
    if (dead() || body_.ended()) return;
    wake(body_.end(trailers));
  }

  void on_response_done() override { response_done_ = true; }

  bool admit_stream() override {
    lease_ = conn_->slot_->clients->take(conn_->info_.peer_ip, ClientLease::kStream,
                                         conn_->lr_->cfg->limits.streams_per_client);
    return lease_ != nullptr;
  }

  void reset_stream() override {
    if (dead()) return;
    nghttp2_submit_rst_stream(conn_->session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    conn_->schedule_flush();
  }

  bool above_high() const override { return body_.above_high(); }
  void pause_reading() override {
    paused_ = true;
    stop_request_timer();  // the wait is ours, not the client's
  }
  void resume_reading() override {
    paused_ = false;
    if (req_timer_ && !request_ended_ && !dead())
      arm_request_timer(uint64_t(conn_->lr()->cfg->timeouts.request_body_idle.count()),
                        "request body not received in time");
    if (dead() || unconsumed_ == 0) return;
    // The window opens again only now: this is what holds a fast client back.
    nghttp2_session_consume(conn_->session(), id_, unconsumed_);
    unconsumed_ = 0;
    conn_->schedule_flush();
  }

  void start_stream_timer(uint64_t ms, std::function<void()> fn) override {
    if (!timer_) timer_ = std::make_unique<net::Timer>(conn_->worker()->loop());
    timer_->start(ms, std::move(fn));
  }
  void stop_stream_timer() override {
    if (timer_) timer_->stop();
  }

  // Request bytes for the stream; returns how many can be acknowledged (window) now.
  // The request must keep arriving: its head within timeouts.request_headers, then its body
  // without pausing longer than timeouts.request_body_idle (the same bounds as HTTP/1.1). What
  // arrives late is answered 408 (or, once a response started, reset). The clock stops while
  // the proxy holds the client back (pause_reading): that wait is not the client's.
  void arm_request_timer(uint64_t ms, const char* what) {
    if (!req_timer_) req_timer_ = std::make_unique<net::Timer>(conn_->worker()->loop());
    req_timer_->start(ms, [this, what] {
      if (dead() || request_ended_) return;
      (head_done_ ? conn_->lr()->stats.rq_body_timeout : conn_->lr()->stats.rq_header_timeout)
          ->inc();
      if (stream_ && !response_done_) {
        stream_->local_reply(408, "request timeout\n", what, log::ResponseFlag::kNone);
        // The client is told to stop sending once the 408 is out (see on_frame_send).
        return;
      }
      if (!head_done_) {
        // A header block left open blocks the whole connection (nothing else may be sent
        // until it ends), so the connection goes, not just the stream.
        conn_->terminate(NGHTTP2_NO_ERROR);
        return;
      }
      nghttp2_submit_rst_stream(conn_->session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
      conn_->schedule_flush();
    });
  }
  void stop_request_timer() {
    if (req_timer_) req_timer_->stop();
  }

  void on_data(const uint8_t* data, size_t len) {
    if (!paused_ && req_timer_ && !request_ended_)
      arm_request_timer(uint64_t(conn_->lr()->cfg->timeouts.request_body_idle.count()),
                        "request body not received in time");
    if (!stream_ && head_done_) {
      // Not dispatched yet: kept, and not acknowledged, so the window bounds what is kept.
      early_body_.append(reinterpret_cast<const char*>(data), len);
      return;
    }
    deliver_body(reinterpret_cast<const char*>(data), len);
  }

  void deliver_body(const char* data, size_t len) {
    if (stream_) stream_->on_request_body(data, len);
    if (paused_ && !closed_)
      unconsumed_ += len;
    else
      nghttp2_session_consume(conn_->session(), id_, len);
  }

  // The request head arrived in an earlier read and the client has not reset the stream since:
  // the Stream starts, and takes what else arrived meanwhile (body, trailers, its end).
  void dispatch() {
    stream_ = std::make_unique<Stream>(this, conn_->slot_->runtime, conn_->slot_->lr);
    stream_->on_request_head(head_);
    if (dead()) return;
    if (!early_body_.empty()) {
      std::string body = std::move(early_body_);
      early_body_.clear();
      deliver_body(body.data(), body.size());
      if (dead()) return;
    }
    // Trailers count once their block is whole, which the end of the request tells.
    if (request_ended_ && !trailers_in_.empty()) stream_->on_request_trailers(trailers_in_);
    if (request_ended_ && !dead()) stream_->on_request_complete();
  }

  // The response has bytes queued that the client is not taking (its window is closed, or it
  // stopped reading): timeouts.response_send_idle without progress resets the stream. Armed
  // while bytes are queued, re-armed whenever a DATA frame of the stream leaves.
  void arm_send_timer() {
    if (dead() || body_.pending() == 0) {
      if (send_timer_) send_timer_->stop();
      return;
    }
    if (!send_timer_) send_timer_ = std::make_unique<net::Timer>(conn_->worker()->loop());
    send_timer_->start(uint64_t(conn_->lr()->cfg->timeouts.response_send_idle.count()), [this] {
      if (dead() || body_.pending() == 0) return;
      conn_->lr()->stats.rs_send_timeout->inc();
      if (conn_->send_blocked_) {
        // The client reads nothing at all: a reset could not leave either.
        conn_->abort();
        return;
      }
      SY_DEBUG("h2 %s: stream %d: the client took none of the response for %lld ms: reset",
               conn_->info().peer_ip.c_str(), id_,
               static_cast<long long>(conn_->lr()->cfg->timeouts.response_send_idle.count()));
      nghttp2_submit_rst_stream(conn_->session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
      conn_->schedule_flush();
    });
  }

  bool dead() const { return closed_ || conn_->closed_; }
  // RESUME: nghttp2 had deferred the stream for want of data, and now has some.
  void wake(bool resume) {
    if (resume) nghttp2_session_resume_data(conn_->session(), id_);
    if (send_timer_ == nullptr || !send_timer_->active()) arm_send_timer();
    conn_->schedule_flush();
  }

  Http2Connection* conn_;
  int32_t id_;
  http1::MessageHead head_;  // the request as its HEADERS arrive
  std::string authority_, cookie_;
  size_t header_bytes_ = 0;
  bool head_done_ = false;  // later HEADERS are trailers
  http::HeaderMap trailers_in_;
  std::string early_body_;  // request body that arrived before dispatch (not acknowledged)
  std::unique_ptr<Stream> stream_;
  // The response body waiting for flow-control credit; below its low watermark again, the
  // producer (the upstream) hears it.
  http2::OutBody body_{[](void* self) {
                         auto* s = static_cast<H2ServerStream*>(self);
                         if (s->stream_) s->stream_->on_downstream_drained();
                       },
                       this};
  std::string status_, length_;
  bool response_done_ = false;
  bool request_ended_ = false;
  bool closed_ = false;
  bool paused_ = false;
  size_t unconsumed_ = 0;
  std::unique_ptr<net::Timer> timer_;
  std::unique_ptr<net::Timer> req_timer_;
  std::unique_ptr<net::Timer> send_timer_;  // timeouts.response_send_idle
  std::shared_ptr<ClientLease> lease_;      // the stream's place under streams_per_client
};

bool Http2Connection::RateWindow::exceeded(uint32_t count, std::chrono::milliseconds window) {
  auto now = std::chrono::steady_clock::now();
  events.push_back(now);
  while (!events.empty() && now - events.front() > window) events.pop_front();
  return events.size() > count;
}

Http2Connection::Http2Connection(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* socket,
                                 ConnInfo info)
    : worker_(w),
      slot_(std::move(slot)),
      view_(ListenerView::of(*slot_)),
      socket_(socket),
      info_(std::move(info)),
      timer_(w->loop()),
      flush_timer_(w->loop()),
      dispatch_timer_(w->loop()) {
  socket_->set_events(this);
  info_.protocol = "HTTP/2";
  lr_->stats.cx_total->inc();
  lr_->stats.cx_active->inc();
  lr_->stats.cx_http2->inc();
  worker_->add(this);

  const config::Http2Settings& hs = lr_->cfg->http2;
  max_header_list_ =
      hs.max_header_list_size ? hs.max_header_list_size : lr_->cfg->limits.header_bytes;
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
  http2::SendBatch::install<Http2Connection>(cb);
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  // Window updates follow what the upstream side has taken, not what arrived.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // nghttp2's own flood limits stay as a backstop above ours, so ours (with counters) fire first.
  nghttp2_option_set_max_continuations(opt, hs.max_continuation_frames + 1);
  nghttp2_option_set_stream_reset_rate_limit(opt, uint64_t(hs.max_resets.count) * 2 + 10,
                                             uint64_t(hs.max_resets.count) + 10);
  nghttp2_session_server_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);

  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, hs.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, hs.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, max_header_list_},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        int32_t(hs.initial_connection_window));
}

Http2Connection::~Http2Connection() {
  if (socket_) socket_->close();
  if (session_) nghttp2_session_del(session_);
}

void Http2Connection::start(std::string_view prelude) {
  socket_->read_start();
  arm_idle();
  if (!prelude.empty())
    on_read(prelude.data(), prelude.size());
  else
    flush();
}

void Http2Connection::arm_idle() {
  timer_.start(uint64_t(lr_->cfg->timeouts.idle.count()), [this] {
    if (open_streams_ > 0) return;
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    flush();
    close_now();
  });
}

void Http2Connection::on_read(const char* data, size_t len) {
  if (closed_) return;
  lr_->stats.bytes_rx->inc(len);
  if (!scanner_.scan(reinterpret_cast<const uint8_t*>(data), len,
                     [this](const http2::FrameScanner::Header& h) { return check_frame(h); })) {
    // An abusive peer: nothing more of what it sent is processed.
    flush();
    close_now();
    return;
  }
  in_recv_ = true;
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  in_recv_ = false;
  if (rv < 0) {
    if (!abusive_) {
      if (rv == NGHTTP2_ERR_FLOODED) {
        lr_->stats.h2_control_flood->inc();
      } else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
        lr_->stats.h2_continuation_flood->inc();
      } else {
        lr_->stats.h2_protocol_error->inc();
      }
      SY_DEBUG("h2 %s: closing: %s", info_.peer_ip.c_str(), nghttp2_strerror(int(rv)));
      nghttp2_session_terminate_session(
          session_, rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    }
    flush();
    close_now();
    return;
  }
  flush();
}

void Http2Connection::schedule_dispatch() {
  if (closed_ || dispatch_timer_.active()) return;
  dispatch_timer_.start(0, [this] { dispatch_pending(); });
}

void Http2Connection::dispatch_pending() {
  // One at a time from the front: a stream that closes meanwhile leaves the queue itself
  // (stream_closed), so nothing here outlives its stream.
  while (!pending_.empty() && !closed_) {
    H2ServerStream* s = pending_.front();
    pending_.pop_front();
    s->dispatch();
  }
  flush();
}

void Http2Connection::schedule_flush() {
  if (closed_ || flush_scheduled_) return;
  flush_scheduled_ = true;
  flush_timer_.start(0, [this] {
    flush_scheduled_ = false;
    flush();
  });
}

void Http2Connection::flush() {
  if (closed_) return;
  if (in_recv_) {
    want_flush_ = true;  // nghttp2 must not send from inside its receive callbacks
    return;
  }
  if (send_blocked_ || batch_.filling()) return;
  want_flush_ = false;
  // Every frame ready now goes out in one write (a batch caps at SendBatch::kMax, then the
  // next one follows while the socket takes them).
  while (true) {
    if (socket_->above_high()) {
      // Stop producing frames: flow control and the per-stream buffers hold the rest.
      send_blocked_ = true;
      break;
    }
    if (batch_.fill(session_) != 0) {
      close_now();
      return;
    }
    if (batch_.empty()) break;
    lr_->stats.bytes_tx->inc(batch_.bytes().size());
    socket_->write(batch_.bytes().data(), batch_.bytes().size());
    batch_.clear();
  }
  maybe_finish();
}

void Http2Connection::maybe_finish() {
  if (closed_) return;
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
    close_now();
    return;
  }
  if (draining_ && open_streams_ == 0 && !nghttp2_session_want_write(session_)) close_now();
}

void Http2Connection::on_drained() {
  send_blocked_ = false;
  flush();
}

void Http2Connection::on_eof() { close_now(); }
void Http2Connection::on_error(int) { close_now(); }

void Http2Connection::terminate(uint32_t code) {
  if (closed_) return;
  nghttp2_session_terminate_session(session_, code);
  flush();
  close_now();
}

void Http2Connection::drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  // Streams already opened finish; the client learns it must open new ones elsewhere.
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  flush();
  if (!closed_ && open_streams_ == 0) close_now();
}

void Http2Connection::abort() {
  if (closed_) return;
  if (socket_) {
    socket_->close();
    socket_ = nullptr;
  }
  close_now();
}

void Http2Connection::close_now() {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  dispatch_timer_.stop();
  pending_.clear();
  std::set<H2ServerStream*> streams;
  streams.swap(streams_);
  for (H2ServerStream* s : streams) {
    s->closed_ = true;
    if (s->stream_) {
      if (!s->response_done_) s->stream_->on_downstream_reset();
      s->stream_->finalize();
    }
    worker_->defer_delete([s] { delete s; });
  }
  open_streams_ = 0;
  if (socket_) {
    socket_->end();  // what is queued (a GOAWAY) goes out first
    socket_ = nullptr;
  }
  lr_->stats.cx_active->dec();
  worker_->remove(this);
}

void Http2Connection::stream_closed(H2ServerStream* s) {
  s->closed_ = true;
  s->lease_.reset();
  if (s->stream_) {
    if (!s->response_done_) s->stream_->on_downstream_reset();
    s->stream_->finalize();
  } else if (s->head_done_) {
    // Reset before its dispatch: no filter saw it and nothing left for the upstream.
    auto it = std::find(pending_.begin(), pending_.end(), s);
    if (it != pending_.end()) pending_.erase(it);
    lr_->stats.h2_reset_before_dispatch->inc();
  }
  // Bytes the stream never acknowledged still count against the connection window.
  size_t unconsumed = s->unconsumed_ + s->early_body_.size();
  if (unconsumed && !closed_) nghttp2_session_consume_connection(session_, unconsumed);
  streams_.erase(s);
  // Its Stream may be on the stack right now (this runs from inside nghttp2 send/receive).
  worker_->defer_delete([s] { delete s; });
  if (open_streams_ > 0) --open_streams_;
  if (open_streams_ == 0 && !closed_) arm_idle();
}

int Http2Connection::abuse(stats::Counter* counter, uint32_t code, const char* what) {
  if (!abusive_) {
    abusive_ = true;
    counter->inc();
    SY_INFO("h2 %s: %s: closing the connection (%s)", info_.peer_ip.c_str(), what,
            http2::error_name(code));
    nghttp2_session_terminate_session(session_, code);
  }
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

// ---- nghttp2 callbacks ----

bool Http2Connection::check_frame(const http2::FrameScanner::Header& h) {
  const config::Http2Settings& hs = lr_->cfg->http2;
  auto kill = [this](stats::Counter* counter, const char* what) {
    abuse(counter, NGHTTP2_ENHANCE_YOUR_CALM, what);
    return false;
  };
  switch (h.type) {
    case NGHTTP2_HEADERS:
      continuations_ = 0;
      if (skipped_stream(h)) {
        abuse(lr_->stats.h2_protocol_error, NGHTTP2_PROTOCOL_ERROR,
              "HEADERS on a stream id lower than one already opened");
        return false;
      }
      break;
    case NGHTTP2_CONTINUATION:
      // A header block split into endless CONTINUATION frames pins memory and CPU.
      if (++continuations_ > hs.max_continuation_frames)
        return kill(lr_->stats.h2_continuation_flood, "CONTINUATION flood");
      break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PRIORITY:
      // Each of these costs us work (an ACK, a tree update) and the client nothing.
      if (control_.exceeded(hs.max_control_frames.count, hs.max_control_frames.window))
        return kill(lr_->stats.h2_control_flood, "control frame flood");
      break;
    case NGHTTP2_RST_STREAM:
      // Rapid Reset (CVE-2023-44487): streams opened and cancelled at once cost the server
      // the work of starting each one; past the budget the connection goes.
      if (resets_.exceeded(hs.max_resets.count, hs.max_resets.window))
        return kill(lr_->stats.h2_rapid_reset, "rapid reset");
      break;
    default:
      break;
  }
  bool empty =
      h.length == 0 && !(h.flags & NGHTTP2_FLAG_END_STREAM) &&
      (h.type == NGHTTP2_DATA || ((h.type == NGHTTP2_HEADERS || h.type == NGHTTP2_CONTINUATION) &&
                                  !(h.flags & NGHTTP2_FLAG_END_HEADERS)));
  if (empty) {
    if (++empty_frames_ > hs.max_empty_frames)
      return kill(lr_->stats.h2_empty_frame_flood, "empty frame flood");
  } else if (h.type == NGHTTP2_DATA || h.type == NGHTTP2_HEADERS) {
    empty_frames_ = 0;
  }
  return true;
}

bool Http2Connection::skipped_stream(const http2::FrameScanner::Header& h) {
  // Only client-initiated (odd) ids open streams here; nghttp2 refuses the others itself.
  if (h.stream_id <= 0 || !(h.stream_id & 1)) return false;
  if (h.stream_id > max_stream_seen_) {
    // Ids between the last one and this one can never be opened now (they are closed).
    if (h.stream_id > max_stream_seen_ + 2) {
      skipped_.emplace_back(max_stream_seen_ + 2, h.stream_id - 2);
      if (skipped_.size() > kSkippedRanges) skipped_.pop_front();
    }
    max_stream_seen_ = h.stream_id;
    return false;
  }
  // Lower than the highest: trailers of an open stream, or late frames of a closed one
  // (nghttp2 deals with both), unless the id was skipped.
  return std::any_of(skipped_.begin(), skipped_.end(), [&h](const auto& r) {
    return h.stream_id >= r.first && h.stream_id <= r.second;
  });
}

int Http2Connection::on_begin_headers(nghttp2_session* session, const nghttp2_frame* f,
                                      void* self) {
  auto* c = static_cast<Http2Connection*>(self);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* s = new H2ServerStream(c, f->hd.stream_id);
  s->head_.major = 2;
  s->head_.minor = 0;
  c->streams_.insert(s);
  ++c->open_streams_;
  c->timer_.stop();
  nghttp2_session_set_stream_user_data(session, f->hd.stream_id, s);
  // A header block in one frame (the usual case) needs no clock: it is already whole.
  if (!(f->hd.flags & NGHTTP2_FLAG_END_HEADERS))
    s->arm_request_timer(uint64_t(c->lr_->cfg->timeouts.request_headers.count()),
                         "request headers not received in time");
  return 0;
}

int Http2Connection::on_header(nghttp2_session* session, const nghttp2_frame* f,
                               const uint8_t* name, size_t namelen, const uint8_t* value,
                               size_t valuelen, uint8_t, void* self) {
  auto* c = static_cast<Http2Connection*>(self);
  auto* s =
      static_cast<H2ServerStream*>(nghttp2_session_get_stream_user_data(session, f->hd.stream_id));
  if (!s) return 0;
  // RFC 7541 §4.1 size (name + value + 32): what an HPACK bomb inflates, counted as decoded.
  s->header_bytes_ += namelen + valuelen + 32;
  if (s->header_bytes_ > c->max_header_list_)
    return c->abuse(c->lr_->stats.h2_header_list_too_large, NGHTTP2_ENHANCE_YOUR_CALM,
                    "header list over max_header_list_size");
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (s->head_done_) {
    if (n[0] != ':') s->trailers_in_.add(n, v);
    return 0;
  }
  if (c->lr_->cfg->limits.headers && s->head_.headers.size() >= c->lr_->cfg->limits.headers) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                              NGHTTP2_ENHANCE_YOUR_CALM);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (n[0] == ':') {
    if (n == ":method")
      s->head_.method.assign(v);
    else if (n == ":path")
      s->head_.target.assign(v);
    else if (n == ":authority")
      s->authority_.assign(v);
    return 0;  // :scheme: the listener knows whether it is TLS
  }
  if (n == "cookie") {
    // HTTP/2 splits cookies into crumbs (RFC 9113 §8.2.3); HTTP/1 wants one header.
    if (!s->cookie_.empty()) s->cookie_ += "; ";
    s->cookie_.append(v);
    return 0;
  }
  if (n == "content-length") {
    uint64_t len = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), len);
    if (r.ec == std::errc() && r.ptr == v.data() + v.size()) s->head_.content_length = len;
  }
  s->head_.headers.add(n, v);
  return 0;
}

int Http2Connection::on_frame_recv(nghttp2_session* session, const nghttp2_frame* f, void* self) {
  auto* c = static_cast<Http2Connection*>(self);
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
  auto* s =
      static_cast<H2ServerStream*>(nghttp2_session_get_stream_user_data(session, f->hd.stream_id));
  if (!s) return 0;
  bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (f->hd.type == NGHTTP2_HEADERS) {
    if (!s->head_done_) {
      s->head_done_ = true;
      http::HeaderMap& h = s->head_.headers;
      if (!s->cookie_.empty()) h.add("cookie", s->cookie_);
      // :authority wins over a host header beside it (RFC 9113 §8.3.1): routing and the
      // upstream must see one authority, or a request could be routed on one name and served
      // as another. A conflicting host is replaced, as Envoy does; without :authority, host is
      // the authority.
      if (!s->authority_.empty()) h.set("host", s->authority_);
      // Without END_STREAM and without content-length, the body's length is unknown (HTTP/1
      // would say chunked).
      s->head_.chunked = !end && !s->head_.content_length;
      // Streams route with the newest snapshot, like HTTP/1 requests on a kept-alive connection.
      if (end)
        s->stop_request_timer();
      else  // the body must keep coming
        s->arm_request_timer(uint64_t(c->lr_->cfg->timeouts.request_body_idle.count()),
                             "request body not received in time");
      c->pending_.push_back(s);
      c->schedule_dispatch();
    } else if (s->stream_ && !s->trailers_in_.empty()) {
      s->stream_->on_request_trailers(s->trailers_in_);
    }
  }
  if (end && !s->request_ended_) {
    s->request_ended_ = true;
    s->stop_request_timer();
    if (s->stream_ && !s->closed_) s->stream_->on_request_complete();
  }
  return 0;
}

int Http2Connection::on_data_chunk(nghttp2_session* session, uint8_t, int32_t id,
                                   const uint8_t* data, size_t len, void*) {
  auto* s = static_cast<H2ServerStream*>(nghttp2_session_get_stream_user_data(session, id));
  if (!s) {
    nghttp2_session_consume_connection(session, len);
    return 0;
  }
  s->on_data(data, len);
  return 0;
}

int Http2Connection::on_stream_close(nghttp2_session* session, int32_t id, uint32_t, void* self) {
  auto* c = static_cast<Http2Connection*>(self);
  auto* s = static_cast<H2ServerStream*>(nghttp2_session_get_stream_user_data(session, id));
  if (!s) return 0;
  nghttp2_session_set_stream_user_data(session, id, nullptr);
  c->stream_closed(s);
  return 0;
}

int Http2Connection::on_frame_send(nghttp2_session* session, const nghttp2_frame* f, void* self) {
  auto* c = static_cast<Http2Connection*>(self);
  if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
    c->lr_->stats.h2_refused_stream->inc();
  if (f->hd.type == NGHTTP2_DATA) {
    // The client took response bytes: the send-idle clock starts again (or stops when
    // nothing more is queued).
    auto* s = static_cast<H2ServerStream*>(
        nghttp2_session_get_stream_user_data(session, f->hd.stream_id));
    if (s) s->arm_send_timer();
  }
  if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
      (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    auto* s = static_cast<H2ServerStream*>(
        nghttp2_session_get_stream_user_data(session, f->hd.stream_id));
    // The response is complete but the client is still sending: tell it to stop (RFC 9113
    // §8.1), now that the response is on the wire ahead of the RST_STREAM.
    if (s && !s->request_ended_)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

int Http2Connection::on_invalid_frame(nghttp2_session*, const nghttp2_frame* f, int lib_error,
                                      void* self) {
  auto* c = static_cast<Http2Connection*>(self);
  // Malformed requests (bad pseudo-headers, connection-specific or upper-case names, a wrong
  // content-length): nghttp2 resets that stream with PROTOCOL_ERROR; the connection lives on.
  c->lr_->stats.h2_stream_error->inc();
  SY_DEBUG("h2 %s: stream %d: %s", c->info_.peer_ip.c_str(), f->hd.stream_id,
           nghttp2_strerror(lib_error));
  return 0;
}

}  // namespace sy::server
