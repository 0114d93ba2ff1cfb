// A TCP socket on a libuv loop with a write queue, watermarks, and safe early destruction.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace sy::net {

class Timer;

class SocketEvents {
 public:
  virtual ~SocketEvents() = default;
  virtual void on_read(const char* data, size_t len) = 0;
  virtual void on_eof() = 0;
  virtual void on_error(int uv_err) = 0;
  // The write queue fell from above the high watermark to below the low one.
  virtual void on_drained() {}
  // An outbound connect finished; status is 0 or a libuv error.
  virtual void on_connect(int status) {}
  // The TLS handshake finished: STATUS 0, or UV_EPROTO with ERROR saying why. After a failure
  // the owner closes the socket.
  virtual void on_tls_handshake(int status, const std::string& error) {}
};

// Owned by a connection object through a raw pointer. The owner calls close() (or its
// destructor path does) and forgets the pointer; the Socket frees itself once libuv is done
// with the handle, and never calls back after close().
class Socket {
 public:
  static constexpr size_t kHighWatermark = 256 * 1024;
  static constexpr size_t kLowWatermark = 64 * 1024;

  static Socket* create(uv_loop_t* loop, SocketEvents* events);
  // Takes an accepted connection off SERVER. Returns nullptr when accept fails.
  static Socket* accept(uv_stream_t* server, SocketEvents* events);

  int connect(const sockaddr* addr);
  void read_start();
  void read_stop();
  bool reading() const { return reading_; }

  // Writes what it can now and queues a copy of the rest. Returns 0 or a libuv error.
  int write(const uv_buf_t* bufs, unsigned n);
  int write(const char* data, size_t len) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(data), unsigned(len));
    return write(&b, 1);
  }
  size_t queued() const { return queued_; }
  bool above_high() const { return queued_ > kHighWatermark; }

  // Flushes queued writes, sends FIN, drains what the peer still sends for a short while (so
  // an unread request does not turn our last response into a reset), then closes.
  void end();
  // Half-close: flushes queued writes and sends FIN, while reading (and the callbacks) go on.
  // Later writes fail with UV_EPIPE. end() or close() still finish the socket.
  void shutdown_write();
  bool write_shut() const { return wshut_; }
  // Closes now; queued writes are dropped. No callbacks after this.
  void close();
  // Closes now every socket this thread ended that is still shutting down or lingering. No one
  // else holds those, so a worker that stops calls this before its loop closes what is left.
  static void close_ended();
  void set_events(SocketEvents* e) { events_ = e; }

  // TLS from now on: write() takes plaintext and on_read() gives plaintext. Server side right
  // after accept, client side after on_connect(0); the outcome arrives as on_tls_handshake.
  // Client: SNI names the server to ask for; VERIFY_HOST (a DNS name or an IP address) is what
  // the certificate must be for ("": the chain is checked, not the name).
  void start_tls_server(SSL_CTX* ctx);
  void start_tls_client(SSL_CTX* ctx, const std::string& sni, const std::string& verify_host);
  // The TLS session (nullptr when plain); valid until close().
  SSL* ssl() const { return ssl_; }

  // Peer address as "ip" (no port); "" when unknown.
  std::string peer_ip() const;
  uint16_t peer_port() const;
  uv_tcp_t* handle() { return &tcp_; }

 private:
  explicit Socket(SocketEvents* events) : events_(events) {}
  ~Socket();
  void tls_init(SSL_CTX* ctx);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write_cb(uv_write_t* req, int status);
  static void on_connect_cb(uv_connect_t* req, int status);
  static void on_shutdown_cb(uv_shutdown_t* req, int status);
  void linger();
  static void on_close_cb(uv_handle_t* h);
  static void on_linger_timeout(uv_timer_t* t);
  static void on_linger_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  int raw_write(const uv_buf_t* bufs, unsigned n);
  // TLS: run the handshake / decrypt what arrived / send what OpenSSL produced.
  void tls_input(const char* data, size_t len);
  void tls_pump();
  int tls_flush();
  void tls_fail(const std::string& why);

  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_shutdown_t shutdown_req_;
  uv_timer_t* linger_ = nullptr;
  SocketEvents* events_;
  size_t queued_ = 0;
  bool reading_ = false;
  bool closing_ = false;
  bool ending_ = false;
  bool above_ = false;
  bool wshut_ = false;       // shutdown_write() asked for FIN
  bool wshut_done_ = false;  // and the FIN went out
  // TLS state: memory BIOs between OpenSSL and the TCP stream.
  SSL* ssl_ = nullptr;
  BIO* net_in_ = nullptr;   // ciphertext from the network, read by OpenSSL
  BIO* net_out_ = nullptr;  // ciphertext from OpenSSL, to the network
  bool handshaken_ = false;
  bool tls_eof_ = false;
  std::string early_;        // plaintext written before the handshake finished
  Timer* resume_ = nullptr;  // delivers decrypted bytes held back while reading stopped
};

// A libuv timer that its owner may destroy at any time, even from inside its own callback: the
// handle and the callback live in a box that libuv frees after the close completes.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void start(uint64_t ms, std::function<void()> cb);
  void stop();
  bool active() const;

 private:
  struct Box;
  Box* box_;
};

// Resolves "host:port" for numeric hosts (IPv4, IPv6) and "localhost".
bool parse_sockaddr(const std::string& host, uint16_t port, sockaddr_storage* out);
// Opens a listening TCP socket with SO_REUSEPORT (so each worker gets its own). Returns the fd
// or -errno; *bound_port receives the actual port (useful for port 0).
int listen_socket(const sockaddr_storage& addr, bool reuseport, int backlog, uint16_t* bound_port);
std::string sockaddr_ip(const sockaddr* sa);

}  // namespace sy::net
