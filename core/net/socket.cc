// Socket and Timer: libuv handles with owner-safe lifetimes.
#include "core/net/socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "core/stats/overload.h"
#include "core/tls/context.h"

namespace sy::net {
namespace {

// One read buffer per worker thread: every read is handled synchronously inside the read
// callback, and whatever must outlive it is copied by whoever keeps it.
thread_local char t_read_buf[64 * 1024];
// Decrypted bytes, handed to on_read() the same way.
thread_local char t_plain_buf[64 * 1024];

struct WriteReq {
  uv_write_t req;
  Socket* socket;
  size_t size;
  char data[1];  // the bytes follow the struct
};

constexpr uint64_t kLingerMs = 2000;

// The sockets this thread ended and has not closed yet: they own themselves until the peer
// closes or the linger time is up, so close_ended() must find them when the worker stops.
thread_local std::unordered_set<Socket*> t_ended;

}  // namespace

Socket* Socket::create(uv_loop_t* loop, SocketEvents* events) {
  auto* s = new Socket(events);
  uv_tcp_init(loop, &s->tcp_);
  s->tcp_.data = s;
  return s;
}

Socket* Socket::accept(uv_stream_t* server, SocketEvents* events) {
  Socket* s = create(server->loop, events);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&s->tcp_)) != 0) {
    s->close();
    return nullptr;
  }
  uv_tcp_nodelay(&s->tcp_, 1);
  return s;
}

int Socket::connect(const sockaddr* addr) {
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, on_connect_cb);
  if (rc == 0) uv_tcp_nodelay(&tcp_, 1);
  return rc;
}

Socket::~Socket() {
  delete resume_;
  if (ssl_) SSL_free(ssl_);  // frees both BIOs
}

void Socket::on_connect_cb(uv_connect_t* req, int status) {
  auto* s = static_cast<Socket*>(req->data);
  if (s->closing_ || !s->events_) return;
  s->events_->on_connect(status);
}

void Socket::read_start() {
  if (reading_ || closing_ || ending_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read_cb) == 0)
    reading_ = true;
  // Records OpenSSL already holds will not make the socket readable again: deliver them on the
  // next loop turn.
  if (reading_ && ssl_ && handshaken_ && (SSL_pending(ssl_) > 0 || BIO_ctrl_pending(net_in_) > 0)) {
    if (!resume_) resume_ = new Timer(tcp_.loop);
    resume_->start(0, [this] {
      if (!closing_ && events_) tls_pump();
    });
  }
}

void Socket::read_stop() {
  if (!reading_ || closing_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

void Socket::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(t_read_buf, sizeof t_read_buf);
}

void Socket::on_read_cb(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
  auto* s = static_cast<Socket*>(st->data);
  if (s->closing_ || !s->events_) return;
  if (n > 0) {
    if (s->ssl_)
      s->tls_input(buf->base, size_t(n));
    else
      s->events_->on_read(buf->base, size_t(n));
  } else if (n == UV_EOF) {
    s->read_stop();
    s->events_->on_eof();
  } else if (n < 0) {
    s->read_stop();
    s->events_->on_error(int(n));
  }
}

int Socket::write(const uv_buf_t* bufs, unsigned n) {
  if (closing_ || ending_ || wshut_) return UV_EPIPE;
  if (!ssl_) return raw_write(bufs, n);
  if (!handshaken_) {
    for (unsigned i = 0; i < n; ++i) early_.append(bufs[i].base, bufs[i].len);
    return 0;
  }
  // Memory BIOs take everything: SSL_write encrypts all of it and the ciphertext joins the
  // ordinary write queue, so watermarks work the same as for plain sockets.
  for (unsigned i = 0; i < n; ++i)
    if (bufs[i].len > 0 && SSL_write(ssl_, bufs[i].base, int(bufs[i].len)) <= 0) {
      ERR_clear_error();
      return UV_EPROTO;
    }
  return tls_flush();
}

void Socket::tls_init(SSL_CTX* ctx) {
  ssl_ = SSL_new(ctx);
  net_in_ = BIO_new(BIO_s_mem());
  net_out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(net_in_, -1);  // empty means "wait for more", not EOF
  SSL_set_bio(ssl_, net_in_, net_out_);
}

void Socket::start_tls_server(SSL_CTX* ctx) {
  tls_init(ctx);
  SSL_set_accept_state(ssl_);
}

void Socket::start_tls_client(SSL_CTX* ctx, const std::string& sni,
                              const std::string& verify_host) {
  tls_init(ctx);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
  if (!verify_host.empty()) {
    in6_addr ip;
    bool is_ip = inet_pton(AF_INET, verify_host.c_str(), &ip) == 1 ||
                 inet_pton(AF_INET6, verify_host.c_str(), &ip) == 1;
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), verify_host.c_str());
    else
      SSL_set1_host(ssl_, verify_host.c_str());
  }
  SSL_set_connect_state(ssl_);
  SSL_do_handshake(ssl_);  // produces the ClientHello
  tls_flush();
}

void Socket::tls_input(const char* data, size_t len) {
  BIO_write(net_in_, data, int(len));
  tls_pump();
}

void Socket::tls_fail(const std::string& why) {
  tls_flush();  // the alert, if OpenSSL made one
  read_stop();
  if (events_) events_->on_tls_handshake(UV_EPROTO, why);
}

void Socket::tls_pump() {
  if (!handshaken_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        tls_flush();
        return;
      }
      long v = SSL_get_verify_result(ssl_);
      std::string why = v != X509_V_OK ? std::string("certificate verify failed: ") +
                                             X509_verify_cert_error_string(v)
                                       : tls::last_error("handshake failed");
      ERR_clear_error();
      tls_fail(why);
      return;
    }
    handshaken_ = true;
    if (!early_.empty()) {
      std::string e;
      e.swap(early_);
      SSL_write(ssl_, e.data(), int(e.size()));
    }
    tls_flush();
    if (events_) events_->on_tls_handshake(0, "");
    if (closing_ || !events_) return;
  }
  while (reading_ && !closing_ && events_) {
    int n = SSL_read(ssl_, t_plain_buf, sizeof t_plain_buf);
    if (n > 0) {
      events_->on_read(t_plain_buf, size_t(n));
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    ERR_clear_error();
    tls_flush();
    read_stop();
    if (e == SSL_ERROR_ZERO_RETURN) {  // close_notify: an orderly end
      tls_eof_ = true;
      events_->on_eof();
    } else {
      events_->on_error(UV_EPROTO);
    }
    return;
  }
  if (!closing_) tls_flush();
}

int Socket::tls_flush() {
  char* p = nullptr;
  long n = BIO_get_mem_data(net_out_, &p);
  if (n <= 0) return 0;
  uv_buf_t b = uv_buf_init(p, unsigned(n));
  int rc = raw_write(&b, 1);
  (void)BIO_reset(net_out_);
  return rc;
}

int Socket::raw_write(const uv_buf_t* bufs, unsigned n) {
  size_t total = 0;
  for (unsigned i = 0; i < n; ++i) total += bufs[i].len;
  if (total == 0) return 0;
  size_t done = 0;
  if (queued_ == 0) {
    int r = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs, n);
    if (r < 0 && r != UV_EAGAIN) return r;
    if (r > 0) done = size_t(r);
    if (done == total) return 0;
  }
  // Copy what the kernel did not take into one request.
  size_t rest = total - done;
  auto* w = static_cast<WriteReq*>(::operator new(sizeof(WriteReq) + rest));
  w->socket = this;
  w->size = rest;
  size_t off = 0, skip = done;
  for (unsigned i = 0; i < n; ++i) {
    size_t len = bufs[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    std::memcpy(w->data + off, bufs[i].base + skip, len - skip);
    off += len - skip;
    skip = 0;
  }
  uv_buf_t b = uv_buf_init(w->data, unsigned(rest));
  w->req.data = w;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1, on_write_cb);
  if (rc != 0) {
    ::operator delete(w);
    return rc;
  }
  queued_ += rest;
  stats::overload().buffered(int64_t(rest));
  if (queued_ > kHighWatermark) above_ = true;
  return 0;
}

void Socket::on_write_cb(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Socket* s = w->socket;
  s->queued_ -= w->size;
  stats::overload().buffered(-int64_t(w->size));
  ::operator delete(w);
  if (s->closing_ || !s->events_) return;
  if (status < 0 && status != UV_ECANCELED) {
    s->events_->on_error(status);
    return;
  }
  if (s->above_ && s->queued_ < kLowWatermark) {
    s->above_ = false;
    s->events_->on_drained();
  }
}

void Socket::end() {
  if (closing_ || ending_) return;
  if (wshut_) {
    // The FIN is sent or on its way (shutdown_write): only the linger is left to do.
    ending_ = true;
    events_ = nullptr;
    t_ended.insert(this);
    if (wshut_done_) linger();
    return;
  }
  if (ssl_ && handshaken_) {
    SSL_shutdown(ssl_);  // close_notify, so the peer sees an orderly end, not a truncation
    tls_flush();
  }
  ending_ = true;
  events_ = nullptr;
  t_ended.insert(this);
  shutdown_req_.data = this;
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown_cb) != 0) {
    ending_ = false;
    close();
  }
}

void Socket::shutdown_write() {
  if (closing_ || ending_ || wshut_) return;
  if (ssl_ && handshaken_) {
    SSL_shutdown(ssl_);
    tls_flush();
  }
  wshut_ = true;
  shutdown_req_.data = this;
  // libuv sends the FIN once the queued writes are done.
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown_cb) != 0)
    wshut_done_ = true;  // nothing more can be written anyway; end() must not wait for it
}

void Socket::on_shutdown_cb(uv_shutdown_t* req, int status) {
  auto* s = static_cast<Socket*>(req->data);
  if (s->closing_) return;
  s->wshut_done_ = true;
  if (!s->ending_) {
    // A half-close: reading goes on. A failed FIN means the connection is gone.
    if (status != 0 && status != UV_ECANCELED && s->events_) s->events_->on_error(status);
    return;
  }
  if (status != 0) {
    s->ending_ = false;
    s->close();
    return;
  }
  s->linger();
}

void Socket::linger() {
  // Read and discard until the peer closes or the linger time is up.
  linger_ = new uv_timer_t;
  uv_timer_init(tcp_.loop, linger_);
  linger_->data = this;
  uv_timer_start(linger_, on_linger_timeout, kLingerMs, 0);
  if (reading_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = true;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_linger_read) != 0) {
    // The peer's FIN came already (a half-closed tunnel): nothing is left to drain.
    ending_ = false;
    close();
  }
}

void Socket::on_linger_read(uv_stream_t* st, ssize_t n, const uv_buf_t*) {
  auto* s = static_cast<Socket*>(st->data);
  if (n < 0) {
    s->ending_ = false;
    s->close();
  }
}

void Socket::on_linger_timeout(uv_timer_t* t) {
  auto* s = static_cast<Socket*>(t->data);
  s->ending_ = false;
  s->close();
}

void Socket::close() {
  if (closing_) return;
  if (ending_) {  // end() already owns the close; just stop calling back
    events_ = nullptr;
    return;
  }
  closing_ = true;
  events_ = nullptr;
  t_ended.erase(this);
  if (linger_) {
    uv_close(reinterpret_cast<uv_handle_t*>(linger_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    linger_ = nullptr;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close_cb);
}

void Socket::on_close_cb(uv_handle_t* h) { delete static_cast<Socket*>(h->data); }

void Socket::close_ended() {
  std::vector<Socket*> ended(t_ended.begin(), t_ended.end());  // close() erases from the set
  for (Socket* s : ended) {
    s->ending_ = false;
    s->close();
  }
}

std::string Socket::peer_ip() const {
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return sockaddr_ip(reinterpret_cast<sockaddr*>(&ss));
}

uint16_t Socket::peer_port() const {
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

// ---- Timer ----

struct Timer::Box {
  uv_timer_t handle;
  std::function<void()> cb;
};

Timer::Timer(uv_loop_t* loop) : box_(new Box) {
  uv_timer_init(loop, &box_->handle);
  box_->handle.data = box_;
}

Timer::~Timer() {
  uv_timer_stop(&box_->handle);
  box_->handle.data = nullptr;
  // The box (and the callback that may be running right now) is freed after the close.
  uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle),
           [](uv_handle_t* h) { delete reinterpret_cast<Box*>(h); });
}

void Timer::start(uint64_t ms, std::function<void()> cb) {
  box_->cb = std::move(cb);
  uv_timer_start(
      &box_->handle,
      [](uv_timer_t* t) {
        auto* b = static_cast<Box*>(t->data);
        if (b && b->cb) b->cb();
      },
      ms, 0);
}

void Timer::stop() { uv_timer_stop(&box_->handle); }

bool Timer::active() const { return uv_is_active(reinterpret_cast<uv_handle_t*>(&box_->handle)); }

// ---- addresses ----

bool parse_sockaddr(const std::string& host, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (!h.empty() && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return true;
  }
  return false;
}

int listen_socket(const sockaddr_storage& addr, bool reuseport, int backlog, uint16_t* bound_port) {
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t len = addr.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      ::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  sockaddr_storage got;
  socklen_t glen = sizeof got;
  getsockname(fd, reinterpret_cast<sockaddr*>(&got), &glen);
  *bound_port = ntohs(got.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&got)->sin_port
                                               : reinterpret_cast<sockaddr_in6*>(&got)->sin6_port);
  return fd;
}

std::string sockaddr_ip(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

}  // namespace sy::net
