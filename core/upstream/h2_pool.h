// Upstream HTTP/2 (h2c with prior knowledge, or h2 via ALPN over TLS): each request is a stream,
// multiplexed over as few connections per endpoint as the server's concurrency limit allows.
#pragma once

#include <nghttp2/nghttp2.h>

#include <deque>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "core/http2/out_body.h"
#include "core/upstream/pool.h"

namespace sy::upstream {

class Http2Pool;
class H2Connection;

// One request on an upstream HTTP/2 connection.
class H2Exchange final : public Exchange {
 public:
  H2Exchange(H2Connection* conn, Client* client) : conn_(conn), client_(client) {}

  void send_head(const RequestHead& head) override;
  void send_body(const char* data, size_t len) override;
  void send_end(const http::HeaderMap* trailers) override;
  bool above_high() const override { return body_.above_high(); }
  void pause_reading() override { paused_ = true; }
  void resume_reading() override;
  const std::string& endpoint_str() const override;
  bool reused() const override { return reused_; }
  void cork() override { corked_ = true; }
  void uncork() override;

 private:
  friend class H2Connection;
  friend class Http2Pool;
  void wake(bool resume);
  // Writes what the session has ready, unless corked.
  void flush();

  H2Connection* conn_;  // null once the connection is gone
  Client* client_;      // null once released
  int32_t id_ = -1;
  bool reused_ = false;
  bool corked_ = false;
  // The request body waiting for flow-control credit; below its low watermark again, the
  // client (the downstream stream) hears it.
  http2::OutBody body_{[](void* self) {
                         auto* ex = static_cast<H2Exchange*>(self);
                         if (ex->client_) ex->client_->on_upstream_drained();
                       },
                       this};
  // Response.
  http1::MessageHead head_;
  bool head_done_ = false;
  http::HeaderMap trailers_in_;
  bool complete_ = false;
  bool paused_ = false;
  size_t unconsumed_ = 0;
  bool is_head_ = false;
  bool bad_status_ = false;  // the response's :status was no HTTP status (below 100)
};

class H2Connection final : public net::SocketEvents {
 public:
  H2Connection(Http2Pool* pool, size_t endpoint);
  ~H2Connection() override;

  void on_read(const char* data, size_t len) override;
  void on_eof() override;
  void on_error(int err) override;
  void on_drained() override;
  void on_connect(int status) override;
  void on_tls_handshake(int status, const std::string& error) override;

  void flush();
  bool ready() const { return session_ != nullptr && !goaway_ && !closed_; }
  size_t capacity() const;  // streams it may still open
  nghttp2_session* session() const { return session_; }
  http2::SendBatch& send_batch() { return batch_; }

 private:
  friend class Http2Pool;
  friend class H2Exchange;
  void start_session();
  // The connection failed or closed: every stream on it is reset.
  void fail(const std::string& details);
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                       void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int on_data_chunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                           size_t len, void* self);
  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* self);

  Http2Pool* pool_;
  size_t endpoint_;
  net::Socket* socket_ = nullptr;
  nghttp2_session* session_ = nullptr;
  http2::SendBatch batch_;
  net::Timer timer_;                  // connect timeout, then idle timeout
  std::vector<H2Exchange*> streams_;  // open streams
  std::deque<Client*> waiters_;       // clients waiting for this connection to be ready
  uint32_t attempts_ = 1;
  uint64_t started_ = 0;  // streams ever opened
  bool goaway_ = false;
  bool closed_ = false;
  bool in_recv_ = false;
  bool send_blocked_ = false;
  std::list<std::unique_ptr<H2Connection>>::iterator self_;
};

class Http2Pool final : public Pool {
 public:
  Http2Pool(uv_loop_t* loop, std::shared_ptr<server::ClusterRuntime> cluster);
  ~Http2Pool() override;

  void acquire(Client* client, int preferred = -1) override;
  void cancel(Client* client) override;
  void release(Exchange* ex, bool reusable) override;
  void retire() override;
  bool empty() const override { return conns_.empty() && pending_.empty(); }

  uv_loop_t* loop() const { return loop_; }
  const server::ClusterRuntime& cluster() const { return *cluster_; }

 private:
  friend class H2Connection;
  friend class H2Exchange;
  void connect(size_t endpoint, uint32_t attempts, std::deque<Client*> waiters);
  void bind(H2Connection* c, Client* client);
  void on_ready(H2Connection* c);
  void on_connect_failed(H2Connection* c, const std::string& details, bool timeout);
  void destroy(H2Connection* c);
  void free_later(H2Exchange* ex);
  void serve_pending();
  void arm_idle(H2Connection* c);

  uv_loop_t* loop_;
  std::shared_ptr<server::ClusterRuntime> cluster_;
  std::list<std::unique_ptr<H2Connection>> conns_;
  PendingQueue pending_;
  std::vector<std::unique_ptr<H2Connection>> dead_conns_;
  std::vector<std::unique_ptr<H2Exchange>> dead_streams_;
  net::Timer reaper_;
  size_t rr_ = 0;
  bool retired_ = false;
};

}  // namespace sy::upstream
