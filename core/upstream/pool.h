// Per-worker HTTP/1.1 connection pools to a cluster's endpoints: round robin, keep-alive reuse,
// a connection cap with a pending queue, and connect retries on another endpoint.
#pragma once

#include <uv.h>

#include <deque>
#include <list>
#include <memory>
#include <string>

#include "core/http1/parser.h"
#include "core/net/socket.h"
#include "core/server/runtime.h"

namespace sy::upstream {

class Pool;
class Connection;

// What the pool and the connection report to the stream using them.
class Client {
 public:
  virtual ~Client() = default;
  // A connection is ready and bound to this client until it calls Pool::release.
  virtual void on_upstream_ready(Connection* conn) = 0;
  enum class Failure { kConnect, kOverflow };
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

class Connection : public net::SocketEvents, public http1::ParserHandler {
 public:
  Connection(Pool* pool, size_t endpoint);
  ~Connection() override;

  int write(const uv_buf_t* bufs, unsigned n);
  int write(const std::string& s) { return write(s.data(), s.size()); }
  int write(const char* p, size_t n) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(p), unsigned(n));
    return write(&b, 1);
  }
  bool above_high() const { return socket_ && socket_->above_high(); }
  void pause_reading();
  void resume_reading();
  void expect_head_response(bool v) { parser_.expect_head_response(v); }
  // After a 101: bytes go both ways unparsed.
  void enter_tunnel();
  void tunnel_end() {
    if (socket_) socket_->end();
    socket_ = nullptr;
  }
  const std::string& endpoint_str() const;
  bool reused() const { return requests_ > 1; }

  // net::SocketEvents
  void on_read(const char* data, size_t len) override;
  void on_eof() override;
  void on_error(int err) override;
  void on_drained() override;
  void on_connect(int status) override;
  // http1::ParserHandler
  int on_head(http1::MessageHead& head) override;
  void on_body(const char* data, size_t len) override;
  void on_trailers(http::HeaderMap& trailers) override;
  void on_complete() override;

 private:
  friend class Pool;
  enum class State { kConnecting, kBusy, kIdle, kTunnel };
  void fail(const std::string& details);

  Pool* pool_;
  size_t endpoint_;
  net::Socket* socket_ = nullptr;
  http1::Parser parser_;
  net::Timer timer_;  // connect timeout, then idle timeout
  State state_ = State::kConnecting;
  Client* client_ = nullptr;
  bool complete_ = false;  // the current response is complete
  uint64_t requests_ = 0;
  uint32_t attempts_ = 0;  // connect attempts for the client this connection was opened for
  bool paused_ = false;    // the parser stopped after a complete response
  bool connected_ = false;
  std::list<std::unique_ptr<Connection>>::iterator self_;
};

class Pool {
 public:
  Pool(uv_loop_t* loop, std::shared_ptr<server::ClusterRuntime> cluster);
  ~Pool();

  // Finds or makes a connection for CLIENT; answers through on_upstream_ready / _failure,
  // possibly before returning.
  // PREFERRED: an endpoint index to use instead of round robin (-1: none).
  void acquire(Client* client, int preferred = -1);
  // CLIENT no longer wants a connection (its stream ended while waiting).
  void cancel(Client* client);
  // CLIENT is done with CONN. REUSABLE: the exchange ended cleanly and both sides keep alive.
  void release(Connection* conn, bool reusable);

  const server::ClusterRuntime& cluster() const { return *cluster_; }
  uv_loop_t* loop() const { return loop_; }
  // Stop reusing connections (the cluster left the config); true once nothing is left.
  void retire();
  bool empty() const { return conns_.empty() && pending_.empty(); }

 private:
  friend class Connection;
  struct Waiter {
    Client* client;
    int preferred;
  };
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
  std::deque<Waiter> pending_;
  std::vector<std::unique_ptr<Connection>> graveyard_;  // freed on the next loop turn
  net::Timer reaper_;
  size_t rr_ = 0;
  bool retired_ = false;
};

}  // namespace sy::upstream
