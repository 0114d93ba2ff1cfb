// Per-worker upstream connection pools to a cluster's endpoints: round robin, keep-alive reuse,
// a connection cap with a pending queue, and connect retries on another endpoint.
#pragma once

#include <uv.h>

#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/http1/parser.h"
#include "core/net/socket.h"
#include "core/runtime/runtime.h"
#include "core/upstream/pending.h"

namespace sy::upstream {

class Pool;
class Exchange;

// The request as the upstream side needs it; the codec turns it into bytes or frames.
struct RequestHead {
  std::string_view method, path, authority, scheme;
  const http::HeaderMap* headers = nullptr;  // may hold pseudo-headers; codecs skip them
  std::optional<uint64_t> content_length;    // the body's length when known
  bool end_stream = false;                   // no body follows
  bool is_head = false;                      // a HEAD: the response has no body
};

// What the pool and the connection report to the stream using them.
class Client {
 public:
  virtual ~Client() = default;
  // A connection is ready and bound to this client until it calls Pool::release.
  virtual void on_upstream_ready(Exchange* ex) = 0;
  // kOverflow: the pending queue was full; kPendingTimeout: the request waited in it for the
  // cluster's pending_timeout.
  enum class Failure { kConnect, kOverflow, kPendingTimeout };
  // No connection could be had; DETAILS says why (for the access log).
  virtual void on_upstream_failure(Failure f, const std::string& details) = 0;
  // Response events from the bound connection.
  virtual int on_response_head(http1::MessageHead& head) = 0;
  virtual void on_response_body(const char* data, size_t len) = 0;
  virtual void on_response_trailers(http::HeaderMap& trailers) = 0;
  virtual void on_response_complete() = 0;
  // The connection failed while bound (reset, malformed response). The pool has closed it.
  virtual void on_upstream_reset(const std::string& details) = 0;
  // The upstream write queue drained below the low watermark.
  virtual void on_upstream_drained() = 0;
  // Raw bytes after a 101 (tunnel mode only).
  // Bracket the events of one upstream read, so the client can batch what it writes.
  virtual void on_read_begin() {}
  virtual void on_read_end() {}
  virtual void on_tunnel_data(const char* data, size_t len) {}
  virtual void on_tunnel_eof() {}
};

// One request/response exchange with an upstream, bound to one client between
// Client::on_upstream_ready and Pool::release: an HTTP/1.1 connection, or one HTTP/2 stream.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // The request, in order: head, body pieces, end (trailers go only where the framing can
  // carry them: chunked HTTP/1.1 or HTTP/2).
  virtual void send_head(const RequestHead& head) = 0;
  virtual void send_body(const char* data, size_t len) = 0;
  virtual void send_end(const http::HeaderMap* trailers) = 0;
  // Between cork() and uncork() the sends above may wait, to leave in one write at uncork():
  // a caller with head, body and end at hand saves the peer a wake-up per piece (HTTP/2: the
  // HEADERS and one DATA frame carrying END_STREAM, where each send alone is a write and the
  // end an empty DATA frame). Transports that write nothing per call ignore it.
  virtual void cork() {}
  virtual void uncork() {}
  // Back-pressure both ways: request bytes waiting; response bytes stop/start.
  virtual bool above_high() const = 0;
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  virtual const std::string& endpoint_str() const = 0;
  // Whether the transport carried an earlier request (a stale keep-alive may have gone).
  virtual bool reused() const = 0;
  // HTTP/1 only: after a 101, bytes go both ways unparsed.
  virtual void enter_tunnel() {}
  virtual void tunnel_write(const char* data, size_t len) {}
};

// What every pool offers the streams and the worker, whatever the protocol.
class Pool {
 public:
  virtual ~Pool() = default;
  // Finds or makes an exchange for CLIENT; answers through on_upstream_ready / _failure,
  // possibly before returning. PREFERRED: an endpoint index instead of round robin (-1: none).
  virtual void acquire(Client* client, int preferred = -1) = 0;
  // CLIENT no longer wants an exchange (its stream ended while waiting).
  virtual void cancel(Client* client) = 0;
  // CLIENT is done with EX. REUSABLE: the exchange ended cleanly and both sides keep alive.
  virtual void release(Exchange* ex, bool reusable) = 0;
  // Stop reusing connections (the cluster left the config); true once nothing is left.
  virtual void retire() = 0;
  virtual bool empty() const = 0;
};

// What both pools do with a request that waited too long for a connection: count it, and fail
// it (503, flag UO).
void pending_timeout(const server::ClusterStats& stats, Client* client);

// Makes the pool CLUSTER's protocol needs.
std::unique_ptr<Pool> make_pool(uv_loop_t* loop, std::shared_ptr<server::ClusterRuntime> cluster);

class Http1Pool;

class Connection final : public Exchange, public net::SocketEvents, public http1::ParserHandler {
 public:
  Connection(Http1Pool* pool, size_t endpoint);
  ~Connection() override;

  // Exchange
  void send_head(const RequestHead& head) override;
  void send_body(const char* data, size_t len) override;
  void send_end(const http::HeaderMap* trailers) override;
  bool above_high() const override { return socket_ && socket_->above_high(); }
  void pause_reading() override;
  void resume_reading() override;
  void enter_tunnel() override;
  void tunnel_write(const char* data, size_t len) override { write(data, len); }
  const std::string& endpoint_str() const override;
  bool reused() const override { return requests_ > 1; }

  // net::SocketEvents
  void on_read(const char* data, size_t len) override;
  void on_eof() override;
  void on_error(int err) override;
  void on_drained() override;
  void on_connect(int status) override;
  void on_tls_handshake(int status, const std::string& error) override;
  // http1::ParserHandler
  int on_head(http1::MessageHead& head) override;
  void on_body(const char* data, size_t len) override;
  void on_trailers(http::HeaderMap& trailers) override;
  void on_complete() override;

 private:
  friend class Http1Pool;
  enum class State { kConnecting, kBusy, kIdle, kTunnel };
  void fail(const std::string& details);
  int write(const uv_buf_t* bufs, unsigned n);
  int write(const std::string& s) { return write(s.data(), s.size()); }
  int write(const char* p, size_t n) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(p), unsigned(n));
    return write(&b, 1);
  }

  Http1Pool* pool_;
  size_t endpoint_;
  net::Socket* socket_ = nullptr;
  http1::Parser parser_;
  net::Timer timer_;  // connect timeout, then idle timeout
  State state_ = State::kConnecting;
  Client* client_ = nullptr;
  bool complete_ = false;  // the current response is complete
  uint64_t requests_ = 0;
  uint32_t attempts_ = 0;  // connect attempts for the client this connection was opened for
  bool chunked_ = false;   // the current request body goes chunked
  bool paused_ = false;    // the parser stopped after a complete response
  bool connected_ = false;
  std::list<std::unique_ptr<Connection>>::iterator self_;
};

// HTTP/1.1 (plain or over TLS): one exchange per connection at a time.
class Http1Pool final : public Pool {
 public:
  Http1Pool(uv_loop_t* loop, std::shared_ptr<server::ClusterRuntime> cluster);
  ~Http1Pool() override;

  void acquire(Client* client, int preferred = -1) override;
  void cancel(Client* client) override;
  void release(Exchange* ex, bool reusable) override;
  void retire() override;
  bool empty() const override { return conns_.empty() && pending_.empty(); }

  const server::ClusterRuntime& cluster() const { return *cluster_; }
  uv_loop_t* loop() const { return loop_; }

 private:
  friend class Connection;
  void connect(Client* client, uint32_t attempts, size_t endpoint);
  void assign(Connection* c, Client* client);
  Connection* take_idle(size_t endpoint);
  size_t idle_count() const;
  void on_connected(Connection* conn);
  void on_connect_failed(Connection* conn, const std::string& details, bool timeout);
  void on_closed(Connection* conn);  // the connection is gone; frees it
  void serve_pending();
  void destroy(Connection* conn);

  uv_loop_t* loop_;
  std::shared_ptr<server::ClusterRuntime> cluster_;
  std::list<std::unique_ptr<Connection>> conns_;
  // Idle connections per endpoint, most recently used last (reused first, so the others can
  // time out when traffic drops).
  std::vector<std::vector<Connection*>> idle_;
  PendingQueue pending_;
  std::vector<std::unique_ptr<Connection>> graveyard_;  // freed on the next loop turn
  net::Timer reaper_;
  size_t rr_ = 0;
  bool retired_ = false;
};

}  // namespace sy::upstream
