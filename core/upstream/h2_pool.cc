// Upstream HTTP/2 connections and their per-worker pool.
#include "core/upstream/h2_pool.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/http2/frames.h"
#include "core/log/log.h"
#include "core/upstream/dial.h"

namespace sy::upstream {
namespace {

constexpr uint32_t kStreamWindow = 256 * 1024;
constexpr int32_t kConnectionWindow = 1024 * 1024;
// Before the server's SETTINGS arrive its limit is unknown; RFC 9113 suggests assuming 100.
constexpr uint32_t kDefaultConcurrency = 100;

}  // namespace

// ---- H2Exchange ----

const std::string& H2Exchange::endpoint_str() const {
  static const std::string kGone;
  return conn_ ? conn_->pool_->cluster_->addr_strs[conn_->endpoint_] : kGone;
}

void H2Exchange::send_head(const RequestHead& r) {
  if (!conn_ || conn_->closed_) return;
  is_head_ = r.is_head;
  http2::NvList nv;
  nv.reserve(5 + r.headers->size());  // the four pseudo-headers, the headers, content-length
  nv.add(":method", r.method);
  nv.add(":scheme", r.scheme);
  nv.add(":authority", r.authority);
  nv.add(":path", r.path);
  for (const auto& x : *r.headers) {
    if (x.name.empty() || x.name[0] == ':' || x.name == "content-length" ||
        http2::connection_specific(x.name))
      continue;
    if (x.name == "te" && !http::iequals(x.value, "trailers")) continue;
    nv.add(x.name, x.value);
  }
  std::string length;
  if (r.content_length) {
    length = std::to_string(*r.content_length);
    nv.add("content-length", length);
  }
  nghttp2_data_provider dp = body_.provider();
  if (r.end_stream) body_.end(nullptr);
  id_ = nghttp2_submit_request(conn_->session_, nullptr, nv.data(), nv.size(),
                               r.end_stream ? nullptr : &dp, this);
  if (id_ < 0) {
    H2Connection* c = conn_;
    SY_DEBUG("h2 upstream: cannot open a stream: %s", nghttp2_strerror(id_));
    // Handled like a stream the server refused: the client may retry elsewhere.
    std::erase(c->streams_, this);
    conn_ = nullptr;
    Client* cl = client_;
    client_ = nullptr;
    c->pool_->free_later(this);
    if (cl) cl->on_upstream_reset("upstream http2 stream could not be opened");
    return;
  }
  flush();
}

void H2Exchange::send_body(const char* data, size_t len) {
  if (!conn_) return;
  wake(body_.append(data, len));
}

void H2Exchange::send_end(const http::HeaderMap* trailers) {
  if (!conn_ || body_.ended()) return;
  wake(body_.end(trailers));
}

// RESUME: nghttp2 had deferred the stream for want of data, and now has some.
void H2Exchange::wake(bool resume) {
  if (!conn_ || id_ < 0) return;
  if (resume) nghttp2_session_resume_data(conn_->session_, id_);
  flush();
}

void H2Exchange::resume_reading() {
  paused_ = false;
  if (!conn_ || unconsumed_ == 0 || id_ < 0) return;
  nghttp2_session_consume(conn_->session_, id_, unconsumed_);
  unconsumed_ = 0;
  flush();
}

void H2Exchange::flush() {
  if (!corked_) conn_->flush();
}

void H2Exchange::uncork() {
  corked_ = false;
  if (conn_) conn_->flush();
}

// ---- H2Connection ----

H2Connection::H2Connection(Http2Pool* pool, size_t endpoint)
    : pool_(pool), endpoint_(endpoint), timer_(pool->loop()) {}

H2Connection::~H2Connection() {
  if (socket_) socket_->close();
  if (session_) nghttp2_session_del(session_);
}

size_t H2Connection::capacity() const {
  if (!ready()) return 0;
  uint32_t max =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  max = std::min(max, 1000u);
  if (max == 0) max = kDefaultConcurrency;
  return streams_.size() >= max ? 0 : max - streams_.size();
}

void H2Connection::on_connect(int status) {
  std::string why;
  switch (dial::connected(socket_, status, *pool_->cluster_, endpoint_, &why)) {
    case dial::Step::kFailed:
      pool_->on_connect_failed(this, why, false);
      return;
    case dial::Step::kHandshaking:  // ALPN must say h2 before the session starts
      return;
    case dial::Step::kConnected:
      break;
  }
  socket_->read_start();
  start_session();
  pool_->on_ready(this);
}

void H2Connection::on_tls_handshake(int status, const std::string& error) {
  if (std::string why; !dial::handshaken(status, error, *pool_->cluster_, &why)) {
    pool_->on_connect_failed(this, why, false);
    return;
  }
  const unsigned char* alpn = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(socket_->ssl(), &alpn, &len);
  if (std::string_view(reinterpret_cast<const char*>(alpn), len) != "h2") {
    pool_->on_connect_failed(this, "upstream tls: the server did not select h2 by ALPN", false);
    return;
  }
  start_session();
  pool_->on_ready(this);
}

void H2Connection::start_session() {
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  http2::SendBatch::install<H2Connection>(cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  // Window updates follow what the downstream side has taken (back-pressure).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  flush();
}

void H2Connection::flush() {
  if (closed_ || !session_ || in_recv_ || send_blocked_ || batch_.filling()) return;
  // Every frame ready now goes out in one write (see http2::SendBatch).
  while (true) {
    if (socket_->above_high()) {
      send_blocked_ = true;
      break;
    }
    if (int rv = batch_.fill(session_); rv != 0) {
      fail(std::string("upstream http2 error: ") + nghttp2_strerror(rv));
      return;
    }
    if (batch_.empty()) break;
    pool_->cluster_->stats.bytes_tx->inc(batch_.bytes().size());
    socket_->write(batch_.bytes().data(), batch_.bytes().size());
    batch_.clear();
  }
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))
    fail("upstream http2 connection finished");
}

void H2Connection::on_read(const char* data, size_t len) {
  if (closed_ || !session_) return;
  pool_->cluster_->stats.bytes_rx->inc(len);
  in_recv_ = true;
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  in_recv_ = false;
  if (rv < 0) {
    fail(std::string("upstream http2 protocol error: ") + nghttp2_strerror(int(rv)));
    return;
  }
  flush();
  if (!closed_ && streams_.empty() && waiters_.empty()) pool_->arm_idle(this);
}

void H2Connection::on_eof() { fail("upstream closed the connection"); }

void H2Connection::on_error(int err) {
  if (!session_) {
    pool_->on_connect_failed(this, std::string("upstream connect error: ") + uv_strerror(err),
                             false);
    return;
  }
  fail(std::string("upstream connection error: ") + uv_strerror(err));
}

void H2Connection::on_drained() {
  send_blocked_ = false;
  flush();
}

void H2Connection::fail(const std::string& details) {
  if (closed_) return;
  SY_DEBUG("cluster %s: %s", pool_->cluster_->cfg.name.c_str(), details.c_str());
  pool_->destroy(this);
  (void)details;
}

int H2Connection::on_header(nghttp2_session* session, const nghttp2_frame* f, const uint8_t* name,
                            size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
  auto* ex =
      static_cast<H2Exchange*>(nghttp2_session_get_stream_user_data(session, f->hd.stream_id));
  if (!ex) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (ex->head_done_) {
    if (n[0] != ':') ex->trailers_in_.add(n, v);
    return 0;
  }
  if (n == ":status") {
    int st = 0;
    std::from_chars(v.data(), v.data() + v.size(), st);
    // nghttp2 checks for three digits only: "000" or "042" would go on downstream as a status
    // no HTTP version has. The stream is reset (RST_STREAM INTERNAL_ERROR) and the request
    // fails as on any upstream reset.
    if (st < 100) {
      ex->bad_status_ = true;
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    ex->head_.status = st;
    return 0;
  }
  if (n[0] == ':') return 0;
  if (n == "content-length") {
    uint64_t len = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), len);
    if (r.ec == std::errc() && r.ptr == v.data() + v.size()) ex->head_.content_length = len;
  }
  ex->head_.headers.add(n, v);
  return 0;
}

int H2Connection::on_frame_recv(nghttp2_session* session, const nghttp2_frame* f, void* self) {
  auto* c = static_cast<H2Connection*>(self);
  if (f->hd.type == NGHTTP2_GOAWAY) {
    // No new streams here; those past last_stream_id are closed by nghttp2 as refused.
    c->goaway_ = true;
    return 0;
  }
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
  auto* ex =
      static_cast<H2Exchange*>(nghttp2_session_get_stream_user_data(session, f->hd.stream_id));
  if (!ex) return 0;
  bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (f->hd.type == NGHTTP2_HEADERS) {
    if (!ex->head_done_) {
      if (ex->head_.status >= 100 && ex->head_.status < 200) {
        ex->head_ = http1::MessageHead();  // an interim response: the real one follows
        return 0;
      }
      ex->head_done_ = true;
      ex->head_.major = 2;
      ex->head_.minor = 0;
      ex->head_.keep_alive = true;
      ex->head_.end_stream = end;  // e.g. a gRPC trailers-only response
      if (ex->client_ && ex->client_->on_response_head(ex->head_) < 0 && !ex->complete_) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_CANCEL);
        return 0;
      }
    } else if (ex->client_) {
      ex->client_->on_response_trailers(ex->trailers_in_);
    }
  }
  if (end && !ex->complete_) {
    ex->complete_ = true;
    if (ex->client_) ex->client_->on_response_complete();
  }
  return 0;
}

int H2Connection::on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                                size_t len, void*) {
  auto* ex = static_cast<H2Exchange*>(nghttp2_session_get_stream_user_data(session, id));
  if (!ex || !ex->client_) {
    nghttp2_session_consume(session, id, len);
    return 0;
  }
  ex->client_->on_response_body(reinterpret_cast<const char*>(data), len);
  if (ex->paused_)
    ex->unconsumed_ += len;
  else
    nghttp2_session_consume(session, id, len);
  return 0;
}

int H2Connection::on_stream_close(nghttp2_session* session, int32_t id, uint32_t code, void* self) {
  auto* c = static_cast<H2Connection*>(self);
  auto* ex = static_cast<H2Exchange*>(nghttp2_session_get_stream_user_data(session, id));
  if (!ex) return 0;
  nghttp2_session_set_stream_user_data(session, id, nullptr);
  std::erase(c->streams_, ex);
  if (ex->unconsumed_) nghttp2_session_consume_connection(session, ex->unconsumed_);
  ex->conn_ = nullptr;
  Client* client = ex->client_;
  if (client && !ex->complete_) {
    ex->client_ = nullptr;
    // rq_reset is counted by the client (Stream::on_upstream_reset), once per request.
    std::string details =
        ex->bad_status_ ? "upstream sent an invalid :status"
        : code == NGHTTP2_REFUSED_STREAM
            ? "upstream refused the stream"
            : std::string("upstream reset the stream: ") + http2::error_name(code);
    c->pool_->free_later(ex);
    client->on_upstream_reset(details);
  } else if (!client) {
    c->pool_->free_later(ex);
  }
  // else: complete, still held by its client; release() frees it.
  if (!c->closed_ && c->streams_.empty() && c->waiters_.empty()) c->pool_->arm_idle(c);
  return 0;
}

// ---- Http2Pool ----

Http2Pool::Http2Pool(uv_loop_t* loop, std::shared_ptr<server::ClusterRuntime> cluster)
    : loop_(loop),
      cluster_(std::move(cluster)),
      pending_(loop, uint64_t(cluster_->cfg.pending_timeout.count()),
               [this](Client* c) { pending_timeout(cluster_->stats, c); }),
      reaper_(loop) {}

Http2Pool::~Http2Pool() {
  for (auto& c : conns_) {
    c->closed_ = true;
    for (H2Exchange* ex : c->streams_) {
      ex->conn_ = nullptr;
      if (!ex->client_) delete ex;
    }
  }
  cluster_->stats.cx_active->dec(int64_t(conns_.size()));
}

void Http2Pool::bind(H2Connection* c, Client* client) {
  c->timer_.stop();
  auto* ex = new H2Exchange(c, client);
  ex->reused_ = c->started_ > 0;
  c->started_++;
  c->streams_.push_back(ex);
  client->on_upstream_ready(ex);
}

void Http2Pool::acquire(Client* client, int preferred) {
  const size_t n = cluster_->addrs.size();
  if (n == 0) {
    client->on_upstream_failure(Client::Failure::kConnect, "cluster has no endpoints");
    return;
  }
  size_t ep = preferred >= 0 && size_t(preferred) < n ? size_t(preferred) : rr_++ % n;
  for (auto& c : conns_)
    if (c->endpoint_ == ep && c->capacity() > 0) return bind(c.get(), client);
  // A connection still being set up to this endpoint takes waiters up to a first batch.
  for (auto& c : conns_)
    if (c->endpoint_ == ep && !c->session_ && !c->closed_ &&
        c->waiters_.size() < kDefaultConcurrency) {
      c->waiters_.push_back(client);
      return;
    }
  if (conns_.size() < cluster_->cfg.max_connections && !retired_) {
    connect(ep, 1, {client});
    return;
  }
  for (auto& c : conns_)
    if (c->capacity() > 0) return bind(c.get(), client);
  if (pending_.size() < cluster_->cfg.max_pending) {
    pending_.push_back(client, preferred);
    return;
  }
  cluster_->stats.rq_overflow->inc();
  client->on_upstream_failure(Client::Failure::kOverflow, "upstream connection pool overflow");
}

void Http2Pool::connect(size_t ep, uint32_t attempts, std::deque<Client*> waiters) {
  auto owned = std::make_unique<H2Connection>(this, ep);
  H2Connection* c = owned.get();
  conns_.push_back(std::move(owned));
  c->self_ = std::prev(conns_.end());
  c->attempts_ = attempts;
  c->waiters_ = std::move(waiters);
  cluster_->stats.cx_total->inc();
  cluster_->stats.cx_active->inc();
  c->socket_ = net::Socket::create(loop_, c);
  std::string why = dial::connect(c->socket_, *cluster_, ep, c->timer_, [this, c] {
    on_connect_failed(c, "upstream connect timeout", true);
  });
  if (!why.empty()) on_connect_failed(c, why, false);
}

void Http2Pool::on_ready(H2Connection* c) {
  c->timer_.stop();
  std::deque<Client*> waiters;
  waiters.swap(c->waiters_);
  for (Client* client : waiters) {
    if (c->capacity() > 0)
      bind(c, client);
    else
      pending_.push_front(client, -1);
  }
  if (c->streams_.empty()) arm_idle(c);
  serve_pending();
}

void Http2Pool::on_connect_failed(H2Connection* c, const std::string& details, bool timeout) {
  cluster_->stats.cx_connect_fail->inc();
  if (timeout) cluster_->stats.cx_connect_timeout->inc();
  std::deque<Client*> waiters;
  waiters.swap(c->waiters_);
  uint32_t attempts = c->attempts_;
  size_t next_ep = (c->endpoint_ + 1) % cluster_->addrs.size();
  destroy(c);
  if (waiters.empty()) return;
  if (attempts <= cluster_->cfg.connect_retries) {
    cluster_->stats.rq_retry->inc();
    connect(next_ep, attempts + 1, std::move(waiters));
    return;
  }
  for (Client* client : waiters) client->on_upstream_failure(Client::Failure::kConnect, details);
}

void Http2Pool::arm_idle(H2Connection* c) {
  if (retired_) {
    destroy(c);
    return;
  }
  c->timer_.start(uint64_t(cluster_->cfg.idle_timeout.count()), [this, c] {
    if (c->streams_.empty() && c->waiters_.empty()) destroy(c);
  });
}

void Http2Pool::cancel(Client* client) {
  if (pending_.remove(client)) return;
  for (auto& c : conns_) std::erase(c->waiters_, client);
}

void Http2Pool::release(Exchange* e, bool) {
  auto* ex = static_cast<H2Exchange*>(e);
  ex->client_ = nullptr;
  H2Connection* c = ex->conn_;
  if (!c) {  // the stream is already closed
    free_later(ex);
    serve_pending();
    return;
  }
  // Unfinished either way: cancel it, so the server stops working on it. The exchange goes
  // when nghttp2 closes the stream.
  if (ex->id_ > 0 && (!ex->complete_ || !ex->body_.ended() || ex->body_.pending() > 0)) {
    nghttp2_submit_rst_stream(c->session_, NGHTTP2_FLAG_NONE, ex->id_, NGHTTP2_CANCEL);
    c->flush();
  } else if (ex->id_ < 0) {
    std::erase(c->streams_, ex);
    free_later(ex);
  }
  serve_pending();
}

void Http2Pool::serve_pending() {
  while (!pending_.empty()) {
    bool room = conns_.size() < cluster_->cfg.max_connections;
    for (auto& c : conns_) room = room || c->capacity() > 0;
    if (!room || retired_) return;
    PendingQueue::Waiter w = pending_.pop_front();
    acquire(w.client, w.preferred);
  }
}

void Http2Pool::free_later(H2Exchange* ex) {
  dead_streams_.emplace_back(ex);
  reaper_.start(0, [this] {
    dead_streams_.clear();
    dead_conns_.clear();
  });
}

void Http2Pool::destroy(H2Connection* c) {
  if (c->closed_) return;
  c->closed_ = true;
  c->timer_.stop();
  if (c->socket_) {
    c->socket_->close();
    c->socket_ = nullptr;
  }
  cluster_->stats.cx_active->dec();
  std::vector<H2Exchange*> streams;
  streams.swap(c->streams_);
  std::deque<Client*> waiters;
  waiters.swap(c->waiters_);
  dead_conns_.push_back(std::move(*c->self_));
  conns_.erase(c->self_);
  reaper_.start(0, [this] {
    dead_streams_.clear();
    dead_conns_.clear();
  });
  for (H2Exchange* ex : streams) {
    ex->conn_ = nullptr;
    Client* client = ex->client_;
    if (!client) {
      free_later(ex);
      continue;
    }
    if (ex->complete_) continue;  // its client still holds it; release() frees it
    ex->client_ = nullptr;
    free_later(ex);
    client->on_upstream_reset("upstream http2 connection closed");
  }
  for (Client* client : waiters)
    client->on_upstream_failure(Client::Failure::kConnect, "upstream http2 connection closed");
  if (!retired_) serve_pending();
}

void Http2Pool::retire() {
  retired_ = true;
  std::vector<H2Connection*> idle;
  for (auto& c : conns_) {
    c->goaway_ = true;
    if (c->streams_.empty() && c->waiters_.empty()) idle.push_back(c.get());
  }
  for (H2Connection* c : idle) destroy(c);
}

}  // namespace sy::upstream
