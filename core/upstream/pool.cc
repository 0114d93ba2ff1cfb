// Upstream HTTP/1.1 connections (plain or TLS) and their per-worker pool.
#include "core/upstream/pool.h"

#include "core/http1/writer.h"
#include "core/log/log.h"
#include "core/upstream/dial.h"
#include "core/upstream/h2_pool.h"

namespace sy::upstream {

// ---- Connection ----

std::unique_ptr<Pool> make_pool(uv_loop_t* loop, std::shared_ptr<server::ClusterRuntime> cluster) {
  if (cluster->cfg.protocol == "http2")
    return std::make_unique<Http2Pool>(loop, std::move(cluster));
  return std::make_unique<Http1Pool>(loop, std::move(cluster));
}

Connection::Connection(Http1Pool* pool, size_t endpoint)
    : pool_(pool), endpoint_(endpoint), parser_(HTTP_RESPONSE, this), timer_(pool->loop()) {}

Connection::~Connection() {
  if (socket_) socket_->close();
}

const std::string& Connection::endpoint_str() const {
  return pool_->cluster_->addr_strs[endpoint_];
}

int Connection::write(const uv_buf_t* bufs, unsigned n) {
  if (!socket_) return UV_EPIPE;
  size_t total = 0;
  for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
  pool_->cluster_->stats.bytes_tx->inc(total);
  return socket_->write(bufs, n);
}

void Connection::send_head(const RequestHead& r) {
  parser_.expect_head_response(r.is_head);
  chunked_ = !r.end_stream && !r.content_length;
  const http::HeaderMap& h = *r.headers;
  std::string out;
  out.reserve(256 + h.byte_size() + 4 * h.size());
  http1::append_request_line(out, r.method, r.path);
  out.append("host: ").append(r.authority).append("\r\n");
  for (const auto& x : h) {
    if (x.name[0] == ':' || x.name == "content-length" || x.name == "transfer-encoding" ||
        x.name == "host" || x.name == "te")
      continue;
    out.append(x.name).append(": ").append(x.value).append("\r\n");
  }
  if (chunked_)
    out += "transfer-encoding: chunked\r\n";
  else if (r.content_length)
    out.append("content-length: ").append(std::to_string(*r.content_length)).append("\r\n");
  out += "\r\n";
  write(out);
}

void Connection::send_body(const char* data, size_t len) {
  http1::BodyPiece piece;
  http1::frame_body(piece, data, len, chunked_);
  write(piece.bufs, piece.count);
}

void Connection::send_end(const http::HeaderMap* trailers) {
  if (!chunked_) return;  // a known length ends by itself; trailers need chunked framing
  write(http1::last_chunk(trailers));
  chunked_ = false;
}

void Connection::pause_reading() {
  if (socket_) socket_->read_stop();
}
void Connection::resume_reading() {
  if (socket_) socket_->read_start();
}

void Connection::enter_tunnel() {
  state_ = State::kTunnel;
  timer_.stop();
}

void Connection::on_connect(int status) {
  std::string why;
  switch (dial::connected(socket_, status, *pool_->cluster_, endpoint_, &why)) {
    case dial::Step::kFailed:
      pool_->on_connect_failed(this, why, false);
      return;
    case dial::Step::kHandshaking:  // the pool hears of it after the handshake
      return;
    case dial::Step::kConnected:
      break;
  }
  connected_ = true;
  timer_.stop();
  pool_->on_connected(this);
}

void Connection::on_tls_handshake(int status, const std::string& error) {
  if (std::string why; !dial::handshaken(status, error, *pool_->cluster_, &why)) {
    pool_->on_connect_failed(this, why, false);
    return;
  }
  connected_ = true;
  timer_.stop();
  pool_->on_connected(this);
}

void Connection::on_read(const char* data, size_t len) {
  pool_->cluster_->stats.bytes_rx->inc(len);
  if (state_ == State::kTunnel) {
    if (client_) client_->on_tunnel_data(data, len);
    return;
  }
  if (state_ != State::kBusy || !client_) {
    // An idle keep-alive connection must stay silent; anything else means it is unusable.
    pool_->destroy(this);
    return;
  }
  if (paused_) {
    parser_.resume();
    paused_ = false;
  }
  // The client may be released (and freed on the next loop turn) while this read is handled;
  // it stays valid until then, so the bracket is always closed.
  Client* batch = client_;
  batch->on_read_begin();
  auto r = parser_.feed(data, len);
  batch->on_read_end();
  switch (r.status) {
    case http1::Parser::Status::kOk:
      break;
    case http1::Parser::Status::kPaused:
      paused_ = true;
      if (r.consumed < len) {
        // Bytes after a complete response that nobody asked for: the connection is broken.
        if (client_) {
          Client* c = client_;
          client_ = nullptr;
          pool_->destroy(this);
          c->on_upstream_reset("upstream sent data after the response");
        } else {
          pool_->destroy(this);
        }
      }
      break;
    case http1::Parser::Status::kUpgrade:
      enter_tunnel();
      if (r.consumed < len && client_) client_->on_tunnel_data(data + r.consumed, len - r.consumed);
      break;
    case http1::Parser::Status::kError:
      fail("malformed upstream response: " + parser_.error_reason());
      break;
  }
}

void Connection::fail(const std::string& details) {
  Client* c = client_;
  client_ = nullptr;
  pool_->destroy(this);
  if (c) c->on_upstream_reset(details);
}

void Connection::on_eof() {
  if (state_ == State::kTunnel) {
    if (client_) client_->on_tunnel_eof();
    return;
  }
  if (state_ == State::kBusy && client_ && parser_.in_message() && parser_.head_done()) {
    // A close-delimited body ends here.
    if (parser_.finish()) {
      Client* c = client_;
      if (!complete_) {
        client_ = nullptr;
        pool_->destroy(this);
        c->on_upstream_reset("upstream closed mid-response");
      }
      return;
    }
  }
  if (state_ == State::kBusy && client_) {
    fail("upstream closed the connection before the response was complete");
    return;
  }
  pool_->destroy(this);
}

void Connection::on_error(int err) {
  if (state_ == State::kConnecting) {
    pool_->on_connect_failed(this, std::string("upstream connect error: ") + uv_strerror(err),
                             false);
    return;
  }
  if (state_ == State::kTunnel) {
    if (client_) client_->on_tunnel_eof();
    return;
  }
  fail(std::string("upstream connection error: ") + uv_strerror(err));
}

void Connection::on_drained() {
  if (client_) client_->on_upstream_drained();
}

int Connection::on_head(http1::MessageHead& head) {
  complete_ = false;
  return client_ ? client_->on_response_head(head) : -1;
}

void Connection::on_body(const char* data, size_t len) {
  if (client_) client_->on_response_body(data, len);
}

void Connection::on_trailers(http::HeaderMap& trailers) {
  if (client_) client_->on_response_trailers(trailers);
}

void Connection::on_complete() {
  complete_ = true;
  if (client_) client_->on_response_complete();
}

// ---- Pool ----

void pending_timeout(const server::ClusterStats& stats, Client* client) {
  stats.rq_pending_timeout->inc();
  client->on_upstream_failure(Client::Failure::kPendingTimeout, "upstream pending queue timeout");
}

Http1Pool::Http1Pool(uv_loop_t* loop, std::shared_ptr<server::ClusterRuntime> cluster)
    : loop_(loop),
      cluster_(std::move(cluster)),
      pending_(loop, uint64_t(cluster_->cfg.pending_timeout.count()),
               [this](Client* c) { pending_timeout(cluster_->stats, c); }),
      reaper_(loop) {
  idle_.resize(cluster_->addrs.size());
}

Http1Pool::~Http1Pool() { cluster_->stats.cx_active->dec(int64_t(conns_.size())); }

size_t Http1Pool::idle_count() const {
  size_t n = 0;
  for (const auto& v : idle_) n += v.size();
  return n;
}

Connection* Http1Pool::take_idle(size_t endpoint) {
  auto& list = idle_[endpoint];
  if (list.empty()) return nullptr;
  Connection* c = list.back();
  list.pop_back();
  return c;
}

void Http1Pool::assign(Connection* c, Client* client) {
  c->state_ = Connection::State::kBusy;
  c->client_ = client;
  c->complete_ = false;
  c->requests_++;
  c->timer_.stop();
  client->on_upstream_ready(c);
}

void Http1Pool::acquire(Client* client, int preferred) {
  const size_t n = cluster_->addrs.size();
  if (n == 0) {
    client->on_upstream_failure(Client::Failure::kConnect, "cluster has no endpoints");
    return;
  }
  // Round robin picks the endpoint per request; the pool then reuses a connection to it.
  size_t ep = preferred >= 0 && size_t(preferred) < n ? size_t(preferred) : rr_++ % n;
  if (Connection* c = take_idle(ep)) {
    assign(c, client);
    return;
  }
  if (conns_.size() < cluster_->cfg.max_connections) {
    connect(client, 0, ep);
    return;
  }
  // At the cap: an idle connection to another endpoint beats waiting.
  for (size_t i = 1; i < n; ++i) {
    if (Connection* c = take_idle((ep + i) % n)) {
      assign(c, client);
      return;
    }
  }
  if (pending_.size() < cluster_->cfg.max_pending) {
    pending_.push_back(client, preferred);
    return;
  }
  cluster_->stats.rq_overflow->inc();
  client->on_upstream_failure(Client::Failure::kOverflow, "upstream connection pool overflow");
}

void Http1Pool::connect(Client* client, uint32_t attempts, size_t ep) {
  const auto& cl = *cluster_;
  auto owned = std::make_unique<Connection>(this, ep);
  Connection* c = owned.get();
  conns_.push_back(std::move(owned));
  c->self_ = std::prev(conns_.end());
  c->client_ = client;
  c->attempts_ = attempts + 1;
  c->requests_ = 1;
  cl.stats.cx_total->inc();
  cl.stats.cx_active->inc();
  c->socket_ = net::Socket::create(loop_, c);
  std::string why = dial::connect(c->socket_, cl, ep, c->timer_, [this, c] {
    on_connect_failed(c, "upstream connect timeout", true);
  });
  if (!why.empty()) on_connect_failed(c, why, false);
}

void Http1Pool::on_connected(Connection* c) {
  c->state_ = Connection::State::kBusy;
  c->socket_->read_start();
  Client* client = c->client_;
  if (!client) {  // the client gave up while we were connecting: keep the connection
    release(c, true);
    return;
  }
  client->on_upstream_ready(c);
}

void Http1Pool::on_connect_failed(Connection* c, const std::string& details, bool timeout) {
  cluster_->stats.cx_connect_fail->inc();
  if (timeout) cluster_->stats.cx_connect_timeout->inc();
  Client* client = c->client_;
  uint32_t attempts = c->attempts_;
  size_t next_ep = (c->endpoint_ + 1) % cluster_->addrs.size();
  c->client_ = nullptr;
  SY_DEBUG("cluster %s: %s (%s)", cluster_->cfg.name.c_str(), details.c_str(),
           c->endpoint_str().c_str());
  destroy(c);
  if (!client) return;
  if (attempts <= cluster_->cfg.connect_retries) {
    // The retry goes to the next endpoint: the one that just failed is likely still down.
    cluster_->stats.rq_retry->inc();
    connect(client, attempts, next_ep);
    return;
  }
  client->on_upstream_failure(Client::Failure::kConnect, details);
}

void Http1Pool::cancel(Client* client) {
  if (pending_.remove(client)) return;
  for (auto& c : conns_) {
    if (c->client_ == client && c->state_ == Connection::State::kConnecting) {
      c->client_ = nullptr;  // let it finish connecting and join the idle list
      return;
    }
  }
}

void Http1Pool::release(Exchange* ex, bool reusable) {
  auto* c = static_cast<Connection*>(ex);
  c->client_ = nullptr;
  if (reusable && !retired_ && c->state_ == Connection::State::kBusy && c->socket_ &&
      !c->parser_.in_message()) {
    c->state_ = Connection::State::kIdle;
    c->parser_.expect_head_response(false);
    // Its last client may have paused it (a slow downstream) and finished before resuming:
    // an idle connection reads, so that it notices a close and its next response arrives.
    c->resume_reading();
    idle_[c->endpoint_].push_back(c);
    c->timer_.start(uint64_t(cluster_->cfg.idle_timeout.count()), [this, c] { destroy(c); });
  } else {
    destroy(c);
  }
  serve_pending();
}

void Http1Pool::serve_pending() {
  while (!pending_.empty() && (idle_count() > 0 || conns_.size() < cluster_->cfg.max_connections)) {
    PendingQueue::Waiter w = pending_.pop_front();
    acquire(w.client, w.preferred);
  }
}

void Http1Pool::destroy(Connection* c) {
  if (c->self_ == conns_.end()) return;  // already on its way out
  std::erase(idle_[c->endpoint_], c);
  if (c->socket_) {
    c->socket_->close();
    c->socket_ = nullptr;
  }
  c->timer_.stop();
  c->client_ = nullptr;
  cluster_->stats.cx_active->dec();
  // The connection may be on the stack (this can run from its own callbacks): free it later.
  graveyard_.push_back(std::move(*c->self_));
  conns_.erase(c->self_);
  c->self_ = conns_.end();
  reaper_.start(0, [this] { graveyard_.clear(); });
  if (!retired_) serve_pending();
}

void Http1Pool::retire() {
  retired_ = true;
  for (auto& list : idle_)
    while (!list.empty()) destroy(list.back());
}

}  // namespace sy::upstream
