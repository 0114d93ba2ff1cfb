// Downstream HTTP/1.1 connection.
#include "core/server/http1_conn.h"

#include "core/http1/writer.h"
#include "core/log/log.h"
#include "core/server/stream.h"

namespace sy::server {
namespace {

http1::Limits limits_of(const ListenerRuntime* lr) {
  return {lr->cfg->limits.header_bytes, lr->cfg->limits.headers};
}

constexpr size_t kMaxPipelined = 64 * 1024;

}  // namespace

Http1Connection::Http1Connection(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* socket,
                                 ConnInfo info)
    : worker_(w),
      slot_(std::move(slot)),
      view_(ListenerView::of(*slot_)),
      socket_(socket),
      parser_(HTTP_REQUEST, this, limits_of(slot_->lr)),
      timer_(w->loop()),
      info_(std::move(info)) {
  socket_->set_events(this);
  info_.protocol = "HTTP/1.1";
  lr_->stats.cx_total->inc();
  lr_->stats.cx_active->inc();
  lr_->stats.cx_http1->inc();
  worker_->add(this);
}

Http1Connection::~Http1Connection() {
  if (socket_) socket_->close();
}

void Http1Connection::start(std::string_view prelude) {
  socket_->read_start();
  arm_idle();
  if (!prelude.empty()) on_read(prelude.data(), prelude.size());
}

void Http1Connection::send_continue() { write(std::string("HTTP/1.1 100 Continue\r\n\r\n")); }

void Http1Connection::send_response_head(const ResponseHead& head) {
  const http::HeaderMap& h = *head.headers;
  std::string out;
  out.reserve(128 + h.byte_size() + 4 * h.size());
  http1::append_status_line(out, head.status);
  if (head.upgrade) {  // a 101 goes out as the upstream sent it
    http1::append_headers(out, h);
    out += "\r\n";
    write(out);
    return;
  }
  resp_chunked_ = false;
  bool close = head.close;
  bool no_body_status = head.is_head || head.status == 204 || head.status == 304;
  std::string length;
  if (head.content_length && (!no_body_status || head.is_head)) {
    length = std::to_string(*head.content_length);
  } else if (!no_body_status && !head.end_stream) {
    if (!head.http10)
      resp_chunked_ = true;
    else
      close = true;  // HTTP/1.0 has no chunking: the close ends the body
  }
  using namespace std::string_view_literals;
  // Room for every field at once (the map's byte total bounds them), written through one
  // pointer, then cut to what was written: no size check and no zero-fill per field.
  size_t at = out.size();
  out.resize(at + h.byte_size() + 4 * h.size());
  char* p = out.data() + at;
  for (const auto& x : h) {
    // Compared as views: a name of another length costs no strlen and no memcmp.
    std::string_view name = x.name;
    if (name[0] == ':' || name == "content-length"sv || name == "transfer-encoding"sv ||
        name == "connection"sv)
      continue;
    p = http1::put_field(p, name, x.value);
  }
  out.resize(size_t(p - out.data()));
  if (resp_chunked_)
    out += "transfer-encoding: chunked\r\n";
  else if (!length.empty())
    out.append("content-length: ").append(length).append("\r\n");
  if (close) {
    out += "connection: close\r\n";
    close_after_ = true;
  }
  out += "\r\n";
  write(out);
}

void Http1Connection::send_response_body(const char* data, size_t len) {
  http1::BodyPiece piece;
  http1::frame_body(piece, data, len, resp_chunked_);
  write(piece.bufs, piece.count);
}

void Http1Connection::send_response_end(const http::HeaderMap* trailers) {
  if (!resp_chunked_) return;  // trailers need chunked framing; without it they are dropped
  write(http1::last_chunk(trailers));
  resp_chunked_ = false;
}

void Http1Connection::arm_idle() {
  header_timer_ = false;
  timer_use_ = TimerUse::kIdle;
  timer_.start(uint64_t(lr_->cfg->timeouts.idle.count()), [this] { close_now(); });
}

void Http1Connection::on_header_timeout() {
  lr_->stats.rq_header_timeout->inc();
  reject(408, "request headers not received in time");
}

int Http1Connection::write(const uv_buf_t* bufs, unsigned n) {
  if (!socket_) return UV_EPIPE;
  size_t total = 0;
  for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
  lr_->stats.bytes_tx->inc(total);
  if (cork_ > 0) {
    for (unsigned i = 0; i < n; ++i) out_.append(bufs[i].base, bufs[i].len);
    return 0;
  }
  return socket_->write(bufs, n);
}

void Http1Connection::uncork() {
  if (cork_ > 0) --cork_;
  if (cork_ > 0 || out_.empty()) return;
  std::string out;
  out.swap(out_);
  if (socket_) socket_->write(out.data(), out.size());
}

void Http1Connection::update_reading() {
  if (!socket_ || closed_) return;
  bool want = !stream_paused_ && pending_.size() < kMaxPipelined;
  if (want)
    socket_->read_start();
  else
    socket_->read_stop();
}

void Http1Connection::pause_reading() {
  stream_paused_ = true;
  // The proxy holds the client back (the upstream is not taking the body yet): the body's
  // clock stops, since that wait is not the client's.
  if (timer_use_ == TimerUse::kBody) stop_timer();
  update_reading();
}

void Http1Connection::resume_reading() {
  stream_paused_ = false;
  if (body_pending_ && stream_ && !awaiting_ && timer_use_ == TimerUse::kNone) arm_body_timer();
  update_reading();
}

void Http1Connection::on_read(const char* data, size_t len) {
  lr_->stats.bytes_rx->inc(len);
  if (tunnel_) {
    if (stream_) stream_->on_tunnel_downstream(data, len);
    return;
  }
  if (awaiting_ || upgrade_pending_) {
    pending_.append(data, len);
    update_reading();
    return;
  }
  if (stream_ && !awaiting_) {
    // The request body is still arriving: it must keep arriving (request_body_idle), or the
    // stream would hold this connection and an upstream one forever.
    if (timer_use_ != TimerUse::kStream) arm_body_timer();
  } else if (!parser_.in_message() && !stream_ && !header_timer_) {
    // The first byte of a request: the head must now arrive within request_headers.
    header_timer_ = true;
    timer_use_ = TimerUse::kHeaders;
    timer_.start(uint64_t(lr_->cfg->timeouts.request_headers.count()),
                 [this] { on_header_timeout(); });
  }
  parse(data, len);
}

void Http1Connection::parse(const char* data, size_t len) {
  auto r = parser_.feed(data, len);
  switch (r.status) {
    case http1::Parser::Status::kOk:
      return;
    case http1::Parser::Status::kPaused:
      awaiting_ = true;
      pending_.append(data + r.consumed, len - r.consumed);
      update_reading();
      if (response_done_) next();
      return;
    case http1::Parser::Status::kUpgrade:
      // Bytes after the upgrade request wait until the upstream agrees to switch.
      upgrade_pending_ = true;
      awaiting_ = true;
      pending_.append(data + r.consumed, len - r.consumed);
      if (response_done_) next();
      return;
    case http1::Parser::Status::kError:
      lr_->stats.rq_malformed->inc();
      reject(parser_.error_status(), parser_.error_reason());
      return;
  }
}

void Http1Connection::reject(int status, const std::string& reason) {
  if (closed_) return;
  close_after_ = true;
  body_pending_ = false;
  if (stream_ && stream_->response_started()) {
    abort();
    return;
  }
  if (!stream_) {
    stream_ = std::make_unique<Stream>(this, slot_->runtime, slot_->lr);
  }
  SY_DEBUG("downstream %s: %d %s", info_.peer_ip.c_str(), status, reason.c_str());
  stream_->local_reply(status, http1::reason_phrase(status), reason, log::ResponseFlag::kNone);
  // The request is abandoned: nothing more will be read, so finish as soon as it is written.
  awaiting_ = true;
  pending_.clear();
  if (response_done_) next();
}

void Http1Connection::arm_body_timer() {
  timer_use_ = TimerUse::kBody;
  timer_.start(uint64_t(lr_->cfg->timeouts.request_body_idle.count()), [this] {
    if (!stream_ || awaiting_) return;
    lr_->stats.rq_body_timeout->inc();
    reject(408, "request body not received in time");
  });
}

int Http1Connection::on_head(http1::MessageHead& head) {
  stop_timer();
  header_timer_ = false;
  response_done_ = false;
  // Streams route with the newest snapshot, so a reload applies to the next request even on a
  // long-lived keep-alive connection.
  stream_ = std::make_unique<Stream>(this, slot_->runtime, slot_->lr);
  bool has_body = head.chunked || (head.content_length && *head.content_length > 0);
  body_pending_ = has_body;
  stream_->on_request_head(head);
  // A body still to come must keep coming; the stream may already time its response instead.
  if (stream_ && !response_done_ && has_body && !stream_paused_ && timer_use_ != TimerUse::kStream)
    arm_body_timer();
  return 0;
}

void Http1Connection::on_body(const char* data, size_t len) {
  if (stream_) stream_->on_request_body(data, len);
}

void Http1Connection::on_trailers(http::HeaderMap& trailers) {
  if (stream_) stream_->on_request_trailers(trailers);
}

void Http1Connection::on_complete() {
  body_pending_ = false;
  if (timer_use_ == TimerUse::kBody) stop_timer();  // the request is whole
  if (stream_) stream_->on_request_complete();
}

void Http1Connection::on_response_done() {
  response_done_ = true;
  // A closing response need not wait for the rest of the request: the socket's lingering close
  // reads and discards it, so the client still gets the response rather than a reset.
  if (close_after_ && !awaiting_) awaiting_ = true;
  if (awaiting_) next();
}

void Http1Connection::next() {
  if (in_next_) return;
  in_next_ = true;
  while (awaiting_ && response_done_ && !closed_) {
    finish_stream();
    if (close_after_ || worker_->draining()) {
      close_after_ = true;
      close_now();
      break;
    }
    awaiting_ = false;
    response_done_ = false;
    upgrade_pending_ = false;
    parser_.resume();
    if (pending_.empty()) {
      arm_idle();
      update_reading();
      break;
    }
    std::string buf;
    buf.swap(pending_);
    header_timer_ = true;
    timer_use_ = TimerUse::kHeaders;
    timer_.start(uint64_t(lr_->cfg->timeouts.request_headers.count()),
                 [this] { on_header_timeout(); });
    parse(buf.data(), buf.size());
    update_reading();
  }
  in_next_ = false;
}

void Http1Connection::finish_stream() {
  stream_lease_.reset();
  if (!stream_) return;
  stream_->finalize();
  Stream* s = stream_.release();
  worker_->defer_delete([s] { delete s; });
}

void Http1Connection::enter_tunnel() {
  tunnel_ = true;
  timer_.stop();
  upgrade_pending_ = false;
  if (!pending_.empty() && stream_) {
    std::string buf;
    buf.swap(pending_);
    stream_->on_tunnel_downstream(buf.data(), buf.size());
  }
  stream_paused_ = false;
  update_reading();
}

void Http1Connection::end_tunnel() {
  if (stream_) stream_->finalize();
  close_after_ = true;
  close_now();
}

void Http1Connection::abort() {
  if (closed_) return;
  if (stream_) stream_->finalize();
  closed_ = true;
  timer_.stop();
  if (socket_) {
    socket_->close();
    socket_ = nullptr;
  }
  lr_->stats.cx_active->dec();
  worker_->remove(this);
}

void Http1Connection::close_now() {
  if (closed_) return;
  if (stream_ && !tunnel_) stream_->on_downstream_reset();
  if (stream_) stream_->finalize();
  closed_ = true;
  timer_.stop();
  if (socket_) {
    // Graceful: what is corked and queued goes out first, then FIN.
    if (!out_.empty()) {
      socket_->write(out_.data(), out_.size());
      out_.clear();
    }
    socket_->end();
    socket_ = nullptr;
  }
  lr_->stats.cx_active->dec();
  worker_->remove(this);
}

void Http1Connection::drain() {
  if (closed_) return;
  close_after_ = true;
  if (!stream_ && !parser_.in_message()) close_now();
}

void Http1Connection::on_eof() {
  if (tunnel_) {
    if (stream_) stream_->on_tunnel_downstream_eof();
    return;
  }
  // Like Envoy and nginx, a client that closes before its response is complete has gone away:
  // the stream is reset (DC) and the upstream request abandoned rather than finished for nobody.
  if (stream_ && !response_done_) {
    stream_->on_downstream_reset();
    abort();
    return;
  }
  close_now();
}

void Http1Connection::on_error(int err) {
  if (stream_) stream_->on_downstream_reset();
  abort();
}

void Http1Connection::on_drained() {
  if (stream_) stream_->on_downstream_drained();
}

}  // namespace sy::server
