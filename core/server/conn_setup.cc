// TLS handshake and protocol selection for new downstream connections.
#include "core/server/conn_setup.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>

#include "core/log/log.h"
#include "core/server/http1_conn.h"
#include "core/server/http2_conn.h"
#include "core/server/tcp_proxy.h"
#include "core/tls/context.h"

namespace sy::server {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::atomic<uint64_t> g_next_id{1};

std::string cert_pem(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string out(p, size_t(n > 0 ? n : 0));
  BIO_free(b);
  return out;
}

std::string subject(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string out(p, size_t(n > 0 ? n : 0));
  BIO_free(b);
  return out;
}

// The first subject alternative name of TYPE (GEN_URI, GEN_DNS), or "" (Envoy's
// uri_san_peer_certificate and dns_san_peer_certificate attributes give the first one too).
std::string first_san(X509* x, int type) {
  std::string out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != type) continue;
    const ASN1_IA5STRING* v = type == GEN_URI ? n->d.uniformResourceIdentifier : n->d.dNSName;
    out.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
               size_t(ASN1_STRING_length(v)));
    break;
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace

ConnInfo make_conn_info(net::Socket* socket, std::shared_ptr<ClientLease> lease) {
  ConnInfo info;
  info.lease = std::move(lease);
  info.peer_ip = socket->peer_ip();
  info.peer_port = socket->peer_port();
  info.id = g_next_id.fetch_add(1, std::memory_order_relaxed);
  return info;
}

ConnectionSetup::ConnectionSetup(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* socket,
                                 std::shared_ptr<ClientLease> lease)
    : worker_(w),
      slot_(std::move(slot)),
      view_(ListenerView::of(*slot_)),
      socket_(socket),
      timer_(w->loop()),
      info_(make_conn_info(socket, std::move(lease))) {
  socket_->set_events(this);
  worker_->add(this);
}

ConnectionSetup::~ConnectionSetup() {
  if (socket_) socket_->close();
}

void ConnectionSetup::start() {
  if (lr_->tls) {
    tls_ = true;
    socket_->start_tls_server(lr_->tls->initial());
  }
  socket_->read_start();
  // A handshake, or a first request line, must come as fast as a request head would.
  timer_.start(uint64_t(lr_->cfg->timeouts.request_headers.count()), [this] {
    if (tls_) lr_->stats.tls_handshake_error->inc();
    abort();
  });
}

void ConnectionSetup::on_tls_handshake(int status, const std::string& error) {
  SSL* ssl = socket_->ssl();
  if (status != 0) {
    lr_->stats.tls_handshake_error->inc();
    if (error.find("peer did not return a certificate") != std::string::npos)
      lr_->stats.tls_no_client_cert->inc();
    SY_DEBUG("tls %s: handshake failed: %s", info_.peer_ip.c_str(), error.c_str());
    abort();
    return;
  }
  lr_->stats.tls_handshake->inc();
  if (SSL_session_reused(ssl)) lr_->stats.tls_session_reused->inc();
  info_.tls = true;
  info_.tls_version = tls::version_name(ssl);
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) info_.sni = sni;
  if (X509* peer = SSL_get1_peer_certificate(ssl)) {
    info_.peer_cert = cert_pem(peer);
    info_.peer_subject = subject(peer);
    info_.peer_uri_san = first_san(peer, GEN_URI);
    info_.peer_dns_san = first_san(peer, GEN_DNS);
    X509_free(peer);
  } else if (lr_->cfg->tls && !lr_->cfg->tls->ca.empty()) {
    lr_->stats.tls_no_client_cert->inc();  // client_certificate: optional, and none came
  }
  if (lr_->cfg->tcp_proxy) {
    done_ = true;
    timer_.stop();
    net::Socket* s = socket_;
    socket_ = nullptr;
    auto* t = new TcpSession(worker_, slot_, s);
    t->start();
    worker_->remove(this);
    return;
  }
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  std::string_view proto(reinterpret_cast<const char*>(alpn), alpn_len);
  // No ALPN: HTTP/1.1 when the listener speaks it (RFC 9113 §3.3 needs ALPN for h2).
  hand_over(proto == "h2" || (proto.empty() && !lr_->http1));
}

void ConnectionSetup::on_read(const char* data, size_t len) {
  if (done_) return;
  prelude_.append(data, len);
  if (!lr_->http1 || !lr_->http2) {
    hand_over(lr_->http2);
    return;
  }
  // Enough bytes to tell the HTTP/2 client preface from an HTTP/1 request line?
  size_t n = std::min(prelude_.size(), kPreface.size());
  if (std::string_view(prelude_).substr(0, n) != kPreface.substr(0, n)) {
    hand_over(false);
    return;
  }
  if (prelude_.size() >= kPreface.size()) hand_over(true);
}

void ConnectionSetup::hand_over(bool http2) {
  done_ = true;
  timer_.stop();
  net::Socket* s = socket_;
  socket_ = nullptr;
  std::string prelude;
  prelude.swap(prelude_);
  if (http2) {
    auto* c = new Http2Connection(worker_, slot_, s, std::move(info_));
    c->start(prelude);
  } else {
    auto* c = new Http1Connection(worker_, slot_, s, std::move(info_));
    c->start(prelude);
  }
  worker_->remove(this);
}

void ConnectionSetup::abort() {
  if (done_) return;
  done_ = true;
  timer_.stop();
  if (socket_) {
    socket_->close();
    socket_ = nullptr;
  }
  worker_->remove(this);
}

}  // namespace sy::server
